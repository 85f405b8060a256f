namespace Writeboost.Native;

/// <summary>
/// A failed system call on a device or mapping. The message names the call, the path, and the byte range it
/// touched, so an operator can tell which device and which request failed.
/// </summary>
public sealed class NativeIOException : IOException
{
    /// <summary>A failure of <paramref name="operation"/> on <paramref name="path"/> over the given byte range, with the errno as returned and as named.</summary>
    public NativeIOException(string operation, string path, long offsetBytes, long lengthBytes, int errno, string errnoName, string description)
        : base(FormatMessage(operation, path, offsetBytes, lengthBytes, errnoName, description))
    {
        Operation = operation;
        Path = path;
        OffsetBytes = offsetBytes;
        LengthBytes = lengthBytes;
        Errno = errno;
        ErrnoName = errnoName;
        HResult = errno;
    }

    /// <summary>The C call that failed, e.g. <c>pwrite</c>.</summary>
    public string Operation { get; }
    /// <summary>The file, device or mapping the call was made on.</summary>
    public string Path { get; }
    /// <summary>Start of the byte range, or -1 when the call has none (open, fsync).</summary>
    public long OffsetBytes { get; }
    /// <summary>Length of the byte range, or 0 when the call has none.</summary>
    public long LengthBytes { get; }
    /// <summary>The errno the call set (also the exception's HResult).</summary>
    public int Errno { get; }
    /// <summary>The symbolic errno, e.g. <c>EIO</c>.</summary>
    public string ErrnoName { get; }

    private static string FormatMessage(string operation, string path, long offsetBytes, long lengthBytes, string errnoName, string description) =>
        offsetBytes < 0
            ? $"{operation} {path}: {errnoName} ({description})"
            : $"{operation} {path} at offset {offsetBytes} length {lengthBytes}: {errnoName} ({description})";
}
