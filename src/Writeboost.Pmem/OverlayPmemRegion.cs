namespace Writeboost.Pmem;

/// <summary>
/// A pmem region that is never written: stores land in an in-memory copy-on-write overlay, reads see it over the
/// region; write-backs and fences do nothing. The pmem side of a read-only open (see
/// <c>Writeboost.Devices.OverlayBlockDevice</c>).
/// </summary>
public sealed class OverlayPmemRegion(PmemRegion inner, bool ownsInner = true) : PmemRegion(inner.Name, inner.LengthBytes)
{
    private const int PageBytes = 4096;
    private readonly Dictionary<long, byte[]> _pages = [];
    private readonly Lock _lock = new();

    /// <inheritdoc />
    public override PmemBackend Backend => inner.Backend;
    /// <inheritdoc />
    public override PmemGranularity Granularity => inner.Granularity;
    /// <inheritdoc />
    public override bool IsPmem => inner.IsPmem;

    /// <inheritdoc />
    protected override void WriteCore(long offsetBytes, ReadOnlySpan<byte> source)
    {
        lock (_lock)
        {
            for (long page = offsetBytes / PageBytes; page * PageBytes < offsetBytes + source.Length; page++)
            {
                if (!_pages.TryGetValue(page, out byte[]? data))
                {
                    data = new byte[PageBytes];
                    inner.Read(page * PageBytes, data.AsSpan(0, (int)Math.Min(PageBytes, LengthBytes - page * PageBytes)));
                    _pages[page] = data;
                }
                long start = Math.Max(page * PageBytes, offsetBytes);
                long end = Math.Min((page + 1) * PageBytes, offsetBytes + source.Length);
                source.Slice((int)(start - offsetBytes), (int)(end - start)).CopyTo(data.AsSpan((int)(start - page * PageBytes)));
            }
        }
    }

    /// <inheritdoc />
    protected override void ReadCore(long offsetBytes, Span<byte> destination)
    {
        inner.Read(offsetBytes, destination);
        lock (_lock)
        {
            for (long page = offsetBytes / PageBytes; _pages.Count > 0 && page * PageBytes < offsetBytes + destination.Length; page++)
            {
                if (_pages.TryGetValue(page, out byte[]? data))
                {
                    long start = Math.Max(page * PageBytes, offsetBytes);
                    long end = Math.Min((page + 1) * PageBytes, offsetBytes + destination.Length);
                    data.AsSpan((int)(start - page * PageBytes), (int)(end - start)).CopyTo(destination[(int)(start - offsetBytes)..]);
                }
            }
        }
    }

    /// <inheritdoc />
    protected override void FlushCore(long offsetBytes, long lengthBytes)
    {
    }

    /// <inheritdoc />
    protected override void DrainCore()
    {
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing && ownsInner)
        {
            inner.Dispose();
        }
    }
}
