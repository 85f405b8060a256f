using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Writeboost.Devices;
using static Writeboost.Nbd.NbdProtocol;

namespace Writeboost.Nbd;

/// <summary>
/// Serves one block device over NBD: fixed newstyle handshake with option haggling (EXPORT_NAME, GO, INFO,
/// LIST, ABORT), simple replies, and pipelined requests (several in flight per connection, several
/// connections). NBD_CMD_FLUSH maps to <see cref="IBlockDevice.Flush"/> (REQ_PREFLUSH: every write completed
/// before it is durable when it completes), NBD_CMD_FLAG_FUA to <see cref="WriteOptions.Fua"/>.
/// <para>Bad traffic costs only its own connection: an invalid request gets the protocol's error reply; a
/// malformed handshake or a request the server cannot frame (bad magic, an oversized write payload, a
/// truncated packet) closes that connection; the server and other clients go on.</para>
/// </summary>
public sealed class NbdServer : IDisposable
{
    private const int MaxInFlightPerConnection = 64;
    /// <summary>What WRITE_ZEROES writes, 1 MiB at a time (never written to: shared by every connection).</summary>
    private static readonly byte[] Zeros = new byte[1 << 20];
    private readonly IBlockDevice _device;
    private readonly string _exportName;
    private readonly List<Connection> _connections = [];
    private readonly Lock _connectionsLock = new();
    private Socket? _listener;
    private Thread? _acceptLoop;
    private volatile bool _stopping;

    /// <summary>Serves <paramref name="device"/> (not owned: the caller disposes it after the server) under <paramref name="exportName"/>.</summary>
    public NbdServer(IBlockDevice device, string exportName = "")
    {
        _device = device;
        _exportName = exportName;
    }

    /// <summary>The answers at the server's decision points: the product's own unless the crash harness plants a seeded bug.</summary>
    internal NbdServerFaults Faults { get; init; } = NbdServerFaults.None;

    /// <summary>Where it listens (a unix socket path or an IP endpoint), once started.</summary>
    public EndPoint? EndPoint => _listener?.LocalEndPoint;

    /// <summary>Requests served, for status.</summary>
    public long RequestsServed => Interlocked.Read(ref _requestsServed);
    private long _requestsServed;

    /// <summary>Listens on <paramref name="endPoint"/> (a unix socket or a TCP endpoint) and accepts connections on a thread of its own.</summary>
    public void Start(EndPoint endPoint) => Start(Listen(endPoint));

