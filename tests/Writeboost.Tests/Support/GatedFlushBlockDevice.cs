using Writeboost.Devices;

namespace Writeboost.Tests.Support;

/// <summary>A decorator whose flushes wait at a gate once it is closed: a test holds a flush in progress.</summary>
internal sealed class GatedFlushBlockDevice(IBlockDevice inner) : IBlockDevice
{
    private readonly ManualResetEventSlim _open = new(true);
    private int _flushesCompleted;

    /// <summary>Set when a flush has reached the closed gate.</summary>
    public ManualResetEventSlim FlushWaiting { get; } = new(false);

    public int FlushesCompleted => Volatile.Read(ref _flushesCompleted);

    public string Name => inner.Name;
    public int SectorSizeBytes => inner.SectorSizeBytes;
    public long SizeBytes => inner.SizeBytes;

    public void Close() => _open.Reset();

    public void Open() => _open.Set();

    public void Read(long offsetBytes, Span<byte> destination) => inner.Read(offsetBytes, destination);

    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None) => inner.Write(offsetBytes, source, options);

    public void Flush()
    {
        if (!_open.IsSet)
        {
            FlushWaiting.Set();
            _open.Wait();
        }
        inner.Flush();
        Interlocked.Increment(ref _flushesCompleted);
    }

    public void Dispose()
    {
        inner.Dispose();
        _open.Dispose();
        FlushWaiting.Dispose();
    }
}
