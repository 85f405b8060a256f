using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using CommandLine;
using Writeboost.Cache.Core;
using Writeboost.Cli.Control;
using Writeboost.CrashTest.Targets;
using Writeboost.Devices;
using Writeboost.Nbd;
using Writeboost.Pmem;
using PmemApi = Writeboost.Pmem.Pmem;

namespace Writeboost.Cli;

[Verb("serve", HelpText = "Serve the writeboost device over NBD (fixed newstyle; FLUSH, FUA, TRIM, WRITE_ZEROES). Prints a line with 'ready' when it accepts connections; SIGINT/SIGTERM drain and close cleanly. wb status and wb message reach the running device through its control socket.")]
internal sealed class ServeVerb : TableOptions
{
    [Option("socket", HelpText = "A unix socket path to listen on.")]
    public string? Socket { get; set; }

    [Option("listen", HelpText = "ADDRESS:PORT to listen on over TCP (loopback unless --allow-remote).")]
    public string? Listen { get; set; }

    [Option("allow-remote", HelpText = "Allow --listen on an address other than loopback.")]
    public bool AllowRemote { get; set; }

    [Option("export-name", Default = "", HelpText = "The export's name (default: the empty name).")]
    public string ExportName { get; set; } = "";

    [Option("target", HelpText = "Serve a design of one's own instead of the writeboost device, PATH.dll[:Type] (as wb crashtest --target). The positional arguments are then its devices, existing files or block devices: BACKING, then CACHE if its geometry has a cache device, then PMEM if it has a pmem region (opened with the backend its geometry names). It formats blank media and recovers anything else, as under the harness.")]
    public string? Target { get; set; }

    [Option("target-arg", HelpText = "With --target: Name=Value [Name=Value...] for parameters of the target's constructor (one option that takes every value after it: put it last); they must be the ones its media were made with.")]
    public IEnumerable<string> TargetArguments { get; set; } = [];

    internal int Run()
    {
        EndPoint endPoint = ParseEndPoint();
        DesignToServe? design = Target is null && !TargetArguments.Any() ? null : PlanDesign();
        if (design is null)
        {
            _ = ParsedTable;
        }
        // Everything the user typed is checked, and the socket bound, before the device is opened (which may write).
        System.Net.Sockets.Socket listener = Bind(endPoint);
        (ulong, ulong)? boundSocket = endPoint is UnixDomainSocketEndPoint ? Native.PosixFile.Identity(Socket!) : null;
        try
        {
            return design is null ? Serve(endPoint, listener) : ServeDesign(design, endPoint, listener);
        }
        finally
        {
            listener.Dispose();
            // Only the socket this server bound: a stale file another server replaced since stays that server's.
            if (boundSocket is not null && Native.PosixFile.Identity(Socket!) == boundSocket)
            {
                File.Delete(Socket!);
            }
        }
    }

    private int Serve(EndPoint endPoint, System.Net.Sockets.Socket listener)
    {
        using WriteboostDevice device = Open();
        WriteboostStatus recovered = device.Status();
        RecoveryOutput.ToStderr(recovered);
        if (Json)
        {
            Output.Json(new { Recovery = recovered.Recovery, recovered.Degraded, recovered.PoisonedBlocks, recovered.Poisoned });
        }
        using NbdServer server = new(device, ExportName);
        server.Start(listener);
        using ControlServer? control = ControlServer.Start(device, ParsedTable, out string? controlProblem);
        if (controlProblem is not null)
        {
            Console.Error.WriteLine($"warning: {controlProblem}; wb status and wb message cannot reach this server");
        }
        return ServeUntilStopped(server, endPoint, $"{device.Name} ({device.SizeBytes} bytes, mode {(int)device.Mode})", control is null ? "" : $"; control socket {control.SocketPath}");
    }

    /// <summary>The design's devices, checked before the socket is bound or anything is opened.</summary>
    private sealed record DesignToServe(LoadedTarget Target, TargetGeometry Geometry, string Backing, string? Cache, string? Pmem);

    /// <summary>
    /// <c>--target</c>: loads the design and maps the positional arguments onto the devices its geometry asks for
    /// (backing, then a cache device, then a pmem region). Each must exist, and be at least the size the design's
    /// layout needs; an argument the design has no device for is refused, as are the writeboost device's own options.
    /// </summary>
    private DesignToServe PlanDesign()
    {
        if (Target is null)
        {
            throw DesignLoading.ArgumentsWithoutTarget();
        }
        if (AcceptLoss || DiscardPmem || OverwriteBacking)
        {
            throw new UsageException("--target: --accept-loss, --discard-pmem and --overwrite-backing are the writeboost device's; a design of one's own recovers as it decides");
        }
        LoadedTarget target = DesignLoading.Load(Target, [.. TargetArguments]);
        TargetGeometry geometry = target.GeometryFor(Writeboost.CrashTest.Workload.Nbd);
        List<(string What, long MinimumBytes)> wanted = [("BACKING", 1)];
        if (geometry.CacheBytes > 0)
        {
            wanted.Add(("CACHE", geometry.CacheBytes));
        }
        if (geometry.PmemBytes > 0)
        {
            wanted.Add(("PMEM", geometry.PmemBytes));
        }
        List<string> given = [.. Table];
        string usage = string.Join(' ', wanted.Select(w => w.What));
        if (given.Count != wanted.Count)
        {
            throw new UsageException($"--target: {target.Name} is served from {usage} ({wanted.Count} path(s)), not {given.Count}: {string.Join(' ', given)}");
        }
        for (int i = 0; i < given.Count; i++)
        {
            string path = given[i];
            if (!File.Exists(path))
            {
                throw new UsageException($"--target: {wanted[i].What} {path} does not exist (create it first, e.g. truncate -s SIZE {path})");
            }
            long size = FileBlockDevice.SizeOf(path);
            if (size < wanted[i].MinimumBytes)
            {
                throw new UsageException($"--target: {wanted[i].What} {path} is {size} bytes; {target.Name} needs at least {wanted[i].MinimumBytes} (its geometry, from its arguments)");
            }
        }
        return new DesignToServe(target, geometry, given[0],
            geometry.CacheBytes > 0 ? given[1] : null,
            geometry.PmemBytes > 0 ? given[^1] : null);
    }

