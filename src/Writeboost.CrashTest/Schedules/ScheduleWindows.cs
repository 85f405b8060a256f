namespace Writeboost.CrashTest.Schedules;

/// <summary>
/// The seam into a design's own threads: call <see cref="At"/> at each window where the order of your threads
/// decides what reaches the media (a worker between its write and its flush, a writer between placing data and
/// publishing it). In a perturbed recording the harness stretches the windows — it yields, spins or sleeps the
/// calling thread, seeded — and holds a few of them open in every recording, taking the windows in turn across a
/// campaign's recordings, so interleavings a quiet machine would almost never produce get recorded and judged.
/// Schedule 0 runs unperturbed (<see cref="None"/>). The log keeps whatever interleaving happened, so a failing
/// state still replays exactly.
/// </summary>
public class ScheduleWindows
{
    /// <summary>Does nothing: the unperturbed schedule, and any open outside a recording.</summary>
    public static ScheduleWindows None { get; } = new();

    private protected ScheduleWindows()
    {
    }

    /// <summary>The calling thread is at <paramref name="window"/> (a name of your own, the same at each pass).</summary>
    public virtual void At(string window)
    {
    }
}

/// <summary>A perturbed recording's windows: named windows stretched by the same seeded perturbation as the writeboost device's points.</summary>
internal sealed class PerturbedWindows(PerturbedSchedule schedule, int focusIndex) : ScheduleWindows
{
    /// <summary>One window in this many is held open in a recording; the recordings take them in turn.</summary>
    internal const int FocusShare = 4;

    public override void At(string window)
    {
        ArgumentNullException.ThrowIfNull(window);
        schedule.Perturb(InFocus(window, focusIndex), wide: false);
    }

    /// <summary>Stable across processes (not string.GetHashCode): a replayed recording holds the same windows.</summary>
    internal static bool InFocus(string window, int focusIndex) =>
        (Cache.Format.Crc32C.Compute(System.Text.Encoding.UTF8.GetBytes(window)) + (uint)focusIndex) % FocusShare == 0;
}
