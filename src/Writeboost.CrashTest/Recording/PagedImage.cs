using System.Diagnostics;
using Writeboost.Devices;

namespace Writeboost.CrashTest.Recording;

/// <summary>
/// A byte image with copy-on-write 4 KiB pages over a base that is never modified through it: thousands of crash
/// states share one base and each pays only for the pages recovery or the state itself changes. The base is an
/// array or another image (a <em>lower layer</em>: a timeline's durable image under a crash state's, a frozen crash
/// state under the timelines of its recovery's own crashes). A lower layer must not change while a layer over it is
/// used: a layer reads through to it page by page, and copies a page from it only when it writes part of that page
/// (checked in Debug builds). Safe for concurrent use, as a device is: the live device of a recording runs on these
/// images, and its flush worker, readers and mode-1 writers use them at once (each request is applied whole, under
/// one lock; a layer holds its own lock while it reads through, never the other way round).
/// <para>A crash campaign makes an image for every device of every state it checks and drops it a moment later;
/// the checker gives such an image back (<see cref="Recycle"/>) and the next one on the same thread reuses its pages and
/// its page table instead of allocating them: at order 11 recovery writes a megabyte per state, and allocating it
/// was a third of a state's cost (the collector's, mostly).</para>
/// </summary>
public sealed class PagedImage
{
    private const int PageBytes = PagePool.PageBytes;
    /// <summary>The page of every whole-page write of zeros (shared, never written: a later write to it copies first).</summary>
    private static readonly byte[] ZeroPage = new byte[PageBytes];
    private readonly Dictionary<long, byte[]> _pages;
    private readonly Lock _lock = new();
    private readonly byte[]? _baseArray;
    private readonly PagedImage? _lower;
    /// <summary>The lower layer's <see cref="_writes"/> when this layer was made over it: it must not move while this layer lives.</summary>
    private readonly long _lowerWrites;
    /// <summary>Writes made to this image so far (how a layer over it sees that it changed).</summary>
    private long _writes;
    /// <summary>
    /// Once a layer has been made over this image: for each page written since, the <see cref="_writes"/> of its last
    /// write (a page not in it was not written since). What <see cref="VersionOf"/> tells of a page read through to here.
    /// </summary>
    private Dictionary<long, long>? _pageStamps;
    /// <summary>Never written again (<see cref="Freeze"/>): read without the lock, by every thread layered over it at once.</summary>
    private volatile bool _frozen;
    /// <summary>Given back (<see cref="Recycle"/>): its pages are another image's now, and any use throws.</summary>
    private bool _recycled;

    /// <summary>An image over <paramref name="baseImage"/>, which it never writes to.</summary>
    public PagedImage(byte[] baseImage)
    {
        _baseArray = baseImage;
        _pages = PagePool.TakeTable();
        LengthBytes = baseImage.LongLength;
    }

    /// <summary>A layer over <paramref name="lower"/>, which it never writes to and which must not change while this layer is used.</summary>
    public PagedImage(PagedImage lower) : this(lower, PagePool.TakeTable())
    {
    }

    private PagedImage(PagedImage lower, Dictionary<long, byte[]> pages)
    {
        lower.StampPagesFromNowOn();
        _lower = lower;
        _lowerWrites = lower.Writes;
        _pages = pages;
        LengthBytes = lower.LengthBytes;
    }

    private PagedImage(byte[] baseImage, Dictionary<long, byte[]> pages)
    {
        _baseArray = baseImage;
        _pages = pages;
        LengthBytes = baseImage.LongLength;
    }

    public long LengthBytes { get; }

    /// <summary>Writes made to this image so far (0: nobody wrote to it).</summary>
    internal long Writes
    {
        get
        {
            if (_frozen)
            {
                return _writes;
            }
            lock (_lock)
            {
                return _writes;
            }
        }
    }

    /// <summary>The byte at <paramref name="offsetBytes"/>.</summary>
    public byte this[long offsetBytes]
    {
        get
        {
            Span<byte> one = stackalloc byte[1];
            Read(offsetBytes, one);
            return one[0];
        }
    }

    /// <summary>Pages written since the image was made (0: nobody wrote to it).</summary>
    public int ModifiedPages
    {
        get
        {
            lock (_lock)
            {
                return _pages.Count;
            }
        }
    }

    /// <summary>
    /// An image that holds what this one holds now and goes its own way after: over the same base, with copies of
    /// the pages written so far (a crash state's few, not the whole image).
    /// </summary>
    public PagedImage Snapshot()
    {
        lock (_lock)
        {
            ThrowIfRecycled();
            Dictionary<long, byte[]> pages = PagePool.TakeTable();
            foreach ((long page, byte[] bytes) in _pages)
            {
                pages[page] = bytes == ZeroPage ? ZeroPage : PagePool.Copy(bytes);
            }
            return _lower is not null ? new PagedImage(_lower, pages) : new PagedImage(_baseArray!, pages);
        }
    }

