namespace Writeboost.Devices;

/// <summary>A point-in-time copy of <see cref="IoCounters"/>.</summary>
public readonly record struct IoCountersSnapshot(
    long Reads, long Writes, long FuaWrites, long Flushes, long BytesRead, long BytesWritten)
{
    /// <summary>The requests issued between two snapshots.</summary>
    public static IoCountersSnapshot operator -(IoCountersSnapshot a, IoCountersSnapshot b) => new(
        a.Reads - b.Reads, a.Writes - b.Writes, a.FuaWrites - b.FuaWrites, a.Flushes - b.Flushes,
        a.BytesRead - b.BytesRead, a.BytesWritten - b.BytesWritten);
}

/// <summary>Thread-safe counts of the I/O requests a device (or a layer above one) has issued.</summary>
public sealed class IoCounters
{
    private long _reads;
    private long _writes;
    private long _fuaWrites;
    private long _flushes;
    private long _bytesRead;
    private long _bytesWritten;

    /// <summary>Counts one read of <paramref name="bytes"/> bytes.</summary>
    public void CountRead(long bytes)
    {
        Interlocked.Increment(ref _reads);
        Interlocked.Add(ref _bytesRead, bytes);
    }

    /// <summary>Counts one write of <paramref name="bytes"/> bytes (and a FUA write when <paramref name="options"/> says so).</summary>
    public void CountWrite(long bytes, WriteOptions options)
    {
        Interlocked.Increment(ref _writes);
        Interlocked.Add(ref _bytesWritten, bytes);
        if ((options & WriteOptions.Fua) != 0)
        {
            Interlocked.Increment(ref _fuaWrites);
        }
    }

    /// <summary>Counts one flush.</summary>
    public void CountFlush() => Interlocked.Increment(ref _flushes);

    /// <summary>The counts so far (each read atomically; the set not as one).</summary>
    public IoCountersSnapshot Snapshot() => new(
        Interlocked.Read(ref _reads), Interlocked.Read(ref _writes), Interlocked.Read(ref _fuaWrites),
        Interlocked.Read(ref _flushes), Interlocked.Read(ref _bytesRead), Interlocked.Read(ref _bytesWritten));
}
