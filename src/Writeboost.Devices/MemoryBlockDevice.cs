namespace Writeboost.Devices;

/// <summary>
/// A block device in RAM, for tests. It has no volatile write cache: a completed write is already what a
/// crash would leave (crash states are made by the harness's decorators, not here).
/// </summary>
public sealed class MemoryBlockDevice : IBlockDevice
{
    private readonly byte[] _media;
    private bool _disposed;

    /// <summary>A zeroed device of <paramref name="sizeBytes"/> bytes (a multiple of <paramref name="sectorSizeBytes"/>); <paramref name="name"/> labels it in messages.</summary>
    public MemoryBlockDevice(long sizeBytes, int sectorSizeBytes = 512, string name = "memory")
    {
        if (sectorSizeBytes <= 0 || (sectorSizeBytes & (sectorSizeBytes - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(sectorSizeBytes), $"{name}: sector size {sectorSizeBytes} is not a power of two");
        }
        if (sizeBytes < 0 || sizeBytes % sectorSizeBytes != 0 || sizeBytes > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(sizeBytes), $"{name}: size {sizeBytes} is not a whole number of {sectorSizeBytes}-byte sectors that fits in memory");
        }
        _media = new byte[sizeBytes];
        SectorSizeBytes = sectorSizeBytes;
        Name = name;
    }

    /// <inheritdoc />
    public string Name { get; }
    /// <inheritdoc />
    public int SectorSizeBytes { get; }
    /// <inheritdoc />
    public long SizeBytes => _media.LongLength;
    /// <summary>The requests this device has served, for benchmarks and tests.</summary>
    public IoCounters Counters { get; } = new();

    /// <summary>The media itself, for tests that inspect or corrupt it directly.</summary>
    public Span<byte> Media => _media;

    /// <inheritdoc />
    public void Read(long offsetBytes, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        DeviceRange.CheckAligned(this, offsetBytes, destination.Length, "read");
        _media.AsSpan((int)offsetBytes, destination.Length).CopyTo(destination);
        Counters.CountRead(destination.Length);
    }

    /// <inheritdoc />
    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        DeviceRange.CheckAligned(this, offsetBytes, source.Length, "write");
        source.CopyTo(_media.AsSpan((int)offsetBytes));
        Counters.CountWrite(source.Length, options);
    }

    /// <inheritdoc />
    public void Flush()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Counters.CountFlush();
    }

    /// <inheritdoc />
    public void Dispose() => _disposed = true;
}
