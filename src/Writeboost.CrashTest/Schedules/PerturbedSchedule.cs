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
internal sealed class PerturbedSchedule(int seed, int percent = 35) : ScheduleHooks
{
    private readonly Random _random = new(seed);
    private readonly Lock _lock = new();

    public override void At(SchedulePoint point)
    {
        int roll;
        int action;
        // The windows worth widening most: a written segment not yet flushed, a batch before its backing flush or
        // its record — there a sleep lets every other thread run ahead.
        bool wide = point is SchedulePoint.FlushAfterSegmentWrite or SchedulePoint.FlushBeforeCacheFlush
            or SchedulePoint.WritebackBeforeBackingFlush or SchedulePoint.WritebackBeforeMarkClean;
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
