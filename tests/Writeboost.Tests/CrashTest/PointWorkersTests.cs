using System.Collections.Concurrent;
using Writeboost.CrashTest.States;

namespace Writeboost.Tests.CrashTest;

/// <summary>
/// A log's points checked on several threads: the results come back in the log's order on the caller's thread,
/// a stop leaves later points unstarted, and a failure surfaces — whatever the number of threads.
/// </summary>
[TestClass]
public sealed class PointWorkersTests
{
    private static readonly Media Start = Media.Blank(4096, 4096, 0);

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(5)]
    public void Results_are_taken_in_order_on_the_callers_thread(int threads)
    {
        int caller = Environment.CurrentManagedThreadId;
        List<int> taken = [];
        ConcurrentBag<int> workedOn = [];
        PointWorkers.Run(Start, null, 40, threads,
            (_, index) =>
            {
                workedOn.Add(Environment.CurrentManagedThreadId);
                Thread.SpinWait((40 - index) * 2000); // early points slow: later ones finish first
                return new Box(index);
            },
            (index, box) =>
            {
                Assert.AreEqual(caller, Environment.CurrentManagedThreadId, "results are taken on the caller's thread");
                Assert.AreEqual(index, box.Value);
                taken.Add(index);
                return true;
            });
        CollectionAssert.AreEqual(Enumerable.Range(0, 40).ToList(), taken);
        Assert.AreEqual(Math.Min(threads, 40), workedOn.Distinct().Count(), "each thread took its share");
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(3)]
    public void A_stop_takes_nothing_after_it_and_leaves_no_thread_working(int threads)
    {
        List<int> taken = [];
        int started = 0;
        PointWorkers.Run(Start, null, 200, threads,
            (_, index) =>
            {
                Interlocked.Increment(ref started);
                Thread.Sleep(index <= 10 ? 1 : 5); // the points after the stop slow: checking them all would take the helpers half a second
                return new Box(index);
            },
            (index, _) =>
            {
                taken.Add(index);
                return index < 10;
            });
        CollectionAssert.AreEqual(Enumerable.Range(0, 11).ToList(), taken, "taken up to and with the stopping point");
        int afterRun = Volatile.Read(ref started);
        Thread.Sleep(20);
        Assert.AreEqual(afterRun, Volatile.Read(ref started), "no thread starts a point once the run returned");
        Assert.IsLessThan(200, afterRun, "the points after the stop were not all checked");
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(3)]
    public void A_failing_point_is_thrown_after_the_points_before_it_were_taken_with_no_thread_left_working(int threads)
    {
        int running = 0;
        List<int> taken = [];
        InvalidDataException error = Assert.ThrowsExactly<InvalidDataException>(() => PointWorkers.Run(Start, null, 100, threads,
            (_, index) =>
            {
                Interlocked.Increment(ref running);
                try
                {
                    return index == 7 ? throw new InvalidDataException("point 7 broke") : new Box(index);
                }
                finally
                {
                    Interlocked.Decrement(ref running);
                }
            },
            (index, _) =>
            {
                taken.Add(index);
                return true;
            }));
        Assert.Contains("point 7 broke", error.Message);
        CollectionAssert.AreEqual(Enumerable.Range(0, 7).ToList(), taken, "every point before the failing one, as one thread would have");
        Assert.AreEqual(0, Volatile.Read(ref running), "no thread still works when the failure is thrown");
    }

    [TestMethod]
    public void A_failing_point_after_the_callers_stop_is_not_thrown()
    {
        List<int> taken = [];
        PointWorkers.Run(Start, null, 100, 3,
            (_, index) => index == 7 ? throw new InvalidDataException("never reached by one thread") : new Box(index),
            (index, _) =>
            {
                taken.Add(index);
                return index < 4;
            });
        CollectionAssert.AreEqual(Enumerable.Range(0, 5).ToList(), taken);
    }

    private sealed record Box(int Value);
}
