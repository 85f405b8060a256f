using Writeboost.Devices;

namespace Writeboost.CrashTest.Recording;

/// <summary>
/// A byte image with copy-on-write 4 KiB pages over a base array that is never modified: thousands of crash
/// states share one base and each pays only for the pages recovery or the state itself changes. Safe for
/// concurrent use, as a device is: the live device of a recording runs on these images, and its flush worker,
/// readers and mode-1 writers use them at once (each request is applied whole, under one lock).
/// </summary>
public sealed class PagedImage(byte[] baseImage)
{
    private const int PageBytes = 4096;
    /// <summary>The page of every whole-page write of zeros (shared, never written: a later write to it copies first).</summary>
    private static readonly byte[] ZeroPage = new byte[PageBytes];
    private readonly Dictionary<long, byte[]> _pages = [];
    private readonly Lock _lock = new();

    public long LengthBytes => baseImage.LongLength;

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

    public void Write(long offsetBytes, ReadOnlySpan<byte> source)
    {
        lock (_lock)
        {
            WriteLocked(offsetBytes, source);
        }
    }

    public void Read(long offsetBytes, Span<byte> destination)
    {
        lock (_lock)
        {
            ReadLocked(offsetBytes, destination);
        }
    }

    private void WriteLocked(long offsetBytes, ReadOnlySpan<byte> source)
    {
        while (!source.IsEmpty)
        {
            long page = offsetBytes / PageBytes;
            int inPage = (int)(offsetBytes % PageBytes);
            int n = Math.Min(PageBytes - inPage, source.Length);
            ReadOnlySpan<byte> piece = source[..n];
            if (n == PageBytes && !piece.ContainsAnyExcept((byte)0))
            {
                _pages[page] = ZeroPage; // a format's zeroing: no page of its own until something else is written there
            }
            else
            {
                _pages.TryGetValue(page, out byte[]? copy);
                if (copy is null || copy == ZeroPage)
                {
                    byte[] fresh = new byte[PageBytes];
                    if (copy is null && n < PageBytes)
                    {
                        int available = (int)Math.Min(PageBytes, baseImage.LongLength - page * PageBytes);
                        baseImage.AsSpan((int)(page * PageBytes), available).CopyTo(fresh);
                    }
                    _pages[page] = copy = fresh;
                }
                piece.CopyTo(copy.AsSpan(inPage));
            }
            source = source[n..];
            offsetBytes += n;
        }
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
                baseImage.AsSpan((int)offsetBytes, n).CopyTo(destination);
            }
            destination = destination[n..];
            offsetBytes += n;
        }
    }
}

/// <summary>A block device over a <see cref="PagedImage"/>: a crash state's cache or backing device.</summary>
internal sealed class PagedBlockDevice(byte[] baseImage, string name) : IBlockDevice
{
    public PagedImage Image { get; } = new(baseImage);
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

    public void Flush()
    {
    }

    public void Dispose()
    {
    }
}