    /// <summary>
    /// A socket bound to <paramref name="endPoint"/> and listening, for <see cref="Start(Socket)"/>: a tool binds
    /// first (a busy port or a missing directory is an error before anything else is opened), then serves.
    /// </summary>
    public static Socket Listen(EndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        Socket listener = endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(endPoint);
            listener.Listen(16);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>Accepts connections on <paramref name="listener"/> (bound and listening; owned by the server from now on) on a thread of its own.</summary>
    public void Start(Socket listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        _listener = listener;
        _acceptLoop = new Thread(AcceptLoop) { IsBackground = true, Name = "nbd-accept" };
        _acceptLoop.Start();
    }

    private void AcceptLoop()
    {
        while (!_stopping)
        {
            Socket client;
            try
            {
                client = _listener!.Accept();
            }
            catch (SocketException) when (_stopping)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            if (client.AddressFamily != AddressFamily.Unix)
            {
                client.NoDelay = true;
            }
            Connection connection = new(this, client);
            lock (_connectionsLock)
            {
                _connections.Add(connection);
            }
            new Thread(connection.Run) { IsBackground = true, Name = "nbd-connection" }.Start();
        }
    }

    /// <summary>
    /// Stops accepting, lets every connection finish the requests it has in flight, and closes them. A request is
    /// never cut short (its client may have been told nothing yet, and the device is closed after this): however
    /// long a slow device takes, the stop waits, and every <paramref name="reportEvery"/> (default 30 s) it tells
    /// <paramref name="waiting"/> how many requests are still in flight. Requests a client had sent that were not
    /// started yet are answered with ESHUTDOWN.
    /// </summary>
    public void Stop(Action<string>? waiting = null, TimeSpan? reportEvery = null)
    {
        _stopping = true;
        _listener?.Close();
        _acceptLoop?.Join();
        List<Connection> connections;
        lock (_connectionsLock)
        {
            connections = [.. _connections];
        }
        foreach (Connection connection in connections)
        {
            connection.BeginDrain();
        }
        foreach (Connection connection in connections)
        {
            while (!connection.WaitClosed(reportEvery ?? TimeSpan.FromSeconds(30)))
            {
                waiting?.Invoke($"still waiting for {connections.Sum(c => c.InFlight)} request(s) in flight on {connections.Count(c => !c.IsClosed)} connection(s) (a slow device); they complete or fail, and are never cut short");
            }
        }
    }

    /// <summary>Stops (<see cref="Stop"/>) and releases the listening socket; the device is left open.</summary>
    public void Dispose()
    {
        Stop();
        _listener?.Dispose();
    }

    private void Forget(Connection connection)
    {
        lock (_connectionsLock)
        {
            _connections.Remove(connection);
        }
    }

    private sealed class Connection(NbdServer server, Socket socket) : IDisposable
    {
        private const int RequestHeaderBytes = 28;
        private const int ReplyHeaderBytes = 16;
        private const int ReceiveBufferBytes = 256 * 1024;
        private const int ReplyBufferBytes = 64 * 1024;
        private readonly NetworkStream _stream = new(socket, ownsSocket: true);
        // Transmission reads through this buffer: one receive takes every request the client has sent so far.
        // The unread bytes are _receive[_receiveStart.._receiveEnd).
        private byte[]? _receive;
        private int _receiveStart;
        private int _receiveEnd;
        // Replies of requests served on the connection thread, sent together (one syscall) before the next receive.
        private byte[]? _replies;
        private int _repliesBytes;
        private readonly Lock _sendLock = new();
        private readonly SemaphoreSlim _inFlight = new(MaxInFlightPerConnection, MaxInFlightPerConnection);
        // The connection's own count plus one per request in the pool: zero once the last of them has finished.
        private readonly CountdownEvent _outstanding = new(1);
        private readonly ManualResetEventSlim _closed = new();
        private volatile bool _closing;

        // A request being served on the connection thread itself (1) or not (0).
        private int _servingHere;

        /// <summary>Requests being served: in the pool, and on the connection thread.</summary>
        public int InFlight => MaxInFlightPerConnection - _inFlight.CurrentCount + Volatile.Read(ref _servingHere);

        public bool IsClosed => _closed.IsSet;

        public void Run()
        {
            try
            {
                if (Handshake())
                {
                    Transmission();
                }
            }
            catch (Exception error) when (error is IOException or EndOfStreamException or SocketException or ObjectDisposedException or InvalidDataException)
            {
                // A broken or malformed client: its connection ends here, nobody else's.
            }
            finally
            {
                Close();
            }
        }

        /// <summary>SIGTERM: no more requests are read; the ones in flight finish, then the connection closes (<see cref="WaitClosed"/>).</summary>
        public void BeginDrain()
        {
            _closing = true;
            try
            {
                socket.Shutdown(SocketShutdown.Receive);
            }
            catch (Exception error) when (error is SocketException or ObjectDisposedException)
            {
                // Already closed.
            }
        }

        public bool WaitClosed(TimeSpan timeout) => _closed.Wait(timeout);

        /// <summary>
        /// On the connection's own thread, when it stops reading: waits — without a limit — for the requests it put in
        /// the pool, then closes. Only then are the counters that those requests release at their end disposed: a
        /// request finishing late (a slow device, a client long gone) must find them, or its release would throw on a
        /// pool thread and end the process for every other client.
        /// </summary>
        private void Close()
        {
            _outstanding.Signal();
            _outstanding.Wait();
            server.Forget(this);
            _stream.Dispose();
            _inFlight.Dispose();
            _outstanding.Dispose();
            _closed.Set();
        }

        public void Dispose() => _stream.Dispose();

        // ---- handshake ----

        private bool Handshake()
        {
            Span<byte> hello = stackalloc byte[18];
            BinaryPrimitives.WriteUInt64BigEndian(hello, NbdMagic);
            BinaryPrimitives.WriteUInt64BigEndian(hello[8..], IHaveOpt);
            BinaryPrimitives.WriteUInt16BigEndian(hello[16..], FlagFixedNewstyle | FlagNoZeroes);
            _stream.Write(hello);
            uint clientFlags = ReadUInt32();
            if ((clientFlags & ClientFlagFixedNewstyle) == 0 || (clientFlags & ~(ClientFlagFixedNewstyle | ClientFlagNoZeroes)) != 0)
            {
                return false; // we speak fixed newstyle only; unknown client flags: the spec says close
            }
            bool noZeroes = (clientFlags & ClientFlagNoZeroes) != 0;
            while (true)
            {
                if (ReadUInt64() != IHaveOpt)
                {
                    throw new InvalidDataException("bad option magic");
                }
                uint option = ReadUInt32();
                uint length = ReadUInt32();
                if (length > 64 * 1024)
                {
                    throw new InvalidDataException("option data too long");
                }
                byte[] data = new byte[length];
                ReadExactly(data);
                switch (option)
                {
                    case OptExportName:
                        if (Encoding.UTF8.GetString(data) != server._exportName)
                        {
                            return false; // EXPORT_NAME has no error reply: close
                        }
                        byte[] export = new byte[10 + 124];
                        BinaryPrimitives.WriteInt64BigEndian(export, server._device.SizeBytes);
                        BinaryPrimitives.WriteUInt16BigEndian(export.AsSpan(8), TransmissionFlags);
                        _stream.Write(noZeroes ? export.AsSpan(0, 10) : export);
                        return true;
                    case OptAbort:
                        OptionReply(option, RepAck, []);
                        return false;
                    case OptList:
                        if (length != 0)
                        {
                            OptionReply(option, RepErrInvalid, []);
                            break;
                        }
                        byte[] name = Encoding.UTF8.GetBytes(server._exportName);
                        byte[] entry = new byte[4 + name.Length];
                        BinaryPrimitives.WriteUInt32BigEndian(entry, (uint)name.Length);
                        name.CopyTo(entry, 4);
                        OptionReply(option, RepServer, entry);
                        OptionReply(option, RepAck, []);
                        break;
                    case OptInfo:
                    case OptGo:
                        if (InfoOrGo(option, data))
                        {
                            return true;
                        }
                        break;
                    default:
                        OptionReply(option, RepErrUnsup, []);
                        break;
                }
            }
        }

        private static ushort TransmissionFlags =>
            FlagHasFlags | FlagSendFlush | FlagSendFua | FlagSendTrim | FlagSendWriteZeroes | FlagCanMultiConn;

        /// <summary>NBD_OPT_INFO / NBD_OPT_GO: the export's size, flags and block sizes; GO then starts transmission.</summary>
        private bool InfoOrGo(uint option, byte[] data)
        {
            if (data.Length < 6)
            {
                OptionReply(option, RepErrInvalid, []);
                return false;
            }
            uint nameLength = BinaryPrimitives.ReadUInt32BigEndian(data);
            if (nameLength > data.Length - 6)
            {
                OptionReply(option, RepErrInvalid, []);
                return false;
            }
            string name = Encoding.UTF8.GetString(data, 4, (int)nameLength);
            int requests = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(4 + (int)nameLength));
            if (data.Length != 6 + nameLength + 2 * requests)
            {
                OptionReply(option, RepErrInvalid, []);
                return false;
            }
            if (name != server._exportName)
            {
                OptionReply(option, RepErrUnknown, Encoding.UTF8.GetBytes($"no export named '{name}'"));
                return false;
            }
            byte[] export = new byte[12];
            BinaryPrimitives.WriteUInt16BigEndian(export, InfoExport);
            BinaryPrimitives.WriteInt64BigEndian(export.AsSpan(2), server._device.SizeBytes);
            BinaryPrimitives.WriteUInt16BigEndian(export.AsSpan(10), TransmissionFlags);
            OptionReply(option, RepInfo, export);
            for (int i = 0; i < requests; i++)
            {
                if (BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(6 + (int)nameLength + 2 * i)) == InfoBlockSize)
                {
                    byte[] sizes = new byte[14];
                    BinaryPrimitives.WriteUInt16BigEndian(sizes, InfoBlockSize);
                    BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(2), (uint)server._device.SectorSizeBytes); // minimum
                    BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(6), 4096);                                  // preferred
                    BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(10), MaxPayloadBytes);                      // maximum
                    OptionReply(option, RepInfo, sizes);
                }
            }
            OptionReply(option, RepAck, []);
            return option == OptGo;
        }

        private void OptionReply(uint option, uint type, ReadOnlySpan<byte> data)
        {
            byte[] reply = new byte[20 + data.Length];
            BinaryPrimitives.WriteUInt64BigEndian(reply, OptionReplyMagic);
            BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(8), option);
            BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(12), type);
            BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(16), (uint)data.Length);
            data.CopyTo(reply.AsSpan(20));
            _stream.Write(reply);
        }

        // ---- transmission ----

        /// <summary>
        /// Reads requests and serves them. Writes (and, where the device says durability is cheap, flushes and FUA
        /// writes) run here on the connection thread, straight from the receive buffer, and their replies are
        /// gathered and sent together when the buffer runs dry. A request that may wait on device I/O (a flush or
        /// FUA in mode 0, a read, trim, write-zeroes) goes to the thread pool when other requests are in flight or
        /// waiting, so it does not hold them up; alone, it runs here too (the client waits for it anyway).
        /// </summary>
        private void Transmission()
        {
            _receive = new byte[ReceiveBufferBytes];
            _replies = new byte[ReplyBufferBytes];
            bool cheapDurability = server._device.DurabilityIsCheap;
            while (!_closing)
            {
                Fill(RequestHeaderBytes);
                ReadOnlySpan<byte> header = _receive.AsSpan(_receiveStart, RequestHeaderBytes);
                if (BinaryPrimitives.ReadUInt32BigEndian(header) != RequestMagic)
                {
                    throw new InvalidDataException("bad request magic");
                }
                ushort flags = BinaryPrimitives.ReadUInt16BigEndian(header[4..]);
                ushort type = BinaryPrimitives.ReadUInt16BigEndian(header[6..]);
                ulong handle = BinaryPrimitives.ReadUInt64BigEndian(header[8..]);
                ulong offset = BinaryPrimitives.ReadUInt64BigEndian(header[16..]);
                uint length = BinaryPrimitives.ReadUInt32BigEndian(header[24..]);
                _receiveStart += RequestHeaderBytes;
                if (type == CmdDisc)
                {
                    break; // finish what is in flight (Close waits), then close
                }
                int payloadBytes = 0;
                if (type == CmdWrite)
                {
                    if (length > MaxPayloadBytes)
                    {
                        throw new InvalidDataException("write payload over the maximum"); // cannot resynchronise
                    }
                    payloadBytes = (int)length;
                }
                bool fua = (flags & CmdFlagFua) != 0;
                bool inline = type switch
                {
                    CmdWrite => !fua || cheapDurability,
                    CmdFlush => cheapDurability,
                    _ => false,
                } || Alone(payloadBytes);
                if (inline && payloadBytes <= ReceiveBufferBytes)
                {
                    Fill(payloadBytes);
                    ReadOnlySpan<byte> payload = _receive.AsSpan(_receiveStart, payloadBytes);
                    _receiveStart += payloadBytes; // the span stays valid: nothing is received until the next Fill
                    ServeHere(flags, type, handle, offset, length, payload);
                    continue;
                }
                byte[]? rented = null;
                if (payloadBytes > 0)
                {
                    rented = ArrayPool<byte>.Shared.Rent(payloadBytes);
                    ReadExactly(rented.AsSpan(0, payloadBytes));
                }
                if (inline)
                {
                    try
                    {
                        ServeHere(flags, type, handle, offset, length, rented.AsSpan(0, payloadBytes));
                    }
                    finally
                    {
                        if (rented is not null)
                        {
                            ArrayPool<byte>.Shared.Return(rented);
                        }
                    }
                    continue;
                }
                _inFlight.Wait();
                _outstanding.AddCount();
                ThreadPool.UnsafeQueueUserWorkItem(_ => ServeInPool(flags, type, handle, offset, length, rented), null);
            }
            RefuseReceived();
            SendPendingReplies();
        }

        /// <summary>
        /// Stopping: requests the client sent that are already here but were not started are answered with
        /// ESHUTDOWN (the protocol's word for it), so it knows they were not done, instead of losing the connection
        /// with them unanswered.
        /// </summary>
        private void RefuseReceived()
        {
            while (_receiveEnd - _receiveStart >= RequestHeaderBytes)
            {
                ReadOnlySpan<byte> header = _receive.AsSpan(_receiveStart, RequestHeaderBytes);
                if (BinaryPrimitives.ReadUInt32BigEndian(header) != RequestMagic)
                {
                    return;
                }
                ushort type = BinaryPrimitives.ReadUInt16BigEndian(header[6..]);
                ulong handle = BinaryPrimitives.ReadUInt64BigEndian(header[8..]);
                uint length = BinaryPrimitives.ReadUInt32BigEndian(header[24..]);
                int payload = type == CmdWrite ? (int)Math.Min(length, (uint)MaxPayloadBytes) : 0;
                if (type == CmdDisc || _receiveEnd - _receiveStart < RequestHeaderBytes + payload)
                {
                    return; // a disconnect, or a write whose payload is not all here: nothing more to answer
                }
                _receiveStart += RequestHeaderBytes + payload;
                QueueReply(handle, EShutdown, []);
            }
        }

        /// <summary>
        /// True when nothing is in the thread pool and no other request is waiting: neither in the receive buffer
        /// (beyond this request's payload) nor in the socket.
        /// </summary>
        private bool Alone(int payloadBytes)
        {
            if (_inFlight.CurrentCount != MaxInFlightPerConnection)
            {
                return false;
            }
            int buffered = _receiveEnd - _receiveStart;
            return buffered <= payloadBytes && buffered + socket.Available <= payloadBytes;
        }

        /// <summary>Serves a request on the connection thread; its reply joins the ones sent before the next receive.</summary>
        private void ServeHere(ushort flags, ushort type, ulong handle, ulong offset, uint length, ReadOnlySpan<byte> payload)
        {
            byte[]? readBuffer = null;
            Volatile.Write(ref _servingHere, 1);
            try
            {
                uint error = Perform(flags, type, offset, length, payload, ref readBuffer);
                QueueReply(handle, error, ReplyData(error, type, readBuffer, length));
                Interlocked.Increment(ref server._requestsServed);
            }
            finally
            {
                Volatile.Write(ref _servingHere, 0);
                if (readBuffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(readBuffer);
                }
            }
        }

        private void ServeInPool(ushort flags, ushort type, ulong handle, ulong offset, uint length, byte[]? payload)
        {
            byte[]? readBuffer = null;
            try
            {
                uint error = Perform(flags, type, offset, length, payload is null ? [] : payload.AsSpan(0, (int)length), ref readBuffer);
                SendReply(handle, error, readBuffer, ReplyData(error, type, readBuffer, length).Length);
                Interlocked.Increment(ref server._requestsServed);
            }
            catch (Exception failure) when (failure is IOException or SocketException or ObjectDisposedException)
            {
                // The client went away mid-reply: nothing to tell it.
            }
            finally
            {
                if (payload is not null)
                {
                    ArrayPool<byte>.Shared.Return(payload);
                }
                if (readBuffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(readBuffer);
                }
                _inFlight.Release();
                _outstanding.Signal();
            }
        }

        /// <summary>Validates and executes one request, wherever it is served; the caller replies and returns <paramref name="readBuffer"/>.</summary>
        private uint Perform(ushort flags, ushort type, ulong offset, uint length, ReadOnlySpan<byte> payload, ref byte[]? readBuffer)
        {
            uint error = Validate(type, offset, length);
            return error != 0 ? error : Execute(flags, type, (long)offset, length, payload, ref readBuffer);
        }

        private static ReadOnlySpan<byte> ReplyData(uint error, ushort type, byte[]? readBuffer, uint length) =>
            error == 0 && type == CmdRead ? readBuffer.AsSpan(ReplyHeaderBytes, (int)length) : [];

        private uint Validate(ushort type, ulong offset, uint length)
        {
            long size = server._device.SizeBytes;
            int sector = server._device.SectorSizeBytes;
            switch (type)
            {
                case CmdFlush:
                    return 0;
                case CmdRead:
                case CmdWrite:
                case CmdTrim:
                case CmdWriteZeroes:
                    if (length == 0 || offset % (ulong)sector != 0 || length % (uint)sector != 0 || (type == CmdRead && length > MaxPayloadBytes))
                    {
                        return EInval;
                    }
                    if (offset > (ulong)size || length > (ulong)size - offset)
                    {
                        return type is CmdWrite or CmdWriteZeroes ? ENoSpc : EInval;
                    }
                    return 0;
                default:
                    return EInval;
            }
        }

        /// <param name="length">The request's 32-bit length: up to 4 GiB - 1 for TRIM and WRITE_ZEROES (a READ's is
        /// capped by <see cref="Validate"/> at the payload maximum, a WRITE's by its payload).</param>
        private uint Execute(ushort flags, ushort type, long offset, uint length, ReadOnlySpan<byte> payload, ref byte[]? readBuffer)
        {
            WriteOptions fua = (flags & CmdFlagFua) != 0 ? WriteOptions.Fua : WriteOptions.None;
            try
            {
                switch (type)
                {
                    case CmdRead:
                        // Room for the reply header first: a reply from the pool goes out in one write.
                        readBuffer = ArrayPool<byte>.Shared.Rent(ReplyHeaderBytes + (int)length);
                        server._device.Read(offset, readBuffer.AsSpan(ReplyHeaderBytes, (int)length));
                        return 0;
                    case CmdWrite:
                        server._device.Write(offset, payload, fua);
                        return 0;
                    case CmdFlush:
                        server._device.Flush();
                        return 0;
                    case CmdTrim:
                        // Advisory: the data stays readable as it was, which the protocol allows.
                        if (fua == WriteOptions.Fua)
                        {
                            server._device.Flush();
                        }
                        return 0;
                    case CmdWriteZeroes:
                        for (long done = 0; done < length; done += Zeros.Length)
                        {
                            int n = (int)Math.Min(Zeros.Length, length - done);
                            server._device.Write(offset + done, Zeros.AsSpan(0, n));
                        }
                        if (fua == WriteOptions.Fua && server.Faults.FuaWriteZeroesFlushesBeforeAck)
                        {
                            server._device.Flush();
                        }
                        return 0;
                    default:
                        return EInval;
                }
            }
            catch (ArgumentException)
            {
                return EInval;
            }
            catch (IOException)
            {
                return EIo; // never an acknowledgement for what did not happen
            }
        }

        /// <summary>Adds a reply to the ones <see cref="SendPendingReplies"/> sends (connection thread only).</summary>
        private void QueueReply(ulong handle, uint error, ReadOnlySpan<byte> data)
        {
            int bytes = ReplyHeaderBytes + data.Length;
            if (_repliesBytes + bytes > _replies!.Length)
            {
                SendPendingReplies();
                if (bytes > _replies.Length)
                {
                    // Larger than the reply buffer (a read of more than its size): header and data as they are.
                    Span<byte> header = stackalloc byte[ReplyHeaderBytes];
                    WriteReplyHeader(header, handle, error);
                    lock (_sendLock)
                    {
                        _stream.Write(header);
                        _stream.Write(data);
                    }
                    return;
                }
            }
            Span<byte> reply = _replies.AsSpan(_repliesBytes, bytes);
            WriteReplyHeader(reply, handle, error);
            data.CopyTo(reply[ReplyHeaderBytes..]);
            _repliesBytes += bytes;
        }

        private void SendPendingReplies()
        {
            if (_repliesBytes == 0)
            {
                return;
            }
            lock (_sendLock)
            {
                _stream.Write(_replies.AsSpan(0, _repliesBytes));
            }
            _repliesBytes = 0;
        }

        /// <summary>
        /// Sends one reply. A read's data sits in its buffer after <see cref="ReplyHeaderBytes"/> bytes left free
        /// for the header (see <see cref="Execute"/>), so header and data go out in one write, with no copy.
        /// </summary>
        private void SendReply(ulong handle, uint error, byte[]? readBuffer, int dataBytes)
        {
            Span<byte> header = stackalloc byte[ReplyHeaderBytes];
            byte[]? whole = dataBytes > 0 ? readBuffer : null;
            WriteReplyHeader(whole is null ? header : whole, handle, error);
            lock (_sendLock)
            {
                _stream.Write(whole is null ? header : whole.AsSpan(0, ReplyHeaderBytes + dataBytes));
            }
        }

        private static void WriteReplyHeader(Span<byte> header, ulong handle, uint error)
        {
            BinaryPrimitives.WriteUInt32BigEndian(header, SimpleReplyMagic);
            BinaryPrimitives.WriteUInt32BigEndian(header[4..], error);
            BinaryPrimitives.WriteUInt64BigEndian(header[8..], handle);
        }

        /// <summary>
        /// Makes the receive buffer hold at least <paramref name="count"/> (≤ its size) unread bytes, receiving as
        /// needed. Replies waiting are sent first: the client may wait for them before it sends more.
        /// </summary>
        private void Fill(int count)
        {
            while (_receiveEnd - _receiveStart < count)
            {
                if (_receiveStart == _receiveEnd)
                {
                    _receiveStart = _receiveEnd = 0;
                }
                else if (_receiveStart + count > _receive!.Length)
                {
                    _receive.AsSpan(_receiveStart, _receiveEnd - _receiveStart).CopyTo(_receive);
                    _receiveEnd -= _receiveStart;
                    _receiveStart = 0;
                }
                SendPendingReplies();
                int received = socket.Receive(_receive.AsSpan(_receiveEnd));
                if (received == 0)
                {
                    throw new EndOfStreamException();
                }
                _receiveEnd += received;
            }
        }

        /// <summary>Reads exactly destination's length: from the receive buffer first (in transmission), then the socket.</summary>
        private void ReadExactly(Span<byte> destination)
        {
            if (_receive is not null)
            {
                int buffered = Math.Min(destination.Length, _receiveEnd - _receiveStart);
                _receive.AsSpan(_receiveStart, buffered).CopyTo(destination);
                _receiveStart += buffered;
                destination = destination[buffered..];
                if (!destination.IsEmpty)
                {
                    SendPendingReplies();
                }
            }
            _stream.ReadExactly(destination);
        }

        private uint ReadUInt32()
        {
            Span<byte> b = stackalloc byte[4];
            ReadExactly(b);
            return BinaryPrimitives.ReadUInt32BigEndian(b);
        }

        private ulong ReadUInt64()
        {
            Span<byte> b = stackalloc byte[8];
            ReadExactly(b);
            return BinaryPrimitives.ReadUInt64BigEndian(b);
        }
    }
}
