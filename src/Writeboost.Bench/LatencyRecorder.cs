using System.Diagnostics;

namespace Writeboost.Bench;

/// <summary>Summary of a latency sample, in nanoseconds.</summary>
public readonly record struct LatencySummary(long Count, double MeanNs, long P50Ns, long P99Ns, long P999Ns, long MaxNs);

/// <summary>
/// Per-operation latencies, kept exactly (one long per op) so percentiles are true order statistics, not bucket
/// estimates. Timestamps come from Stopwatch (clock_gettime(CLOCK_MONOTONIC) through the vDSO on Linux).
/// </summary>
public sealed class LatencyRecorder
{
    private readonly long[] _ticks;
    private int _count;

    public LatencyRecorder(int capacity) => _ticks = new long[capacity];

    public int Count => _count;
    public bool IsFull => _count == _ticks.Length;

    public void Add(long elapsedTicks) => _ticks[_count++] = elapsedTicks;

    /// <summary>Appends every latency <paramref name="other"/> recorded (merging per-thread recorders).</summary>
    public void AddAll(LatencyRecorder other)
    {
        ArgumentNullException.ThrowIfNull(other);
        other._ticks.AsSpan(0, other._count).CopyTo(_ticks.AsSpan(_count));
        _count += other._count;
    }

    /// <summary>Every latency recorded, in nanoseconds, in the order they were taken.</summary>
    public IEnumerable<long> AllNs()
    {
        for (int i = 0; i < _count; i++)
        {
            yield return ToNs(_ticks[i]);
        }
    }

    public LatencySummary Summarize()
    {
        if (_count == 0)
        {
            return new LatencySummary(0, 0, 0, 0, 0, 0);
        }
        long[] sorted = _ticks[.._count];
        Array.Sort(sorted);
        double sum = 0;
        foreach (long t in sorted)
        {
            sum += t;
        }
        return new LatencySummary(
            _count,
            sum / _count * 1e9 / Stopwatch.Frequency,
            ToNs(Percentile(sorted, 0.50)),
            ToNs(Percentile(sorted, 0.99)),
            ToNs(Percentile(sorted, 0.999)),
            ToNs(sorted[^1]));
    }

    // Nearest-rank percentile (as fio reports them).
    private static long Percentile(long[] sorted, double fraction) =>
        sorted[Math.Clamp((int)Math.Ceiling(fraction * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static long ToNs(long ticks) => (long)(ticks * (1e9 / Stopwatch.Frequency));
}
