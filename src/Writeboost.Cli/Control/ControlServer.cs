using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Writeboost.Cache.Core;
using Writeboost.Cache.Table;
using Writeboost.Devices;

namespace Writeboost.Cli.Control;

/// <summary>
/// The serving side of <see cref="ControlChannel"/>: in <c>wb serve</c>, answers <c>wb status</c> and
/// <c>wb message</c> against the live device — the same output those verbs print when they open the device
/// themselves, from the running one's counters, and messages that act on it (tunables, drop_caches, clear_poison).
/// </summary>
internal sealed class ControlServer : IDisposable
{
    private readonly WriteboostDevice _device;
    private readonly DeviceTable _table;
    private readonly Socket _listener;
    private readonly Thread _acceptLoop;
    private readonly (ulong Device, ulong Inode)? _boundFile;
    private volatile bool _stopping;

    private ControlServer(WriteboostDevice device, DeviceTable table, Socket listener, string path)
    {
        _device = device;
        _table = table;
        _listener = listener;
        SocketPath = path;
        _boundFile = Native.PosixFile.Identity(path);
        _acceptLoop = new Thread(AcceptLoop) { IsBackground = true, Name = "wb-control" };
        _acceptLoop.Start();
    }

    internal string SocketPath { get; }

    /// <summary>
    /// Listens on the control socket of <paramref name="table"/>'s cache. Another live server there (the cache
    /// reached under another path, say) is never replaced: null, and the caller goes on without live control.
    /// </summary>
    internal static ControlServer? Start(WriteboostDevice device, DeviceTable table, out string? problem)
    {
        problem = null;
        string path = ControlChannel.SocketPathFor(table.CachePath);
        string directory = Path.GetDirectoryName(path)!;
        try
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            if (File.Exists(path) || Native.PosixFile.IsSocket(path))
            {
                if (ControlChannel.IsLive(path))
                {
                    problem = $"another server answers on the control socket {path}";
                    return null;
                }
                File.Delete(path);
            }
            Socket listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(8);
            return new ControlServer(device, table, listener, path);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or SocketException)
        {
            problem = $"no live control ({path}: {error.Message})";
            return null;
        }
    }

    private void AcceptLoop()
    {
        while (!_stopping)
        {
            Socket client;
            try
            {
                client = _listener.Accept();
            }
            catch (Exception error) when (error is SocketException or ObjectDisposedException)
            {
                return;
            }
            new Thread(() => Serve(client)) { IsBackground = true, Name = "wb-control-request" }.Start();
        }
    }

    private void Serve(Socket client)
    {
        using (client)
        {
            try
            {
                using NetworkStream stream = new(client, ownsSocket: false);
                using StreamReader reader = new(stream, Encoding.UTF8);
                using StreamWriter writer = new(stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
                if (!CallerMayControl(client))
                {
                    writer.WriteLine(Output.JsonLine(new ControlReply(2, "", "wb: the control socket answers only root and the server's own user\n")));
                    return;
                }
                string? line = reader.ReadLine();
                ControlRequest? request = line is null ? null : Output.FromJsonLine<ControlRequest>(line);
                ControlReply reply = request is null
                    ? new ControlReply(2, "", "wb: a malformed control request\n")
                    : Answer(request);
                writer.WriteLine(Output.JsonLine(reply));
            }
            catch (Exception error) when (error is IOException or SocketException or System.Text.Json.JsonException)
            {
                // A caller that went away or sent nonsense: only its own request is lost.
            }
        }
    }

    /// <summary>Root or the server's own user (SO_PEERCRED: pid, uid, gid of the caller).</summary>
    private static bool CallerMayControl(Socket client)
    {
        Span<byte> credentials = stackalloc byte[12];
        const int SolSocket = 1;
        const int SoPeerCred = 17;
        if (client.GetRawSocketOption(SolSocket, SoPeerCred, credentials) < 12)
        {
            return false;
        }
        uint uid = BitConverter.ToUInt32(credentials[4..]);
        return uid == 0 || uid == DeviceProbe.EffectiveUserId;
    }

    private ControlReply Answer(ControlRequest request)
    {
        using StringWriter stdout = new(CultureInfo.InvariantCulture);
        using StringWriter stderr = new(CultureInfo.InvariantCulture);
        int exit;
        try
        {
            DeviceTable theirs = DeviceTable.Parse(request.Table);
            if (Mismatch(theirs) is { } difference)
            {
                return new ControlReply(2, "", $"wb: {_table.CachePath} is served by process {Environment.ProcessId} with the table '{string.Join(' ', _table.ToWords())}': {difference}\n");
            }
            exit = request.Verb switch
            {
                "status" => StatusPrinter.Print(_device, _table, request.Json, stdout, stderr, live: Environment.ProcessId),
                "message" => MessagePrinter.Apply(_device, request.Message ?? "", request.Json, stdout, live: Environment.ProcessId),
                _ => throw new UsageException($"the control socket does not take '{request.Verb}'"),
            };
        }
        catch (Exception error) when (error is UsageException or ArgumentException)
        {
            stderr.WriteLine($"wb: {error.Message}");
            exit = 2;
        }
        catch (Exception error) when (error is IOException or InvalidOperationException or InvalidDataException)
        {
            stderr.WriteLine($"wb: {error.Message}");
            exit = 1;
        }
        return new ControlReply(exit, stdout.ToString(), stderr.ToString());
    }

    /// <summary>What makes the caller's table name other devices than the served one (null: the same devices).</summary>
    private string? Mismatch(DeviceTable theirs)
    {
        if (theirs.Mode != _table.Mode)
        {
            return $"it runs mode {(int)_table.Mode}, the table says mode {(int)theirs.Mode}";
        }
        if (!Same(theirs.BackingPath, _table.BackingPath))
        {
            return $"its backing device is {_table.BackingPath}, not {theirs.BackingPath}";
        }
        if (theirs.PmemPath is not null && _table.PmemPath is not null && !Same(theirs.PmemPath, _table.PmemPath))
        {
            return $"its pmem buffer is {_table.PmemPath}, not {theirs.PmemPath}";
        }
        return null;
    }

    private static bool Same(string a, string b)
    {
        try
        {
            return DeviceProbe.StableIdentity(a) == DeviceProbe.StableIdentity(b);
        }
        catch (IOException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _listener.Dispose();
        _acceptLoop.Join();
        // Only our own socket file: a server started since (after this one stopped listening) keeps its own.
        if (_boundFile is not null && Native.PosixFile.Identity(SocketPath) == _boundFile)
        {
            File.Delete(SocketPath);
        }
    }
}
