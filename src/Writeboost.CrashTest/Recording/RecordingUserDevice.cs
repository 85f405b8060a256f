using Writeboost.Devices;

namespace Writeboost.CrashTest.Recording;

/// <summary>
/// Logs the requests a real client makes of the writeboost device (through the NBD server): each write at issue
/// (with its data and FUA flag) and at acknowledgement, each flush and its acknowledgement. These are the marks
/// the oracle reads. Requests that fail are not acknowledged.
/// </summary>
public sealed class RecordingUserDevice(IBlockDevice inner, CrashLog log) : IBlockDevice
{
    public string Name => inner.Name;
    public int SectorSizeBytes => inner.SectorSizeBytes;
    public long SizeBytes => inner.SizeBytes;
    public bool DurabilityIsCheap => inner.DurabilityIsCheap; // the server then runs the same path as unrecorded

    public void Read(long offsetBytes, Span<byte> destination) => inner.Read(offsetBytes, destination);

    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        bool fua = (options & WriteOptions.Fua) != 0;
        int issued = log.Append(new CrashEvent(EventKind.UserWrite, DeviceId.User, offsetBytes, source.Length, source.ToArray(), fua, -1));
        inner.Write(offsetBytes, source, options);
        log.Append(new CrashEvent(EventKind.UserWriteAck, DeviceId.User, offsetBytes, source.Length, null, fua, issued));
    }

    public void Flush()
    {
        int issued = log.Append(new CrashEvent(EventKind.UserFlush, DeviceId.User, 0, 0, null, false, -1));
        inner.Flush();
        log.Append(new CrashEvent(EventKind.UserFlushAck, DeviceId.User, 0, 0, null, false, issued));
    }

    public void Dispose() => inner.Dispose();
}
