namespace Writeboost.Cache.Core;

/// <summary>
/// dm-writeboost's sixteen stat counters: each request piece counted by write or read, hit or miss, in the open
/// buffer or not, full block or not (the index is those four bits). Guarded by the device's lock.
/// </summary>
internal sealed class HitStats
{
    private readonly long[] _counts = new long[16];

    public void CountLocked(bool write, bool hit, bool onBuffer, bool fullsize) =>
        _counts[(write ? 8 : 0) | (hit ? 4 : 0) | (onBuffer ? 2 : 0) | (fullsize ? 1 : 0)]++;

    public long[] SnapshotLocked() => _counts.ToArray();

    /// <summary><c>clear_stat</c>.</summary>
    public void ClearLocked() => Array.Clear(_counts);
}
