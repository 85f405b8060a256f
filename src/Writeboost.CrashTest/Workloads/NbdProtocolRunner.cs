using System.Net.Sockets;
using Writeboost.CrashTest.Recording;
using Writeboost.Devices;
using Writeboost.Nbd;

namespace Writeboost.CrashTest.Workloads;

/// <summary>
/// The <see cref="Workload.Protocol"/> workload: the device served by the NBD server (in process, over a unix
/// socket), driven by an NBD client with the protocol's whole write vocabulary — WRITE, WRITE_ZEROES and TRIM, each
/// with and without FUA, FLUSH, and READs — pipelined up to a queue depth of four. The marks are the client's: a
/// request is issued when the client sends it and acknowledged when its reply arrives, so the oracle judges what
/// the server promised, not only what the device did (a server that answers before the device is durable fails).
/// Requests in flight together never write the same sector (the oracle takes issue order as apply order).
/// A WRITE_ZEROES is marked as a write of zeros; a TRIM changes nothing (the server keeps trimmed data readable,
/// which the protocol allows) and is not marked.
/// </summary>
internal static class NbdProtocolRunner
{
    private const int SectorBytes = 512;

    private enum Kind
    {
        Write,
        WriteZeroes,
        Trim,
        Flush,
        Read,
    }

    private sealed record Request(Kind Kind, long OffsetBytes, int LengthBytes, bool Fua, byte[]? Data, int Issued);

    public static void Run(IBlockDevice device, CrashLog log, int seed, int ops, int readPercent, NbdServerFaults faults)
    {
        Random random = new(seed);
        Serve(device, faults, client =>
        {
            int sectors = (int)(device.SizeBytes / SectorBytes);
            int done = 0;
            while (done < ops)
            {
                int depth = Math.Min(ops - done, random.Next(1, 5));
                List<Request> batch = [];
                HashSet<int> written = [];
                for (int i = 0; i < depth; i++)
                {
                    Request? request = Next(random, sectors, readPercent, written);
                    if (request is not null)
                    {
                        batch.Add(request);
                    }
                }
                done += depth;
                Exchange(client, log, batch);
            }
        });
    }

    /// <summary>A scripted run over NBD (a minimised reproducer's): one request at a time, an all-zero write sent as WRITE_ZEROES.</summary>
    public static void RunScript(IBlockDevice device, CrashLog log, IReadOnlyList<UserOp> ops, NbdServerFaults faults) =>
        Serve(device, faults, client =>
        {
            foreach (UserOp op in ops)
            {
                Request request = op.Kind switch
                {
                    UserOpKind.Flush => new Request(Kind.Flush, 0, 0, false, null, -1),
                    UserOpKind.Read => new Request(Kind.Read, op.OffsetBytes, op.LengthBytes, false, null, -1),
                    _ when !op.Data!.AsSpan().ContainsAnyExcept((byte)0) => new Request(Kind.WriteZeroes, op.OffsetBytes, op.LengthBytes, op.Fua, op.Data, -1),
                    _ => new Request(Kind.Write, op.OffsetBytes, op.LengthBytes, op.Fua, op.Data, -1),
                };
                Exchange(client, log, [request]);
            }
        });

    private static void Serve(IBlockDevice device, NbdServerFaults faults, Action<NbdClient> run)
    {
        string socket = Path.Combine(Path.GetTempPath(), $"wb-crash-protocol-{Environment.ProcessId}-{Guid.NewGuid():N}.sock");
        using NbdServer server = new(device) { Faults = faults };
        server.Start(new UnixDomainSocketEndPoint(socket));
        try
        {
            using NbdClient client = NbdClient.Connect(socket);
            run(client);
        }
        finally
        {
            server.Stop();
            File.Delete(socket);
        }
    }

