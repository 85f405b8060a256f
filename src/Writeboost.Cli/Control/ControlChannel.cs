using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Writeboost.Devices;

namespace Writeboost.Cli.Control;

/// <summary>A request on the control channel: a verb of <c>wb</c> to run against the live device, with the caller's table.</summary>
/// <param name="Verb">"status" or "message".</param>
/// <param name="Table">The caller's table words (the server refuses a table that names other devices).</param>
/// <param name="Message">For "message": the message.</param>
internal sealed record ControlRequest(string Verb, IReadOnlyList<string> Table, bool Json, string? Message = null);

/// <summary>What the server did: the exit code and what the verb printed, to be printed as it is by the caller.</summary>
internal sealed record ControlReply(int Exit, string Stdout, string Stderr);

/// <summary>
/// How <c>wb status</c> and <c>wb message</c> reach a running <c>wb serve</c>, as dmsetup reaches a live dm
/// device: a unix socket whose name is derived from the cache device's stable identity (any path naming the same
/// cache file or disk finds it), in a directory only its owner may enter — /run/writeboost for root, else
/// $XDG_RUNTIME_DIR/writeboost or /tmp/writeboost-UID — made mode 0700, the socket 0600; the server also checks
/// each caller's uid (SO_PEERCRED): root or its own. One JSON line each way.
/// </summary>
internal static class ControlChannel
{
    /// <summary>The control socket of the cache at <paramref name="cachePath"/> (which must exist).</summary>
    internal static string SocketPathFor(string cachePath)
    {
        byte[] hash = SHA256.HashData(Encoding.UTF8.GetBytes(DeviceProbe.StableIdentity(cachePath)));
        return Path.Combine(Directory, Convert.ToHexStringLower(hash.AsSpan(0, 10)) + ".ctl");
    }

    internal static string Directory
    {
        get
        {
            uint uid = DeviceProbe.EffectiveUserId;
            if (uid == 0)
            {
                return "/run/writeboost";
            }
            string? runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
            return runtime is { Length: > 0 } && System.IO.Directory.Exists(runtime)
                ? Path.Combine(runtime, "writeboost")
                : string.Create(CultureInfo.InvariantCulture, $"/tmp/writeboost-{uid}");
        }
    }

    /// <summary>
    /// Sends <paramref name="request"/> to the server of the cache at <paramref name="cachePath"/>. Null when no
    /// server answers there (no socket, or one a killed server left): the caller opens the device itself.
    /// </summary>
    internal static ControlReply? TryCall(string cachePath, ControlRequest request)
    {
        string socketPath;
        try
        {
            socketPath = SocketPathFor(cachePath);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            return null; // no such cache path: the verb's own open says so
        }
        if (!File.Exists(socketPath))
        {
            return null;
        }
        using Socket socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        }
        catch (SocketException error) when (error.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable)
        {
            return null; // a stale socket: nobody listens
        }
        catch (SocketException error) when (error.SocketErrorCode == SocketError.AccessDenied)
        {
            throw new UnauthorizedAccessException($"{cachePath} is served by a running wb serve whose control socket {socketPath} this user may not use (root or the server's user may)");
        }
        using NetworkStream stream = new(socket, ownsSocket: false);
        using StreamWriter writer = new(stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
        using StreamReader reader = new(stream, Encoding.UTF8);
        writer.WriteLine(Output.JsonLine(request));
        string? line = reader.ReadLine();
        return line is null
            ? throw new IOException($"the server of {cachePath} closed its control socket {socketPath} without an answer (it is stopping?)")
            : Output.FromJsonLine<ControlReply>(line) ?? throw new IOException($"the server of {cachePath} answered nonsense on {socketPath}");
    }

    /// <summary>Whether something listens on the unix socket at <paramref name="path"/> (a live server, not a stale file).</summary>
    internal static bool IsLive(string path)
    {
        using Socket probe = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException error) when (error.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable or SocketError.AddressNotAvailable)
        {
            return false;
        }
    }
}
