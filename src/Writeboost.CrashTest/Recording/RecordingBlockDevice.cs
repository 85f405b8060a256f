using Writeboost.Devices;

namespace Writeboost.CrashTest.Recording;

/// <summary>A decorator that logs every write (issue and completion, with data and FUA) and flush (begin and end).</summary>
public sealed class RecordingBlockDevice(IBlockDevice inner, CrashLog log, DeviceId device) : IBlockDevice
{
    public string Name => inner.Name;
    public int SectorSizeBytes => inner.SectorSizeBytes;
    public long SizeBytes => inner.SizeBytes;

    public void Read(long offsetBytes, Span<byte> destination) => inner.Read(offsetBytes, destination);

    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        DeviceRange.CheckAligned(this, offsetBytes, source.Length, "write");
        bool fua = (options & WriteOptions.Fua) != 0;
        int issued = log.Append(new CrashEvent(EventKind.Write, device, offsetBytes, source.Length, source.ToArray(), fua, -1));
        inner.Write(offsetBytes, source, options);
        log.Append(new CrashEvent(EventKind.WriteDone, device, offsetBytes, source.Length, null, fua, issued));
    }

    public void Flush()
    {
        int begun = log.Append(new CrashEvent(EventKind.FlushBegin, device, 0, 0, null, false, -1));
        inner.Flush();
        log.Append(new CrashEvent(EventKind.FlushEnd, device, 0, 0, null, false, begun));
    }

    public void Dispose() => inner.Dispose();
}
