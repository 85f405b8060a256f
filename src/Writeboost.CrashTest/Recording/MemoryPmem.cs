using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.CrashTest.Recording;

/// <summary>
/// Byte-addressed pmem in RAM, with the dax backend's semantics (stores, line write-back, fence). Stores land
/// at once; what survives a crash is the harness's business (<see cref="RecordingPmemRegion"/>).
/// Optionally copy-on-write over a shared base image, so a crash state costs only the pages it changes.
/// </summary>
public sealed class MemoryPmemRegion : PmemRegion
{
    private readonly PagedImage _image;

    public MemoryPmemRegion(long lengthBytes, byte[]? baseImage = null) : this(new PagedImage(baseImage ?? new byte[lengthBytes]))
    {
    }

    /// <summary>A region that stores into <paramref name="image"/> (a layer over a crash state's durable lines).</summary>
    public MemoryPmemRegion(PagedImage image) : base("memory-pmem", image.LengthBytes) => _image = image;

    public override PmemBackend Backend => PmemBackend.Dax;
    public override PmemGranularity Granularity => PmemGranularity.CacheLine;
    public override bool IsPmem => true;
    internal PagedImage Image => _image;

    protected override void WriteCore(long offsetBytes, ReadOnlySpan<byte> source) => _image.Write(offsetBytes, source);
    protected override void ReadCore(long offsetBytes, Span<byte> destination) => _image.Read(offsetBytes, destination);
    protected override void FlushCore(long offsetBytes, long lengthBytes)
    {
    }

    protected override void DrainCore()
    {
    }

    protected override PageVersion? VersionOfCore(long offsetBytes) => _image.VersionOf(offsetBytes);

    protected override void Dispose(bool disposing)
    {
    }
}

/// <summary>
/// A decorator that logs every pmem store, line write-back and fence, in order. A write-back and a fence carry the
/// thread that issued them (<see cref="CrashEvent.Ref"/>): a fence completes only its own thread's write-backs,
/// as sfence orders only its own CPU's clwb and non-temporal stores.
/// </summary>
public sealed class RecordingPmemRegion(PmemRegion inner, CrashLog log) : PmemRegion(inner.Name, inner.LengthBytes)
{
    public override PmemBackend Backend => inner.Backend;
    public override PmemGranularity Granularity => inner.Granularity;
    public override bool IsPmem => inner.IsPmem;

    protected override void WriteCore(long offsetBytes, ReadOnlySpan<byte> source)
    {
        inner.Write(offsetBytes, source);
        log.Append(new CrashEvent(EventKind.PmemStore, DeviceId.Pmem, offsetBytes, source.Length, source.ToArray(), false, -1));
    }

    protected override void ReadCore(long offsetBytes, Span<byte> destination) => inner.Read(offsetBytes, destination);

    protected override void FlushCore(long offsetBytes, long lengthBytes)
    {
        // Logged before it runs: a store another thread logs after this can only be counted as not written back
        // (which it may be); logged after, a store made between the write-back and its entry would count as written back.
        log.Append(new CrashEvent(EventKind.PmemFlush, DeviceId.Pmem, offsetBytes, lengthBytes, null, false, Environment.CurrentManagedThreadId));
        inner.Flush(offsetBytes, lengthBytes);
    }

    protected override void DrainCore()
    {
        inner.Drain();
        log.Append(new CrashEvent(EventKind.PmemFence, DeviceId.Pmem, 0, 0, null, false, Environment.CurrentManagedThreadId));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
    }
}
