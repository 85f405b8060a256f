using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using static Writeboost.Nbd.NbdProtocol;

namespace Writeboost.Nbd;

/// <summary>The commands of the protocol's transmission phase, with their numbers.</summary>
public enum NbdCommand : ushort
{
    /// <summary>NBD_CMD_READ.</summary>
    Read = 0,
    /// <summary>NBD_CMD_WRITE (the payload follows the request).</summary>
    Write = 1,
    /// <summary>NBD_CMD_FLUSH.</summary>
    Flush = 3,
    /// <summary>NBD_CMD_TRIM.</summary>
    Trim = 4,
    /// <summary>NBD_CMD_WRITE_ZEROES.</summary>
    WriteZeroes = 6,
}

/// <summary>An NBD request the server answered with an error: the errno the protocol carried.</summary>
public sealed class NbdException(string message, uint error) : IOException(message)
{
    /// <summary>The errno the reply carried (EIO 5, EINVAL 22, ENOSPC 28, ...).</summary>
    public uint Error { get; } = error;
}

/// <summary>
/// An NBD client for the toolkit's own judges (the operator-fault sweep, the crash harness's NBD path): fixed
/// newstyle, NBD_OPT_GO, simple replies; one request at a time, or pipelined (<see cref="Send"/>, <see cref="Receive"/>). Every command of the protocol's write vocabulary —
/// WRITE, WRITE_ZEROES and TRIM, each with or without FUA — plus READ and FLUSH. A request the server refuses
/// throws <see cref="NbdException"/> naming the command, the range and the errno; a broken connection throws
/// <see cref="IOException"/>.
/// </summary>
public sealed class NbdClient : IDisposable
{
    private readonly NetworkStream _stream;
    // Requests go out through this: Send gathers pipelined requests, and they leave together at the next Receive
    // (or Flush of it), so the server sees them at once, as it would from a client with a queue depth.
    private readonly BufferedStream _out;
    private readonly Dictionary<ulong, (ushort Command, Memory<byte> ReadInto, uint Length)> _pending = [];
    private ulong _handle;

