using Writeboost.Devices;

namespace Writeboost.Tests.Support;

/// <summary>
/// A decorator whose writes (and, if asked, reads and flushes) wait at a gate while it is closed: a test holds a
/// request in the middle of the device's I/O — a slow disk taking longer than any timeout — and lets it go.
/// </summary>
internal sealed class GatedBlockDevice(IBlockDevice inner) : IBlockDevice
{
    private readonly ManualResetEventSlim _open = new(true);
    private int _waiting;

    /// <summary>Also hold flushes (not only writes) at the gate.</summary>
    public bool GateFlushes { get; set; }

    /// <summary>Also hold reads at the gate.</summary>
    public bool GateReads { get; set; }

    /// <summary>How many requests wait at the gate now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    public string Name => inner.Name;
    public int SectorSizeBytes => inner.SectorSizeBytes;
    public long SizeBytes => inner.SizeBytes;

    public void Close() => _open.Reset();

    public void Open() => _open.Set();

    /// <summary>Waits until <paramref name="count"/> requests wait at the gate.</summary>
    public void WaitForWaiting(int count = 1)
    {
        SpinWait.SpinUntil(() => Waiting >= count, TimeSpan.FromSeconds(30));
        Assert.IsGreaterThanOrEqualTo(count, Waiting, "requests reached the gate");
    }

    public void Read(long offsetBytes, Span<byte> destination)
    {
        if (GateReads)
        {
            Gate();
        }
        inner.Read(offsetBytes, destination);
    }

    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        Gate();
        inner.Write(offsetBytes, source, options);
    }

    public void Flush()
    {
        if (GateFlushes)
        {
            Gate();
        }
        inner.Flush();
    }

    private void Gate()
    {
        if (_open.IsSet)
        {
            return;
        }
        Interlocked.Increment(ref _waiting);
        try
        {
            _open.Wait();
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    public void Dispose()
    {
        _open.Set();
        inner.Dispose();
    }
}
