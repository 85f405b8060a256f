using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Schedules;
using Writeboost.CrashTest.Targets;
using Writeboost.Samples.PmemWal;

namespace Writeboost.Tests.Prototyping;

/// <summary>The seam into a design's own threads: windows it names, stretched in perturbed recordings only, each held open in turn.</summary>
[TestClass]
public sealed class ScheduleWindowsTests
{
    [TestMethod]
    public void A_design_gets_perturbed_windows_in_perturbed_recordings_and_none_in_the_unperturbed_one()
    {
        WindowsSeen target = new();
        Campaign.Run(new CampaignSpec(CacheMode.Volatile, Workload.Random, Seed: 1, Ops: 20, MaxStates: 50) { Target = target, Schedules = 3, Rounds = 1 });

        CollectionAssert.AreEquivalent(new[] { 0, 1, 2 }, target.Live.Keys.ToArray());
        Assert.AreSame(ScheduleWindows.None, target.Live[0], "schedule 0 runs unperturbed");
        Assert.AreNotSame(ScheduleWindows.None, target.Live[1]);
        Assert.AreNotSame(ScheduleWindows.None, target.Live[2]);
        Assert.IsTrue(target.Recoveries.All(w => ReferenceEquals(w, ScheduleWindows.None)), "a recovery checked off-line runs no workload to perturb");
    }

    [TestMethod]
    public void Every_window_is_held_open_in_one_of_each_run_of_consecutive_recordings()
    {
        string[] windows = ["flusher before persist", "flusher after persist", "writer before publish", "compactor", "a", "b"];
        foreach (string window in windows)
        {
            int held = Enumerable.Range(40, PerturbedWindows.FocusShare).Count(focus => PerturbedWindows.InFocus(window, focus));
            Assert.AreEqual(1, held, window);
        }
    }

    /// <summary>The write-ahead log, remembering the windows each open was given.</summary>
    private sealed class WindowsSeen : ICrashTarget
    {
        private readonly PmemWalTarget _wal = new();
        public Dictionary<int, ScheduleWindows> Live { get; } = [];
        public List<ScheduleWindows> Recoveries { get; } = [];
        public string Name => "pmem-wal (windows seen)";

        public TargetGeometry GeometryFor(Workload workload) => _wal.GeometryFor(workload);

        public ICrashTargetDevice Open(TargetDevices devices, TargetOpen options)
        {
            lock (Recoveries)
            {
                if (options.Live)
                {
                    Live[options.Schedule] = options.Windows;
                }
                else
                {
                    Recoveries.Add(options.Windows);
                }
            }
            return _wal.Open(devices, options);
        }
    }
}
