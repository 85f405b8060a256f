using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Mono.Unix;
using Mono.Unix.Native;

namespace Writeboost.Native;

/// <summary>Turns the errno of the call that just failed into a typed exception (checked once, at the call).</summary>
[SupportedOSPlatform("linux")]
internal static class Errors
{
    internal static int LastErrno => Marshal.GetLastPInvokeError();

    internal static NativeIOException FromErrno(int errno, string operation, string path, long offsetBytes = -1, long lengthBytes = 0)
    {
        string name;
        string description;
        try
        {
            Errno managed = NativeConvert.ToErrno(errno);
            name = managed.ToString();
            description = UnixMarshal.GetErrorDescription(managed);
        }
        catch (ArgumentOutOfRangeException)
        {
            name = "errno " + errno;
            description = "unknown error";
        }
        return new NativeIOException(operation, path, offsetBytes, lengthBytes, errno, name, description);
    }

    internal static NativeIOException Last(string operation, string path, long offsetBytes = -1, long lengthBytes = 0) =>
        FromErrno(LastErrno, operation, path, offsetBytes, lengthBytes);
}
