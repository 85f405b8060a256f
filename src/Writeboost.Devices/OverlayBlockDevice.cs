namespace Writeboost.Devices;

/// <summary>
/// A block device that is never written: writes land in an in-memory copy-on-write overlay of 4 KiB pages, and
/// reads see the overlay over the device. Whoever opens a cache only to look at it (<c>wb status</c>) runs the
/// same recovery as a real open on top of this, so what it reports is what an open would do, and the device
/// itself stays byte-identical. Flush does nothing (there is nothing to make durable).
/// </summary>
public sealed class OverlayBlockDevice(IBlockDevice inner, bool ownsInner = true) : IBlockDevice
{
    private const int PageBytes = 4096;
    private readonly Dictionary<long, byte[]> _pages = [];
    private readonly Lock _lock = new();

    /// <inheritdoc />
    public string Name => inner.Name;
    /// <inheritdoc />
    public int SectorSizeBytes => inner.SectorSizeBytes;
    /// <inheritdoc />
    public long SizeBytes => inner.SizeBytes;

    /// <summary>Bytes written to the overlay (never to the device).</summary>
    public long OverlaidBytes
    {
        get
        {
            lock (_lock)
            {
                return (long)_pages.Count * PageBytes;
            }
        }
    }

    /// <inheritdoc />
    public void Read(long offsetBytes, Span<byte> destination)
    {
        DeviceRange.CheckAligned(this, offsetBytes, destination.Length, "read");
        inner.Read(offsetBytes, destination);
        lock (_lock)
        {
            if (_pages.Count == 0)
            {
                return;
            }
            for (long page = offsetBytes / PageBytes; page * PageBytes < offsetBytes + destination.Length; page++)
            {
                if (_pages.TryGetValue(page, out byte[]? data))
                {
                    Overlap(page, offsetBytes, destination.Length, out int inPage, out int inRange, out int length);
                    data.AsSpan(inPage, length).CopyTo(destination[inRange..]);
                }
            }
        }
    }

    /// <inheritdoc />
    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        DeviceRange.CheckAligned(this, offsetBytes, source.Length, "write");
        lock (_lock)
        {
            for (long page = offsetBytes / PageBytes; page * PageBytes < offsetBytes + source.Length; page++)
            {
                if (!_pages.TryGetValue(page, out byte[]? data))
                {
                    data = new byte[PageBytes];
                    int present = (int)Math.Min(PageBytes, SizeBytes - page * PageBytes);
                    inner.Read(page * PageBytes, data.AsSpan(0, present));
                    _pages[page] = data;
                }
                Overlap(page, offsetBytes, source.Length, out int inPage, out int inRange, out int length);
                source.Slice(inRange, length).CopyTo(data.AsSpan(inPage));
            }
        }
    }

    /// <inheritdoc />
    public void Flush()
    {
    }

    private static void Overlap(long page, long offsetBytes, int lengthBytes, out int inPage, out int inRange, out int length)
    {
        long start = Math.Max(page * PageBytes, offsetBytes);
        long end = Math.Min((page + 1) * PageBytes, offsetBytes + lengthBytes);
        inPage = (int)(start - page * PageBytes);
        inRange = (int)(start - offsetBytes);
        length = (int)(end - start);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (ownsInner)
        {
            inner.Dispose();
        }
    }
}
