using System.Runtime.Versioning;

namespace Writeboost.Native;

/// <summary>Signals to other processes (.NET's Process can only SIGKILL): SIGTERM asks a server to drain and close.</summary>
[SupportedOSPlatform("linux")]
internal static class Signals
{
    /// <summary>Sends SIGTERM to <paramref name="pid"/>; false when there is no such process.</summary>
    internal static bool Terminate(int pid) => LibC.kill(pid, LibC.SIGTERM) == 0;
}