    /// <summary>
    /// Makes the image read-only from now on, and the layers under it: a log's start, which each checking thread's
    /// timelines are layered over at once. Its reads then take no lock (its pages no longer change); a write throws.
    /// </summary>
    public PagedImage Freeze()
    {
        lock (_lock)
        {
            _frozen = true;
        }
        if (_lower is { _frozen: false } lower)
        {
            lower.Freeze();
        }
        return this;
    }

    /// <summary>
    /// Gives this image's pages and page table to the calling thread's pool, for the images made after it: this image,
    /// and every layer over it, must never be used again (a use throws; a layer over it that reads is caught in Debug
    /// builds, as for any lower layer that changes). A frozen image is shared by threads that read it without its lock,
    /// and is left to the collector. What the pool cannot hold goes to the collector too.
    /// </summary>
    public void Recycle()
    {
        lock (_lock)
        {
            if (_frozen || _recycled)
            {
                return;
            }
            _recycled = true;
            _writes++;
            foreach (byte[] page in _pages.Values)
            {
                if (page != ZeroPage)
                {
                    PagePool.Give(page);
                }
            }
            PagePool.GiveTable(_pages);
        }
    }

    private void StampPagesFromNowOn()
    {
        lock (_lock)
        {
            _pageStamps ??= [];
        }
    }

    /// <summary>
    /// What the page at <paramref name="offsetBytes"/> holds now (<see cref="IBlockDevice.VersionOf"/>): the layer that
    /// holds it, and when that layer last wrote it. This layer's own pages carry its count of writes (any write moves
    /// them all); a lower layer's carry the count at their last write since a layer was first made over it, so a page
    /// that a timeline does not write again keeps its token from one crash state to the next as the timeline advances.
    /// A base array is the bottom layer's and taken to be unchanging once that layer is frozen (nothing writes a base);
    /// under a layer not frozen it has no token.
    /// </summary>
    public PageVersion? VersionOf(long offsetBytes)
    {
        long page = offsetBytes / PageBytes;
        lock (_lock)
        {
            ThrowIfRecycled();
            if (_pages.ContainsKey(page))
            {
                return new PageVersion(this, _writes);
            }
        }
        for (PagedImage? layer = _lower; layer is not null; layer = layer._lower)
        {
            layer.ThrowIfRecycled();
            if (layer._pages.ContainsKey(page))
            {
                Debug.Assert(layer._pageStamps is not null, "a lower layer stamps the pages it writes");
                return new PageVersion(layer, layer._pageStamps!.GetValueOrDefault(page));
            }
            if (layer._lower is null)
            {
                return layer._frozen ? new PageVersion(layer, 0) : null;
            }
        }
        return _frozen ? new PageVersion(this, _writes) : null; // the page is in this layer's base array
    }

    private void ThrowIfRecycled()
    {
        if (_recycled)
        {
            throw new InvalidOperationException("a recycled image is never used again: its pages belong to another image now");
        }
    }

    public void Write(long offsetBytes, ReadOnlySpan<byte> source)
    {
        lock (_lock)
        {
            ThrowUnlessWritable();
            WriteLocked(offsetBytes, source);
        }
    }

    private void ThrowUnlessWritable()
    {
        ThrowIfRecycled();
        if (_frozen)
        {
            throw new InvalidOperationException("a frozen image (a log's start) is never written: layer an image over it");
        }
    }

    /// <summary>
    /// The same as a <see cref="Write"/> of <paramref name="lengthBytes"/> zeros, without reading any: whole pages
    /// become the shared zero page (a format zeroes a megabyte per open, and scanning zeros to find them zero was a
    /// twentieth of a default campaign).
    /// </summary>
    public void WriteZeroes(long offsetBytes, long lengthBytes)
    {
        lock (_lock)
        {
            ThrowUnlessWritable();
            long end = offsetBytes + lengthBytes;
            while (offsetBytes < end)
            {
                long page = offsetBytes / PageBytes;
                int inPage = (int)(offsetBytes % PageBytes);
                int n = (int)Math.Min(PageBytes - inPage, end - offsetBytes);
                if (n == PageBytes)
                {
                    _writes++;
                    SetZeroPageLocked(page);
                }
                else
                {
                    WriteLocked(offsetBytes, ZeroPage.AsSpan(0, n));
                }
                offsetBytes += n;
            }
        }
    }

    public void Read(long offsetBytes, Span<byte> destination)
    {
        if (_frozen)
        {
            ReadLocked(offsetBytes, destination); // nothing writes it any more
            return;
        }
        lock (_lock)
        {
            ThrowIfRecycled();
            ReadLocked(offsetBytes, destination);
        }
    }

