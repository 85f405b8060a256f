using Writeboost.Pmem;

namespace Writeboost.CrashTest.States;

/// <summary>
/// Checks the points of one log on several threads and hands what each found back in the log's order, on the
/// caller's thread. A crash state reads the durable images of the timelines it was built from, which advance in
/// place, so each thread advances timelines of its own over the points it takes (every n-th, in order); the caller
/// takes the results one by one in point order, as a single thread checking them in turn would have, and may stop
/// there: later points are then not started. What a run counts and the first violation it reports do not depend
/// on the number of threads.
/// </summary>
internal static class PointWorkers
{
    /// <summary>More threads than this gain little: each replays the whole log for its own timelines.</summary>
    public const int MaxThreads = 8;

    /// <summary>The threads a log's points are checked by: the machine's cores, one when the work must stay on one thread or there is too little to share.</summary>
    public static int ThreadsFor(bool concurrent, int points) =>
        concurrent && points >= 8 ? Math.Clamp(Environment.ProcessorCount, 1, MaxThreads) : 1;

    /// <summary>
    /// Runs <paramref name="work"/> for the points 0 to <paramref name="count"/> - 1 and gives each result to
    /// <paramref name="take"/> in order on this thread; <paramref name="take"/> returning false stops the run after
    /// that point. An exception from the work of a point is thrown here as it was thrown, once every thread has
    /// stopped and every point before it was taken, unless the caller stopped before it.
    /// </summary>
    /// <param name="start">The media each thread's timelines start from (copied per thread).</param>
    /// <param name="work">Checks point <c>index</c> with timelines of its thread's own (advance them to the point first).</param>
    public static void Run<T>(Media start, PmemModel? pmem, int count, int threads, Func<Timelines, int, T> work, Func<int, T, bool> take, CancellationToken cancel = default)
        where T : class
    {
        if (threads <= 1 || count < 2)
        {
            Timelines timelines = new(start, pmem);
            for (int index = 0; index < count && !cancel.IsCancellationRequested; index++)
            {
                if (!take(index, work(timelines, index)))
                {
                    return;
                }
            }
            return;
        }
        Shared<T> shared = new(count);
        List<Thread> started = [];
        try
        {
            for (int t = 1; t < threads; t++)
            {
                int thread = t;
                Thread helper = new(() => shared.Work(thread, threads, start, pmem, work, cancel))
                {
                    IsBackground = true,
                    Name = $"wb-check-{thread}",
                };
                helper.Start();
                started.Add(helper);
            }
            shared.Work(0, threads, start, pmem, work, cancel, take);
            shared.TakeRest(take, cancel);
        }
        finally
        {
            shared.Stop();
            foreach (Thread helper in started)
            {
                helper.Join();
            }
        }
        // A point that failed is thrown as one thread checking them in turn would have met it: after every point
        // before it was taken, and only if the caller had not stopped before it.
        shared.ThrowIfFailedBeforeStop();
    }

    /// <summary>The results of one run's threads, and how far the caller has taken them.</summary>
    private sealed class Shared<T>(int count) where T : class
    {
        private readonly T?[] _results = new T?[count];
        private readonly object _lock = new();
        /// <summary>No point after this one is started (the caller stopped there, or a thread failed).</summary>
        private int _last = count - 1;
        private int _taken;

        /// <summary>The first point whose work threw, and what it threw.</summary>
        private (int Index, Exception Error)? _failure;
        /// <summary>The caller's <c>take</c> stopped the run (at a point before any failure).</summary>
        private bool _stoppedByCaller;

        public void Work(int thread, int threads, Media start, PmemModel? pmem, Func<Timelines, int, T> work, CancellationToken cancel, Func<int, T, bool>? take = null)
        {
            Timelines? timelines = null;
            for (int index = thread; index <= Volatile.Read(ref _last) && !cancel.IsCancellationRequested; index += threads)
            {
                T result;
                try
                {
                    timelines ??= new Timelines(start, pmem);
                    result = work(timelines, index);
                }
#pragma warning disable CA1031 // kept with its point and thrown on the caller's thread, in the points' order
                catch (Exception error)
#pragma warning restore CA1031
                {
                    lock (_lock)
                    {
                        if (_failure is not { } first || index < first.Index)
                        {
                            _failure = (index, error);
                        }
                        _last = Math.Min(_last, index - 1); // the points before it are still taken
                        Monitor.PulseAll(_lock);
                    }
                    return;
                }
                lock (_lock)
                {
                    _results[index] = result;
                    Monitor.PulseAll(_lock);
                }
                if (take is not null)
                {
                    TakeReady(take); // the caller's thread takes what is done in order as it goes: its progress stays live
                }
            }
        }

        /// <summary>Throws what a point threw, unless the caller stopped before that point.</summary>
        public void ThrowIfFailedBeforeStop()
        {
            if (_failure is { } failed && !_stoppedByCaller)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed.Error);
            }
        }

        /// <summary>Takes the results that are ready, in order (the caller's thread).</summary>
        private void TakeReady(Func<int, T, bool> take)
        {
            while (_taken <= Volatile.Read(ref _last))
            {
                T? result;
                lock (_lock)
                {
                    result = _results[_taken];
                }
                if (result is null)
                {
                    return;
                }
                Take(take, result);
            }
        }

        /// <summary>Waits for and takes every result still to come (the caller's thread, its own points done).</summary>
        public void TakeRest(Func<int, T, bool> take, CancellationToken cancel)
        {
            while (_taken <= Volatile.Read(ref _last) && !cancel.IsCancellationRequested)
            {
                T? result;
                lock (_lock)
                {
                    while ((result = _results[_taken]) is null && _taken <= _last && !cancel.IsCancellationRequested)
                    {
                        Monitor.Wait(_lock, 50);
                    }
                }
                if (result is null)
                {
                    return;
                }
                Take(take, result);
            }
        }

        private void Take(Func<int, T, bool> take, T result)
        {
            _results[_taken] = null; // taken: its memory goes
            if (!take(_taken, result))
            {
                _stoppedByCaller = true;
                Stop(_taken);
            }
            _taken++;
        }

        /// <summary>No point after <paramref name="last"/> is started (all of them: -1).</summary>
        public void Stop(int last = -1)
        {
            lock (_lock)
            {
                _last = Math.Min(_last, last);
                Monitor.PulseAll(_lock);
            }
        }
    }
}
