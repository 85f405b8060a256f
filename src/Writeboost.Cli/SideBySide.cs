using System.Collections.Concurrent;
using System.Diagnostics;

namespace Writeboost.Cli;

/// <summary>
/// Independent sweeps, campaigns or hunts run side by side: each started in its order as soon as fewer than the
/// given number run, each result kept at its index, their progress drawn as one bar (the mean of their fractions).
/// </summary>
internal sealed class SideBySide(ProgressBar progress, int count, string what)
{
    private readonly double[] _fractions = new double[count];
    private int _finished;

    /// <summary>How long <see cref="Run"/> took on the clock (their own times add up to more).</summary>
    public double WallSeconds { get; private set; }

    /// <summary>
    /// Runs <paramref name="body"/> for 0 .. count - 1, at most <paramref name="atOnce"/> at a time, in index order;
    /// each is given how to report how far it has come (0..1). An item not started before <paramref name="cancel"/>
    /// is not started (its result is null); one running is the body's to stop.
    /// </summary>
    public T?[] Run<T>(int atOnce, Func<int, Action<double>, T?> body, CancellationToken cancel)
        where T : class
    {
        T?[] results = new T?[count];
        Stopwatch clock = Stopwatch.StartNew();
        Parallel.ForEach(Partitioner.Create(Enumerable.Range(0, count), EnumerablePartitionerOptions.NoBuffering),
            new ParallelOptions { MaxDegreeOfParallelism = atOnce }, index =>
            {
                if (cancel.IsCancellationRequested)
                {
                    return;
                }
                results[index] = body(index, fraction => Report(index, fraction));
                Interlocked.Increment(ref _finished);
                Report(index, 1);
            });
        WallSeconds = clock.Elapsed.TotalSeconds;
        return results;
    }

    private void Report(int index, double fraction)
    {
        lock (_fractions)
        {
            _fractions[index] = Math.Clamp(fraction, 0, 1);
            progress.Report(_fractions.Average(), $"{Volatile.Read(ref _finished)}/{count} {what}");
        }
    }
}
