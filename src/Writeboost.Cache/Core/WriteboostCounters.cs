using Writeboost.Devices;

namespace Writeboost.Cache.Core;

/// <summary>What a writeboost device was asked to do and what it did to its devices.</summary>
public sealed class WriteboostCounters
{
    private readonly IoCounters _user = new();
    private long _cacheBytesWritten;
    private long _cacheBytesRead;
    private long _cacheFlushes;
    private long _backingBytesWritten;

    /// <summary>The requests of the device's own users.</summary>
    public IoCountersSnapshot User => _user.Snapshot();
    public long CacheBytesWritten => Interlocked.Read(ref _cacheBytesWritten);
    public long CacheBytesRead => Interlocked.Read(ref _cacheBytesRead);
    public long CacheFlushes => Interlocked.Read(ref _cacheFlushes);
    public long BackingBytesWritten => Interlocked.Read(ref _backingBytesWritten);

    internal void CountWrite(long bytes, WriteOptions options) => _user.CountWrite(bytes, options);
    internal void CountRead(long bytes) => _user.CountRead(bytes);
    internal void CountFlush() => _user.CountFlush();
    internal void CountCacheWrite(long bytes) => Interlocked.Add(ref _cacheBytesWritten, bytes);
    internal void CountCacheRead(long bytes) => Interlocked.Add(ref _cacheBytesRead, bytes);
    internal void CountCacheFlush() => Interlocked.Increment(ref _cacheFlushes);
    internal void CountBackingWrite(long bytes) => Interlocked.Add(ref _backingBytesWritten, bytes);
}
