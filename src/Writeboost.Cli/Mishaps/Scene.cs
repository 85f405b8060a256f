using System.Diagnostics;
using System.Globalization;
using Writeboost.Devices;
using Writeboost.Nbd;

namespace Writeboost.Cli.Mishaps;

/// <summary>When an operator's action comes: after the device was closed cleanly, after it was killed (a crash), or while it serves.</summary>
internal enum When
{
    AfterClose,
    AfterCrash,
    WhileServing,
}

/// <summary>
/// One device as a user has it: files for backing, cache and (mode 1) a /dev/shm pmem buffer, formatted by
/// <c>wb create</c>, served by <c>wb serve</c>, written over NBD — FUA writes, writes followed by a FLUSH, and a
/// tail of plain writes no barrier covers — with a ledger of what each write was and whether its
/// acknowledgement promised durability. Then closed (SIGTERM), killed (SIGKILL) or left serving.
/// </summary>
internal sealed class Scene : IDisposable
{
    internal const long BackingBytes = 16L << 20;
    internal const long CacheBytes = 16L << 20;
    internal const long PmemBytes = 16L << 20;
    private const int BlockBytes = 4096;
    private const int BlocksPerKind = 12;

    private readonly WbRunner _wb;
    private readonly string _directory;
    private readonly string _shmDirectory;
    private Process? _server;
    private Thread? _traffic;
    private volatile bool _trafficStop;

    internal Scene(WbRunner wb, int mode, string name)
    {
        _wb = wb;
        Mode = mode;
        _directory = Directory.CreateTempSubdirectory($"wb-mishap-{name}-").FullName;
        _shmDirectory = Directory.Exists("/dev/shm") ? Path.Combine("/dev/shm", Path.GetFileName(_directory)) : _directory;
        Directory.CreateDirectory(_shmDirectory);
        Backing = File("backing.img", BackingBytes);
        Cache = File("cache.img", CacheBytes);
        Pmem = mode == 1 ? ShmFile("pmem", PmemBytes) : null;
        Socket = Path.Combine(_directory, "nbd.sock");
    }

    internal int Mode { get; }
    internal string Backing { get; }
    internal string Cache { get; }
    internal string? Pmem { get; }
    internal string Socket { get; }

    /// <summary>Block → (what was written, whether its acknowledgement promised durability).</summary>
    internal Dictionary<long, (byte[] Data, bool Durable)> Ledger { get; } = [];

    internal string[] Table => TableWith(Backing, Cache, Pmem);

    internal string[] TableWith(string backing, string cache, string? pmem) =>
        Mode == 0 ? ["0", backing, cache] : ["1", backing, cache, pmem!, "pmem_backend", "dax"];

    internal bool Serving => _server is { HasExited: false };

    internal int? ServerPid => _server?.Id;

    /// <summary>A new file in the scene's directory (zeros, <paramref name="bytes"/> long).</summary>
    internal string File(string name, long bytes)
    {
        string path = Path.Combine(_directory, name);
        FileBlockDevice.CreateFile(path, bytes);
        return path;
    }

    /// <summary>A new file in the scene's /dev/shm directory, where mode 1's pmem lives.</summary>
    internal string ShmFile(string name, long bytes)
    {
        string path = Path.Combine(_shmDirectory, name);
        FileBlockDevice.CreateFile(path, bytes);
        return path;
    }

    internal string PathOf(string name) => Path.Combine(_directory, name);

    /// <summary>Formats, serves and writes the workload; then leaves it as <paramref name="when"/> says. Null, or why the set-up itself failed.</summary>
    internal string? Prepare(When when, int seed)
    {
        WbRun created = _wb.Run(["create", .. Table]);
        if (created.ExitCode != 0)
        {
            return $"set-up: {created.CommandLine} failed: {created.FirstErrorLine}";
        }
        if (StartServer() is { } failed)
        {
            return $"set-up: {failed}";
        }
        Write(seed);
        return when switch
        {
            When.AfterClose => StopServer(),
            When.AfterCrash => KillServer(),
            _ => null,
        };
    }

    /// <summary>
    /// A client writing on (FUA writes and flushes in the last quarter of the disk, away from the ledger) while the
    /// action runs, as fio would: a served device is a device in use. Stopped by <see cref="StopTraffic"/>.
    /// </summary>
    internal void StartTraffic()
    {
        _trafficStop = false;
        _traffic = new Thread(() =>
        {
            try
            {
                using NbdClient client = NbdClient.Connect(Socket);
                byte[] data = new byte[BlockBytes];
                Random random = new(7);
                long first = BackingBytes / BlockBytes * 3 / 4;
                for (long i = 0; !_trafficStop; i++)
                {
                    random.NextBytes(data);
                    client.Write((first + random.NextInt64(BackingBytes / BlockBytes / 4)) * BlockBytes, data, fua: i % 4 == 0);
                    if (i % 16 == 15)
                    {
                        client.Flush();
                    }
                }
            }
            catch (Exception error) when (error is IOException or System.Net.Sockets.SocketException or InvalidDataException)
            {
                // The server went away (an action stopped it): the judge says whether that was allowed.
            }
        }) { IsBackground = true, Name = "mishap-traffic" };
        _traffic.Start();
    }

    internal void StopTraffic()
    {
        _trafficStop = true;
        _traffic?.Join();
        _traffic = null;
    }

