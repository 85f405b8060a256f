using System.Text.RegularExpressions;
using Writeboost.Cache.Core;

namespace Writeboost.Tests.CrashTest;

/// <summary>
/// Races by construction (#22): every scope of the device's lock ends at a schedule point the harness can stretch,
/// because the one way to hold the lock is <c>DeviceMonitor.Enter(point)</c>. This keeps it so: a new
/// <c>lock (...)</c> on the device's lock anywhere in the device or its workers fails here, naming the file.
/// </summary>
[TestClass]
public sealed partial class SchedulePointsTests
{
    /// <summary>Locks of other state, each with why it is not the device's (their windows are not schedule points yet).</summary>
    private static readonly Dictionary<string, string> OtherLocks = new()
    {
        ["PmemBuffer/PmemBufferPool.cs"] = "_countsLock and _barrierLock: the pool's own counts and its barrier's device flush",
        ["Workers/SuperblockRecordWriter.cs"] = "_writing: one record write at a time",
        ["Core/DeviceMonitor.cs"] = "the monitor itself: Enter, and its own reads of the life under the lock",
        ["Table/Tunables.cs"] = "_values: the tunables a message changes",
        ["Workers/WorkerThreads.cs"] = "_idle, _gate: the idle threads and a worker's hand-off and end; no device state",
    };

    [GeneratedRegex(@"\block\s*\(([^)]*)\)")]
    private static partial Regex LockStatement();

    [TestMethod]
    public void Every_hold_of_the_device_lock_ends_at_a_schedule_point()
    {
        string source = Path.Combine(RepositoryRoot(), "src", "Writeboost.Cache");
        List<string> offenders = [];
        foreach (string file in Directory.EnumerateFiles(source, "*.cs", SearchOption.AllDirectories).Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
        {
            string relative = Path.GetRelativePath(source, file).Replace(Path.DirectorySeparatorChar, '/');
            string text = File.ReadAllText(file);
            foreach (Match match in LockStatement().Matches(text).Where(m => !IsComment(text, m.Index)))
            {
                bool deviceLock = match.Groups[1].Value is "_lock" or "_monitor.Lock" or "monitor.Lock";
                if (deviceLock || !OtherLocks.ContainsKey(relative))
                {
                    offenders.Add($"{relative}: lock ({match.Groups[1].Value})");
                }
            }
            if (relative != "Core/DeviceMonitor.cs" && text.Contains("Monitor.Enter(", StringComparison.Ordinal))
            {
                offenders.Add($"{relative}: Monitor.Enter");
            }
        }
        Assert.IsEmpty(offenders, "hold the device lock with using (_monitor.Enter(SchedulePoint.X)), naming the window its end opens: " + string.Join("; ", offenders));
    }

    [TestMethod]
    public void The_harness_holds_every_point_open_in_turn()
    {
        // Each perturbed recording holds FocusWidth points open; a configuration's recordings take them in turn.
        int points = Enum.GetValues<SchedulePoint>().Length;
        HashSet<SchedulePoint> held = [];
        for (int recording = 0; recording * 3 < points; recording++)
        {
            held.UnionWith(Writeboost.CrashTest.Schedules.PerturbedSchedule.FocusFor(7 + recording));
        }
        Assert.HasCount(points, held, "every point is held open by some recording");
    }

    private static bool IsComment(string text, int index)
    {
        int lineStart = text.LastIndexOf('\n', index) + 1;
        string before = text[lineStart..index];
        return before.TrimStart().StartsWith("//", StringComparison.Ordinal);
    }

    private static string RepositoryRoot()
    {
        string? directory = AppContext.BaseDirectory;
        while (directory is not null && !File.Exists(Path.Combine(directory, "Writeboost.sln")))
        {
            directory = Path.GetDirectoryName(directory);
        }
        return directory ?? throw new InvalidOperationException("the repository root (Writeboost.sln) is not above the tests");
    }
}
