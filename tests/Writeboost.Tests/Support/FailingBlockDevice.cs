using Writeboost.Devices;

namespace Writeboost.Tests.Support;

/// <summary>A decorator whose writes, flushes or next read fail on demand with EIO-like IOExceptions.</summary>
internal sealed class FailingBlockDevice(IBlockDevice inner) : IBlockDevice
{
    public volatile bool FailWrites;
    public volatile bool FailFlushes;
    /// <summary>The next read fails once (a transient read error), then reads work again.</summary>
    public volatile bool FailNextRead;

    public string Name => inner.Name;
    public int SectorSizeBytes => inner.SectorSizeBytes;
    public long SizeBytes => inner.SizeBytes;

    public void Read(long offsetBytes, Span<byte> destination)
    {
        if (FailNextRead)
        {
            FailNextRead = false;
            throw new IOException($"{Name}: injected read error at offset {offsetBytes}");
        }
        inner.Read(offsetBytes, destination);
    }

    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        if (FailWrites)
        {
            throw new IOException($"{Name}: injected write error at offset {offsetBytes}");
        }
        inner.Write(offsetBytes, source, options);
    }

    public void Flush()
    {
        if (FailFlushes)
        {
            throw new IOException($"{Name}: injected flush error");
        }
        inner.Flush();
    }

    public void Dispose() => inner.Dispose();
}