    /// <summary>The next request of the mix, or null when its range would write sectors another request in the batch writes.</summary>
    private static Request? Next(Random random, int sectors, int readPercent, HashSet<int> written)
    {
        int roll = random.Next(100);
        Kind kind = roll < 8 ? Kind.Flush
            : roll < 8 + readPercent ? Kind.Read
            : roll < 8 + readPercent + 10 ? Kind.WriteZeroes
            : roll < 8 + readPercent + 16 ? Kind.Trim
            : Kind.Write;
        if (kind == Kind.Flush)
        {
            return new Request(kind, 0, 0, false, null, -1);
        }
        (long offset, int length) = kind is Kind.WriteZeroes or Kind.Trim ? Campaign.RandomRange(random, sectors, 32) : Campaign.RandomRange(random, sectors, 12);
        bool fua = kind != Kind.Read && random.Next(100) < 25;
        if (kind is Kind.Write or Kind.WriteZeroes)
        {
            int first = (int)(offset / SectorBytes);
            int count = length / SectorBytes;
            if (Enumerable.Range(first, count).Any(written.Contains))
            {
                return null;
            }
            written.UnionWith(Enumerable.Range(first, count));
        }
        byte[]? data = null;
        if (kind == Kind.Write)
        {
            data = new byte[length];
            random.NextBytes(data);
        }
        else if (kind == Kind.WriteZeroes)
        {
            data = new byte[length];
        }
        return new Request(kind, offset, length, fua, data, -1);
    }

    /// <summary>Sends the batch at once (marking each request issued), then takes the replies (marking each acknowledged).</summary>
    private static void Exchange(NbdClient client, CrashLog log, List<Request> batch)
    {
        Dictionary<ulong, (Request Request, byte[]? ReadInto)> sent = [];
        foreach (Request request in batch)
        {
            int issued = request.Kind switch
            {
                Kind.Write or Kind.WriteZeroes => log.Append(new CrashEvent(EventKind.UserWrite, DeviceId.User, request.OffsetBytes, request.LengthBytes, request.Data, request.Fua, -1)),
                Kind.Flush => log.Append(new CrashEvent(EventKind.UserFlush, DeviceId.User, 0, 0, null, false, -1)),
                Kind.Read => log.Append(new CrashEvent(EventKind.UserRead, DeviceId.User, request.OffsetBytes, request.LengthBytes, null, false, -1)),
                _ => -1,
            };
            byte[]? readInto = request.Kind == Kind.Read ? new byte[request.LengthBytes] : null;
            NbdCommand command = request.Kind switch
            {
                Kind.Write => NbdCommand.Write,
                Kind.WriteZeroes => NbdCommand.WriteZeroes,
                Kind.Trim => NbdCommand.Trim,
                Kind.Flush => NbdCommand.Flush,
                _ => NbdCommand.Read,
            };
            ulong handle = client.Send(command, request.OffsetBytes, (uint)request.LengthBytes, request.Fua, request.Kind == Kind.Write ? request.Data : default, readInto);
            sent[handle] = (request with { Issued = issued }, readInto);
        }
        client.FlushRequests();
        for (int i = 0; i < batch.Count; i++)
        {
            (ulong handle, uint error) = client.Receive();
            (Request request, byte[]? readInto) = sent[handle];
            if (error != 0)
            {
                throw new IOException($"NBD {request.Kind} at {request.OffsetBytes} length {request.LengthBytes}: the server answered error {error}");
            }
            switch (request.Kind)
            {
                case Kind.Write or Kind.WriteZeroes:
                    log.Append(new CrashEvent(EventKind.UserWriteAck, DeviceId.User, request.OffsetBytes, request.LengthBytes, null, request.Fua, request.Issued));
                    break;
                case Kind.Flush:
                    log.Append(new CrashEvent(EventKind.UserFlushAck, DeviceId.User, 0, 0, null, false, request.Issued));
                    break;
                case Kind.Read:
                    log.Append(new CrashEvent(EventKind.UserReadDone, DeviceId.User, request.OffsetBytes, request.LengthBytes, readInto, false, request.Issued));
                    break;
            }
        }
    }
}
