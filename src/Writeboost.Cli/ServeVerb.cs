using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using CommandLine;
using Writeboost.Cache.Core;
using Writeboost.Cli.Control;
using Writeboost.Nbd;

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

    internal int Run()
    {
        EndPoint endPoint = ParseEndPoint();
        _ = ParsedTable;
        // Everything the user typed is checked, and the socket bound, before the device is opened (which may write).
        System.Net.Sockets.Socket listener = Bind(endPoint);
        (ulong, ulong)? boundSocket = endPoint is UnixDomainSocketEndPoint ? Native.PosixFile.Identity(Socket!) : null;
        try
        {
            return Serve(endPoint, listener);
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
        using ManualResetEventSlim stop = new();
        using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.Set(); });
        using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.Set(); });
        string where = endPoint is UnixDomainSocketEndPoint ? $"nbd+unix:///{ExportName}?socket={Socket}" : $"nbd://{Listen}/{ExportName}";
        Console.WriteLine($"ready: serving {device.Name} ({device.SizeBytes} bytes, mode {(int)device.Mode}) at {where}{(control is null ? "" : $"; control socket {control.SocketPath}")}");
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