    /// <summary>Serves a design of one's own on its devices (each opened exclusively) until SIGINT or SIGTERM, then closes it cleanly.</summary>
    private int ServeDesign(DesignToServe design, EndPoint endPoint, System.Net.Sockets.Socket listener)
    {
        FileBlockDeviceOptions options = new() { Direct = Direct, Exclusive = true };
        using FileBlockDevice backing = FileBlockDevice.Open(design.Backing, options);
        using IBlockDevice cache = design.Cache is null ? new MemoryBlockDevice(0, name: "no cache") : FileBlockDevice.Open(design.Cache, options);
        using PmemRegion? pmem = design.Pmem is null ? null : PmemApi.Alloc(design.Pmem, 0, -1, design.Geometry.PmemBackend, deviceLock: DeviceLock.Exclusive);
        using ICrashTargetDevice device = design.Target.Open(new TargetDevices(backing, cache, pmem), new TargetOpen(Live: true, Schedule: 0, Seed: 1));
        if (device.RecoveryStory is { } story)
        {
            Console.Error.WriteLine($"recovery: {story}");
        }
        using NbdServer server = new(device, ExportName);
        server.Start(listener);
        return ServeUntilStopped(server, endPoint, $"{device.Name} ({device.SizeBytes} bytes, {design.Target.Identity})", "");
    }

    private int ServeUntilStopped(NbdServer server, EndPoint endPoint, string what, string suffix)
    {
        using ManualResetEventSlim stop = new();
        using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.Set(); });
        using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.Set(); });
        string where = endPoint is UnixDomainSocketEndPoint ? $"nbd+unix:///{ExportName}?socket={Socket}" : $"nbd://{Listen}/{ExportName}";
        Console.WriteLine($"ready: serving {what} at {where}{suffix}");
        Console.Out.Flush();
        stop.Wait();
        server.Stop(waiting => { Console.Error.WriteLine($"wb: {waiting}"); Console.Error.Flush(); });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"stopped after {server.RequestsServed} requests; closing the device cleanly"));
        return 0;
    }

    /// <summary>
    /// The listening socket, before anything else is opened. A unix socket path must be in an existing directory;
    /// a file there that is not a socket is someone's data and is never replaced; a socket another server answers
    /// on is never taken over; only a stale one (nobody listens: a killed server's) is replaced.
    /// </summary>
    private System.Net.Sockets.Socket Bind(EndPoint endPoint)
    {
        if (endPoint is UnixDomainSocketEndPoint)
        {
            string directory = Path.GetDirectoryName(Path.GetFullPath(Socket!))!;
            if (!Directory.Exists(directory))
            {
                throw new UsageException($"--socket {Socket}: the directory {directory} does not exist");
            }
            if (Path.Exists(Socket))
            {
                if (!Native.PosixFile.IsSocket(Socket!))
                {
                    throw new UsageException($"--socket {Socket}: a file that is not a socket exists there; refusing to replace it");
                }
                if (ControlChannel.IsLive(Socket!))
                {
                    throw new UsageException($"--socket {Socket}: another server is listening there; refusing to take it over (stop it, or choose another path)");
                }
                File.Delete(Socket!); // a stale socket a killed server left
            }
        }
        try
        {
            return NbdServer.Listen(endPoint);
        }
        catch (SocketException error)
        {
            string what = endPoint is UnixDomainSocketEndPoint ? $"--socket {Socket}" : $"--listen {Listen}";
            throw error.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => new UsageException($"{what}: the address is in use (another server listens there)"),
                SocketError.AccessDenied => new UsageException($"{what}: permission denied"),
                SocketError.AddressNotAvailable => new UsageException($"{what}: not an address of this machine"),
                _ => new UsageException($"{what}: cannot listen there: {error.Message}"),
            };
        }
    }

    private EndPoint ParseEndPoint()
    {
        if ((Socket is null) == (Listen is null))
        {
            throw new UsageException("wb serve needs exactly one of --socket PATH or --listen ADDRESS:PORT");
        }
        if (Socket is not null)
        {
            if (Socket.Length == 0 || System.Text.Encoding.UTF8.GetByteCount(Socket) > 107)
            {
                throw new UsageException($"--socket {Socket}: a unix socket path must be 1 to 107 bytes long");
            }
            return new UnixDomainSocketEndPoint(Socket);
        }
        if (!IPEndPoint.TryParse(Listen!, out IPEndPoint? ip) || ip.Port == 0)
        {
            throw new UsageException($"--listen {Listen}: expected ADDRESS:PORT, e.g. 127.0.0.1:10809");
        }
        if (!IPAddress.IsLoopback(ip.Address) && !AllowRemote)
        {
            throw new UsageException($"--listen {Listen}: not a loopback address; NBD has no authentication (pass --allow-remote to serve it anyway)");
        }
        return ip;
    }
}
