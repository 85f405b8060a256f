using Writeboost.Cache.Core;

namespace Writeboost.CrashTest.Schedules;

/// <summary>
/// One recorded schedule of the writers and the device's workers: at every <see cref="SchedulePoint"/> the
/// calling thread is, seeded, left alone, made to yield, spun for a while, or put to sleep for a millisecond.
/// Each window is stretched on purpose, so a campaign's schedules see the orders a loaded machine produces only
/// by luck: a segment written but not yet flushed when a writer wants its buffer back, a writeback batch between
/// its backing flush and its record, a writer overtaking the flush worker. Schedule 0 of a campaign runs
/// unperturbed. The recording keeps whatever interleaving happened, so a failing state replays exactly from the
/// saved log, whatever the machine does next.
/// </summary>
/// <para>Besides the seeded stretching everywhere, each perturbed recording has a focus: a few points that are
/// always stretched (a sleep each time any thread passes one). The focus is not picked by hand: recordings take the
/// points in turn (<see cref="FocusFor"/>), so across a campaign's schedules and rounds, and across the campaigns of
/// a plan, every window is held open on purpose, not only where a random roll happens to land.</para>
internal sealed class PerturbedSchedule(int seed, int percent = 35, IReadOnlySet<SchedulePoint>? focus = null) : ScheduleHooks
{
    /// <summary>How many points one recording holds open.</summary>
    internal const int FocusWidth = 3;
    private static readonly SchedulePoint[] Points = Enum.GetValues<SchedulePoint>();
    private readonly Random _random = new(seed);
    private readonly Lock _lock = new();

    /// <summary>
    /// The focus of perturbed recording <paramref name="index"/> (<see cref="Campaign.FocusIndexOf"/>):
    /// <see cref="FocusWidth"/> consecutive points, the next recording's starting where this one's end.
    /// </summary>
    internal static IReadOnlySet<SchedulePoint> FocusFor(int index) =>
        Enumerable.Range(0, FocusWidth).Select(i => Points[(int)((uint)(index * FocusWidth + i) % (uint)Points.Length)]).ToHashSet();

    // The windows worth widening most: a written segment not yet flushed, a batch before its backing flush or
    // its record, a write-around write on its way to the backing store — there a sleep lets every other thread run ahead.
    public override void At(SchedulePoint point) =>
        Perturb(focus is not null && focus.Contains(point), wide: point is SchedulePoint.FlushAfterSegmentWrite or SchedulePoint.FlushBeforeCacheFlush
            or SchedulePoint.WritebackBeforeBackingFlush or SchedulePoint.WritebackBeforeMarkClean
            or SchedulePoint.WriteAroundBeforeBackingWrite);

    /// <summary>The calling thread at a window: held open when <paramref name="focused"/>, else a seeded yield, spin or sleep (more often a sleep when <paramref name="wide"/>).</summary>
    internal void Perturb(bool focused, bool wide)
    {
        if (focused)
        {
            Thread.Sleep(1);
            return;
        }
        int roll;
        int action;
        int spins;
        lock (_lock)
        {
            roll = _random.Next(100);
            action = _random.Next(wide ? 10 : 6);
            spins = _random.Next(50, 5_000);
        }
        if (roll >= percent)
        {
            return;
        }
        if (action < 3)
        {
            Thread.Yield();
        }
        else if (action < 5)
        {
            Thread.SpinWait(spins);
        }
        else
        {
            Thread.Sleep(1);
        }
    }
}