    private NbdClient(Socket socket, string exportName)
    {
        _stream = new NetworkStream(socket, ownsSocket: true);
        _out = new BufferedStream(_stream, 256 * 1024);
        Span<byte> hello = stackalloc byte[18];
        _stream.ReadExactly(hello);
        if (BinaryPrimitives.ReadUInt64BigEndian(hello) != NbdMagic || BinaryPrimitives.ReadUInt64BigEndian(hello[8..]) != IHaveOpt)
        {
            throw new InvalidDataException("not an NBD server speaking the newstyle handshake");
        }
        Span<byte> flags = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(flags, ClientFlagFixedNewstyle | ClientFlagNoZeroes);
        _stream.Write(flags);
        byte[] name = System.Text.Encoding.UTF8.GetBytes(exportName);
        byte[] go = new byte[16 + 4 + name.Length + 2];
        BinaryPrimitives.WriteUInt64BigEndian(go, IHaveOpt);
        BinaryPrimitives.WriteUInt32BigEndian(go.AsSpan(8), OptGo);
        BinaryPrimitives.WriteUInt32BigEndian(go.AsSpan(12), (uint)(4 + name.Length + 2));
        BinaryPrimitives.WriteUInt32BigEndian(go.AsSpan(16), (uint)name.Length);
        name.CopyTo(go.AsSpan(20));
        _stream.Write(go);
        Span<byte> reply = stackalloc byte[20];
        while (true)
        {
            _stream.ReadExactly(reply);
            uint type = BinaryPrimitives.ReadUInt32BigEndian(reply[12..]);
            byte[] data = new byte[BinaryPrimitives.ReadUInt32BigEndian(reply[16..])];
            _stream.ReadExactly(data);
            if (type == RepInfo && data.Length >= 12 && BinaryPrimitives.ReadUInt16BigEndian(data) == InfoExport)
            {
                SizeBytes = BinaryPrimitives.ReadInt64BigEndian(data.AsSpan(2));
                TransmissionFlags = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(10));
            }
            if (type == RepAck)
            {
                return;
            }
            if ((type & 0x80000000) != 0)
            {
                throw new InvalidDataException($"the server refused export '{exportName}' (option reply 0x{type:x8})");
            }
        }
    }

    /// <summary>The export's size in bytes.</summary>
    public long SizeBytes { get; private set; }

    /// <summary>The transmission flags the server announced (FLUSH, FUA, TRIM, WRITE_ZEROES, ...).</summary>
    public ushort TransmissionFlags { get; private set; }

    /// <summary>Connects to a unix socket (a path) or a TCP endpoint and enters transmission.</summary>
    public static NbdClient Connect(EndPoint endPoint, string exportName = "")
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        Socket socket = endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Connect(endPoint);
            return new NbdClient(socket, exportName);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Connects to the unix socket at <paramref name="path"/>.</summary>
    public static NbdClient Connect(string path, string exportName = "") => Connect(new UnixDomainSocketEndPoint(path), exportName);

    /// <summary>NBD_CMD_READ of <c>destination.Length</c> bytes.</summary>
    public void Read(long offsetBytes, Span<byte> destination) => Request(CmdRead, false, offsetBytes, (uint)destination.Length, default, destination);

    /// <summary>NBD_CMD_WRITE; with <paramref name="fua"/>, acknowledged only once durable.</summary>
    public void Write(long offsetBytes, ReadOnlySpan<byte> source, bool fua = false) => Request(CmdWrite, fua, offsetBytes, (uint)source.Length, source, default);

    /// <summary>NBD_CMD_WRITE_ZEROES over <paramref name="lengthBytes"/> (a 32-bit length: up to 4 GiB - 1).</summary>
    public void WriteZeroes(long offsetBytes, uint lengthBytes, bool fua = false) => Request(CmdWriteZeroes, fua, offsetBytes, lengthBytes, default, default);

    /// <summary>NBD_CMD_TRIM (a hint the server may ignore: trimmed data reads as before or as zeros).</summary>
    public void Trim(long offsetBytes, uint lengthBytes, bool fua = false) => Request(CmdTrim, fua, offsetBytes, lengthBytes, default, default);

    /// <summary>NBD_CMD_FLUSH: every write acknowledged before it is durable when it is acknowledged.</summary>
    public void Flush() => Request(CmdFlush, false, 0, 0, default, default);

    /// <summary>
    /// Sends a request without waiting for its reply (pipelining): <see cref="Receive"/> takes the replies, in the
    /// order the server sends them. A read's data goes into <paramref name="readInto"/> when its reply comes.
    /// </summary>
    public ulong Send(NbdCommand command, long offsetBytes, uint lengthBytes, bool fua = false, ReadOnlyMemory<byte> payload = default, Memory<byte> readInto = default)
    {
        ushort code = (ushort)command;
        ulong handle = SendHeader(code, fua, offsetBytes, code == CmdWrite ? (uint)payload.Length : lengthBytes);
        if (code == CmdWrite)
        {
            _out.Write(payload.Span);
        }
        _pending[handle] = (code, code == CmdRead && readInto.Length >= lengthBytes ? readInto[..(int)lengthBytes] : readInto, lengthBytes);
        return handle;
    }

    /// <summary>The next reply of a pipelined request: its handle and the errno it carries (0: done).</summary>
    public (ulong Handle, uint Error) Receive()
    {
        _out.Flush();
        Span<byte> reply = stackalloc byte[16];
        _stream.ReadExactly(reply);
        ulong handle = BinaryPrimitives.ReadUInt64BigEndian(reply[8..]);
        if (BinaryPrimitives.ReadUInt32BigEndian(reply) != SimpleReplyMagic || !_pending.Remove(handle, out (ushort Command, Memory<byte> ReadInto, uint Length) request))
        {
            throw new InvalidDataException("the server's reply does not answer a request sent");
        }
        uint error = BinaryPrimitives.ReadUInt32BigEndian(reply[4..]);
        if (error == 0 && request.Command == CmdRead)
        {
            if (request.ReadInto.Length < request.Length)
            {
                // A read longer than the caller's buffer succeeded: the data must still be taken off the stream.
                throw new InvalidDataException($"the server answered a read of {request.Length} bytes with data, but the caller gave room for {request.ReadInto.Length}");
            }
            _stream.ReadExactly(request.ReadInto.Span);
        }
        return (handle, error);
    }

    private ulong SendHeader(ushort command, bool fua, long offsetBytes, uint lengthBytes)
    {
        Span<byte> header = stackalloc byte[28];
        ulong handle = ++_handle;
        BinaryPrimitives.WriteUInt32BigEndian(header, RequestMagic);
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], fua ? CmdFlagFua : (ushort)0);
        BinaryPrimitives.WriteUInt16BigEndian(header[6..], command);
        BinaryPrimitives.WriteUInt64BigEndian(header[8..], handle);
        BinaryPrimitives.WriteUInt64BigEndian(header[16..], (ulong)offsetBytes);
        BinaryPrimitives.WriteUInt32BigEndian(header[24..], lengthBytes);
        _out.Write(header);
        return handle;
    }

    private void Request(ushort command, bool fua, long offsetBytes, uint lengthBytes, ReadOnlySpan<byte> payload, Span<byte> readInto)
    {
        Span<byte> header = stackalloc byte[28];
        ulong handle = ++_handle;
        BinaryPrimitives.WriteUInt32BigEndian(header, RequestMagic);
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], fua ? CmdFlagFua : (ushort)0);
        BinaryPrimitives.WriteUInt16BigEndian(header[6..], command);
        BinaryPrimitives.WriteUInt64BigEndian(header[8..], handle);
        BinaryPrimitives.WriteUInt64BigEndian(header[16..], (ulong)offsetBytes);
        BinaryPrimitives.WriteUInt32BigEndian(header[24..], lengthBytes);
        _out.Write(header);
        if (!payload.IsEmpty)
        {
            _out.Write(payload);
        }
        _out.Flush();
        Span<byte> reply = stackalloc byte[16];
        _stream.ReadExactly(reply);
        if (BinaryPrimitives.ReadUInt32BigEndian(reply) != SimpleReplyMagic || BinaryPrimitives.ReadUInt64BigEndian(reply[8..]) != handle)
        {
            throw new InvalidDataException("the server's reply does not answer the request sent");
        }
        uint error = BinaryPrimitives.ReadUInt32BigEndian(reply[4..]);
        if (error != 0)
        {
            string name = command switch { CmdRead => "READ", CmdWrite => "WRITE", CmdFlush => "FLUSH", CmdTrim => "TRIM", CmdWriteZeroes => "WRITE_ZEROES", _ => $"command {command}" };
            throw new NbdException($"NBD {name}{(fua ? " (FUA)" : "")} at {offsetBytes} length {lengthBytes}: error {error}", error);
        }
        if (command == CmdRead)
        {
            _stream.ReadExactly(readInto[..(int)lengthBytes]);
        }
    }

    /// <summary>Sends NBD_CMD_DISC (the server may then close) and closes the connection.</summary>
    public void Dispose()
    {
        try
        {
            Span<byte> disconnect = stackalloc byte[28];
            BinaryPrimitives.WriteUInt32BigEndian(disconnect, RequestMagic);
            BinaryPrimitives.WriteUInt16BigEndian(disconnect[6..], CmdDisc);
            _out.Write(disconnect);
            _out.Flush();
        }
        catch (IOException)
        {
            // The server is gone already.
        }
        _stream.Dispose();
    }

    /// <summary>Sends the requests <see cref="Send"/> gathered without waiting for a reply.</summary>
    public void FlushRequests() => _out.Flush();
}
