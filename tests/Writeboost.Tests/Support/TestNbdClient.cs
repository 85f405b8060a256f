using System.Buffers.Binary;
using System.Net.Sockets;

namespace Writeboost.Tests.Support;

/// <summary>A minimal NBD client (fixed newstyle, NBD_OPT_GO, simple replies, one request at a time) for tests that need exact control.</summary>
internal sealed class TestNbdClient : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private ulong _handle;

    public TestNbdClient(string socketPath)
    {
        _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        _stream = new NetworkStream(_socket, ownsSocket: true);
        byte[] hello = Read(18);
        if (BinaryPrimitives.ReadUInt64BigEndian(hello) != 0x4e42444d41474943)
        {
            throw new InvalidDataException("not an NBD server");
        }
        Send(U32(3)); // fixed newstyle, no zeroes
        // NBD_OPT_GO for the default export, no info requests.
        byte[] go = new byte[16 + 6];
        BinaryPrimitives.WriteUInt64BigEndian(go, 0x49484156454F5054);
        BinaryPrimitives.WriteUInt32BigEndian(go.AsSpan(8), 7);
        BinaryPrimitives.WriteUInt32BigEndian(go.AsSpan(12), 6);
        Send(go);
        while (true)
        {
            byte[] reply = Read(20);
            uint type = BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(12));
            byte[] data = Read((int)BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(16)));
            if (type == 3 && BinaryPrimitives.ReadUInt16BigEndian(data) == 0)
            {
                SizeBytes = BinaryPrimitives.ReadInt64BigEndian(data.AsSpan(2));
            }
            if (type == 1)
            {
                return;
            }
            if ((type & 0x80000000) != 0)
            {
                throw new InvalidDataException($"NBD_OPT_GO refused: 0x{type:x}");
            }
        }
    }

    public long SizeBytes { get; private set; }

    /// <summary>Sends a request; returns the error the server replied with (0 = ok).</summary>
    public uint Request(ushort type, long offset, int length, ReadOnlySpan<byte> payload = default, bool fua = false, Span<byte> readInto = default)
    {
        byte[] header = new byte[28];
        BinaryPrimitives.WriteUInt32BigEndian(header, 0x25609513);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(4), (ushort)(fua ? 1 : 0));
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(6), type);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), ++_handle);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(16), (ulong)offset);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(24), (uint)length);
        Send(header);
        if (!payload.IsEmpty)
        {
            Send(payload);
        }
        byte[] reply = Read(16);
        uint error = BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(4));
        if (BinaryPrimitives.ReadUInt64BigEndian(reply.AsSpan(8)) != _handle)
        {
            throw new InvalidDataException("reply to another request");
        }
        if (error == 0 && type == 0)
        {
            _stream.ReadExactly(readInto[..length]);
        }
        return error;
    }

    public void Write(long offset, ReadOnlySpan<byte> data, bool fua = false) => Check(Request(1, offset, data.Length, data, fua));
    public void Flush() => Check(Request(3, 0, 0));
    public void ReadAt(long offset, Span<byte> into) => Check(Request(0, offset, into.Length, readInto: into));

    private static void Check(uint error)
    {
        if (error != 0)
        {
            throw new IOException($"NBD error {error}");
        }
    }

    private static byte[] U32(uint v)
    {
        byte[] b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        return b;
    }

    private void Send(ReadOnlySpan<byte> bytes) => _stream.Write(bytes);

    private byte[] Read(int n)
    {
        byte[] b = new byte[n];
        _stream.ReadExactly(b);
        return b;
    }

    public void Dispose() => _stream.Dispose();
}