    private void WriteLocked(long offsetBytes, ReadOnlySpan<byte> source)
    {
        _writes++;
        while (!source.IsEmpty)
        {
            long page = offsetBytes / PageBytes;
            if (_pageStamps is not null)
            {
                _pageStamps[page] = _writes;
            }
            int inPage = (int)(offsetBytes % PageBytes);
            int n = Math.Min(PageBytes - inPage, source.Length);
            ReadOnlySpan<byte> piece = source[..n];
            if (n == PageBytes && !piece.ContainsAnyExcept((byte)0))
            {
                SetZeroPageLocked(page);
            }
            else
            {
                _pages.TryGetValue(page, out byte[]? copy);
                if (copy is null || copy == ZeroPage)
                {
                    // Zeroed only where nothing below fills it: most pages are copied up whole or written whole.
                    int available = (int)Math.Min(PageBytes, LengthBytes - page * PageBytes);
                    bool filled = n == PageBytes || (copy is null && available == PageBytes);
                    byte[] fresh = PagePool.Take();
                    if (!filled)
                    {
                        fresh.AsSpan().Clear(); // as new: the zero page written in part, or the image's last page beyond its end
                    }
                    if (copy is null && n < PageBytes)
                    {
                        ReadBaseLocked(page * PageBytes, fresh.AsSpan(0, available));
                    }
                    _pages[page] = copy = fresh;
                }
                piece.CopyTo(copy.AsSpan(inPage));
            }
            source = source[n..];
            offsetBytes += n;
        }
    }

    /// <summary>Page <paramref name="page"/> holds zeros: the shared zero page, no page of its own until something else is written there.</summary>
    private void SetZeroPageLocked(long page)
    {
        if (_pageStamps is not null)
        {
            _pageStamps[page] = _writes;
        }
        if (_pages.TryGetValue(page, out byte[]? replaced) && replaced != ZeroPage)
        {
            PagePool.Give(replaced);
        }
        _pages[page] = ZeroPage;
    }

    private void ReadLocked(long offsetBytes, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            long page = offsetBytes / PageBytes;
            int inPage = (int)(offsetBytes % PageBytes);
            int n = Math.Min(PageBytes - inPage, destination.Length);
            if (_pages.TryGetValue(page, out byte[]? copy))
            {
                copy.AsSpan(inPage, n).CopyTo(destination);
            }
            else
            {
                ReadBaseLocked(offsetBytes, destination[..n]);
            }
            destination = destination[n..];
            offsetBytes += n;
        }
    }

    /// <summary>What the base holds at <paramref name="offsetBytes"/> (within one page).</summary>
    private void ReadBaseLocked(long offsetBytes, Span<byte> destination)
    {
        if (_lower is null)
        {
            _baseArray.AsSpan((int)offsetBytes, destination.Length).CopyTo(destination);
            return;
        }
        Debug.Assert(_lower.Writes == _lowerWrites, "a lower layer changed under a layer still in use");
        _lower.ReadUnderLayer(offsetBytes, destination);
    }

    /// <summary>
    /// A read by a layer over this image, within one page: without this image's lock, since nothing writes a lower
    /// layer while a layer over it is used (the caller asserts it) and a dictionary nobody writes may be read by
    /// any number of threads. Whoever made the layer over it published this image's last writes with it.
    /// </summary>
    private void ReadUnderLayer(long offsetBytes, Span<byte> destination)
    {
        ThrowIfRecycled();
        ReadLocked(offsetBytes, destination);
    }
}

/// <summary>A block device over a <see cref="PagedImage"/>: a crash state's cache or backing device.</summary>
internal sealed class PagedBlockDevice(PagedImage image, string name) : IBlockDevice
{
    /// <summary>A device over <paramref name="baseImage"/>, which it never writes to.</summary>
    public PagedBlockDevice(byte[] baseImage, string name) : this(new PagedImage(baseImage), name)
    {
    }

    public PagedImage Image { get; } = image;
    public string Name => name;
    public int SectorSizeBytes => 512;
    public long SizeBytes => Image.LengthBytes;

    public void Read(long offsetBytes, Span<byte> destination)
    {
        DeviceRange.CheckAligned(this, offsetBytes, destination.Length, "read");
        Image.Read(offsetBytes, destination);
    }

    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        DeviceRange.CheckAligned(this, offsetBytes, source.Length, "write");
        Image.Write(offsetBytes, source);
    }

    public PageVersion? VersionOf(long offsetBytes)
    {
        PageVersion.CheckPage(Name, SizeBytes, offsetBytes);
        return Image.VersionOf(offsetBytes);
    }

    public void WriteZeroes(long offsetBytes, long lengthBytes, WriteOptions options = WriteOptions.None)
    {
        DeviceRange.CheckAligned(this, offsetBytes, lengthBytes, "write zeroes");
        Image.WriteZeroes(offsetBytes, lengthBytes);
    }

    public void Flush()
    {
    }

    public void Dispose()
    {
    }
}
