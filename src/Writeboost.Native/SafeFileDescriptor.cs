using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Writeboost.Native;

/// <summary>A POSIX file descriptor owned by the runtime's handle machinery; closed exactly once.</summary>
[SupportedOSPlatform("linux")]
internal sealed class SafeFileDescriptor : SafeHandle
{
    public SafeFileDescriptor() : base(invalidHandleValue: -1, ownsHandle: true)
    {
    }

    internal SafeFileDescriptor(int fd) : this() => SetHandle(fd);

    public override bool IsInvalid => handle == -1;

    /// <summary>The raw number, for messages and for Mono.Unix calls that take an int.</summary>
    internal int Number => (int)handle;

    protected override bool ReleaseHandle() => LibC.close((int)handle) == 0;
}