    internal string? StartServer()
    {
        (Process? server, WbRun? failed) = _wb.Start(["serve", .. Table, "--socket", Socket]);
        _server = server;
        return failed is null ? null : $"{failed.CommandLine} exited {failed.ExitCode}: {failed.FirstErrorLine}";
    }

    /// <summary>SIGTERM: the server drains and closes the device cleanly; null, or what went wrong.</summary>
    internal string? StopServer()
    {
        if (_server is null)
        {
            return null;
        }
        Native.Signals.Terminate(_server.Id);
        bool exited = _server.WaitForExit(60_000);
        int code = exited ? _server.ExitCode : -1;
        if (!exited)
        {
            _server.Kill();
            _server.WaitForExit();
        }
        _server.Dispose();
        _server = null;
        return code == 0 ? null : $"wb serve did not close cleanly on SIGTERM (exit {code})";
    }

    /// <summary>SIGKILL: a crash (the RAM buffer is lost; the next open recovers).</summary>
    internal string? KillServer()
    {
        if (_server is not null)
        {
            _server.Kill();
            _server.WaitForExit();
            _server.Dispose();
            _server = null;
        }
        return null;
    }

    private void Write(int seed)
    {
        using NbdClient client = NbdClient.Connect(Socket);
        long blocks = BackingBytes / BlockBytes;
        Random random = new(seed);
        List<long> chosen = [.. Enumerable.Range(0, (int)(blocks / 4)).Select(b => (long)b).OrderBy(_ => random.Next()).Take(3 * BlocksPerKind)];
        // FUA writes: durable when acknowledged.
        foreach (long block in chosen.Take(BlocksPerKind))
        {
            byte[] data = Pattern(block, seed);
            client.Write(block * BlockBytes, data, fua: true);
            Ledger[block] = (data, true);
        }
        // Plain writes, then a FLUSH: durable once the flush is acknowledged.
        foreach (long block in chosen.Skip(BlocksPerKind).Take(BlocksPerKind))
        {
            byte[] data = Pattern(block, seed);
            client.Write(block * BlockBytes, data);
            Ledger[block] = (data, false);
        }
        client.Flush();
        foreach (long block in chosen.Skip(BlocksPerKind).Take(BlocksPerKind))
        {
            Ledger[block] = Ledger[block] with { Durable = true };
        }
        // A tail no barrier covers: after a crash each reads its data or its old zeros, never anything else.
        foreach (long block in chosen.Skip(2 * BlocksPerKind))
        {
            byte[] data = Pattern(block, seed);
            client.Write(block * BlockBytes, data);
            Ledger[block] = (data, false);
        }
    }

    private static byte[] Pattern(long block, int seed)
    {
        byte[] data = new byte[BlockBytes];
        new Random(HashCode.Combine(block, seed)).NextBytes(data);
        BitConverter.TryWriteBytes(data, block);
        return data;
    }

    /// <summary>
    /// What the device gives back of the ledger, through its own table: everything written back (drop_caches, which
    /// also proves the cache opens with its own devices), then the backing file read directly. Null when every
    /// durable write is there and every other block holds its write or zeros.
    /// </summary>
    internal string? VerifyAtRest()
    {
        if (Serving)
        {
            return "the device is still served";
        }
        WbRun drained = _wb.Run(["message", .. Table, "-m", "drop_caches"]);
        if (drained.ExitCode != 0)
        {
            return $"the cache does not open with its own devices any more ({drained.CommandLine}: {drained.FirstErrorLine})";
        }
        using FileBlockDevice backing = FileBlockDevice.Open(Backing, new FileBlockDeviceOptions { ReadOnly = true });
        return Compare(block =>
        {
            byte[] read = new byte[BlockBytes];
            backing.Read(block * BlockBytes, read);
            return read;
        });
    }

    /// <summary>The ledger read through the running server (NBD), as a client sees it.</summary>
    internal string? VerifyLive()
    {
        try
        {
            using NbdClient client = NbdClient.Connect(Socket);
            return Compare(block =>
            {
                byte[] read = new byte[BlockBytes];
                client.Read(block * BlockBytes, read);
                return read;
            });
        }
        catch (Exception error) when (error is IOException or System.Net.Sockets.SocketException or InvalidDataException)
        {
            return $"the running server does not serve its disk any more ({error.Message})";
        }
    }

    private string? Compare(Func<long, byte[]> read)
    {
        int lost = 0, garbage = 0;
        long? first = null;
        foreach ((long block, (byte[] data, bool durable)) in Ledger.OrderBy(e => e.Key))
        {
            byte[] got = read(block);
            if (got.AsSpan().SequenceEqual(data))
            {
                continue;
            }
            bool zeros = !got.AsSpan().ContainsAnyExcept((byte)0);
            if (durable)
            {
                lost++;
            }
            else if (!zeros)
            {
                garbage++;
            }
            else
            {
                continue;
            }
            first ??= block;
        }
        return lost + garbage == 0 ? null : string.Create(CultureInfo.InvariantCulture,
            $"{lost} acknowledged-durable block(s) lost, {garbage} block(s) hold data never written there (first: block {first})");
    }

    public void Dispose()
    {
        StopTraffic();
        KillServer();
        foreach (string directory in new[] { _directory, _shmDirectory }.Distinct())
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
                // A temporary directory left behind is not worth failing a sweep for.
            }
        }
    }
}
