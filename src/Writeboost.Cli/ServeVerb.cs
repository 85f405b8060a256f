using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using CommandLine;
using Writeboost.Cache.Core;
using Writeboost.Nbd;

namespace Writeboost.Cli;

[Verb("serve", HelpText = "Serve the writeboost device over NBD (fixed newstyle; FLUSH, FUA, TRIM, WRITE_ZEROES). Prints a line with 'ready' when it accepts connections; SIGINT/SIGTERM drain and close cleanly.")]
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
        bool staleSocket = false;
        if (endPoint is UnixDomainSocketEndPoint && Path.Exists(Socket))
        {
            // Only a socket (one a killed server left) is replaced; any other file there is someone's data.
            staleSocket = Writeboost.Native.PosixFile.IsSocket(Socket!)
                ? true
                : throw new UsageException($"--socket {Socket}: a file that is not a socket exists there; refusing to replace it");
        }
        using WriteboostDevice device = Open();
        WriteboostStatus recovered = device.Status();
        RecoveryOutput.ToStderr(recovered);
        if (Json)
        {
            Output.Json(new { Recovery = recovered.Recovery, recovered.Degraded, recovered.PoisonedBlocks, recovered.Poisoned });
        }
        using NbdServer server = new(device, ExportName);
        if (staleSocket)
        {
            File.Delete(Socket!);
        }
        server.Start(endPoint);
        using ManualResetEventSlim stop = new();
        using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.Set(); });
        using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.Set(); });
        string where = endPoint is UnixDomainSocketEndPoint ? $"nbd+unix:///{ExportName}?socket={Socket}" : $"nbd://{Listen}/{ExportName}";
        Console.WriteLine($"ready: serving {device.Name} ({device.SizeBytes} bytes, mode {(int)device.Mode}) at {where}");
        Console.Out.Flush();
        stop.Wait();
        server.Stop();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"stopped after {server.RequestsServed} requests; closing the device cleanly"));
        if (endPoint is UnixDomainSocketEndPoint)
        {
            File.Delete(Socket!);
        }
        return 0;
    }

    private EndPoint ParseEndPoint()
    {
        if ((Socket is null) == (Listen is null))
        {
            throw new UsageException("wb serve needs exactly one of --socket PATH or --listen ADDRESS:PORT");
        }
        if (Socket is not null)
        {
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
