using System.Diagnostics;
using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Faults;
using Writeboost.CrashTest.Mutants;
using Writeboost.Devices;
using Writeboost.Samples.PmemWal;
using Writeboost.TestDesigns;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Reliability;

[TestClass]
public sealed class FaultSweepTests
{
    [TestMethod]
    [DataRow(CacheMode.Volatile, Workload.Random)]
    [DataRow(CacheMode.Volatile, Workload.Wrap)]
    [DataRow(CacheMode.Persistent, Workload.Random)]
    [DataRow(CacheMode.Persistent, Workload.Wrap)]
    public void An_io_error_at_any_operation_is_reported_never_wrong_and_loses_nothing_acknowledged(CacheMode mode, Workload workload)
    {
        FaultSweepResult result = FaultSweep.Run(new FaultSweepSpec(mode, workload, Seed: 3, Ops: 100, MaxRuns: 600));

        Assert.AreEqual(0, result.Violations, $"{result.FirstViolationFault}: {result.FirstViolation}");
        Assert.IsGreaterThan(300, result.FaultsFired, "a sweep that injects little proves little");
        Assert.IsGreaterThan(0, result.SurfacedToCaller, "some faults hit a request, which must have failed");
        Assert.IsGreaterThan(0, result.DeviceFailed, "some faults (a failed flush) are fatal for the device");
        Assert.IsGreaterThan(result.Runs, result.StatesChecked, "every run ends in crash states");
        string[] devices = mode == CacheMode.Persistent ? ["backing", "cache", "pmem"] : ["backing", "cache"];
        foreach (string device in devices)
        {
            Assert.IsTrue(result.OperationsCounted.Keys.Any(k => k.StartsWith(device, StringComparison.Ordinal)), $"the {device} device was swept");
        }
    }

    [TestMethod]
    public void A_design_whose_pmem_region_is_a_block_device_is_swept_per_sector_and_a_record_acknowledged_before_its_flush_is_caught()
    {
        FaultSweepResult sound = FaultSweep.Run(new FaultSweepSpec(CacheMode.Persistent, Workload.Random, Seed: 3, Ops: 100, MaxRuns: 150) { Target = new WalOnBlockPmem() });

        Assert.AreEqual(0, sound.Violations, $"{sound.FirstViolationFault}: {sound.FirstViolation}");
        Assert.IsGreaterThan(0, sound.OperationsCounted.GetValueOrDefault("pmem.flush"), "the pmem region's flushes are the block device's, and are swept");
        Assert.IsGreaterThan(0, sound.OperationsCounted.GetValueOrDefault("pmem.write"));
        Assert.IsGreaterThan(100, sound.FaultsFired);

        // The record's sector written but not flushed when the write is acknowledged: a crash state per sector loses it.
        FaultSweepResult flawed = FaultSweep.Run(new FaultSweepSpec(CacheMode.Persistent, Workload.Random, Seed: 3, Ops: 100, MaxRuns: 150) { Target = new WalOnBlockPmem(WalFlaw.AckBeforeFence) }, stopAtFirst: true);
        Assert.AreEqual(1, flawed.Violations, "acknowledging before the pmem device's flush passed the sweep");
        StringAssert.Contains(flawed.FirstViolation, "holds neither its last durable value");
    }

    [TestMethod]
    public void The_crash_states_after_a_fault_follow_the_persistence_domain_asked_for()
    {
        FaultSweepSpec unfenced = new(CacheMode.Persistent, Workload.Random, Seed: 1, Ops: 100, MaxRuns: 40) { Target = new PmemWalTarget(WalFlaw.AckBeforeFence) };

        Assert.AreEqual(1, FaultSweep.Run(unfenced, stopAtFirst: true).Violations, "under ADR a record written back and not fenced may be lost");
        FaultSweepResult eadr = FaultSweep.Run(unfenced with { Persistence = PersistenceDomain.Eadr }, stopAtFirst: true);
        Assert.AreEqual(0, eadr.Violations, $"under eADR the CPU caches survive: the fence is not needed ({eadr.FirstViolation})");
        Assert.IsGreaterThan(0, eadr.StatesChecked);
    }

    [TestMethod]
    [DataRow("ignore-cache-flush-error")]
    [DataRow("writeback-ignores-write-error")]
    [DataRow("writeback-gives-up-after-error")]
    public void The_sweep_catches_every_seeded_error_handling_bug(string mutant)
    {
        Exposure shown = SeededBugs.ShownTo(Sweep.Faults, mutant);
        (CacheMode mode, Workload workload) = shown;
        var where = shown.Where;
        foreach (int seed in new[] { 1, 2, 3 })
        {
            // A hang is judged against the run's bound: short here (the product's drop_caches takes milliseconds).
            FaultSweepResult result = FaultSweep.Run(new FaultSweepSpec(mode, workload, seed, Ops: 120, MaxRuns: 400, mutant, where) { RunTimeout = TimeSpan.FromSeconds(3) }, stopAtFirst: true);
            Assert.AreEqual(1, result.Violations, $"mutant {mutant} passed seed {seed}: the sweep has no teeth for it");
        }
    }

    [TestMethod]
    public void A_run_that_stands_still_has_hung_without_waiting_for_the_run_bound()
    {
        FaultSweepSpec spec = WritebackThatGivesUp();
        Stopwatch clock = Stopwatch.StartNew();

        FaultSweepResult result = FaultSweep.Run(spec with { StallTimeout = TimeSpan.FromSeconds(1), RunTimeout = TimeSpan.FromMinutes(2) }, stopAtFirst: true);

        Assert.AreEqual(1, result.Violations, "writeback that never retries leaves drop_caches waiting forever");
        StringAssert.StartsWith(result.FirstViolation, "hung:");
        StringAssert.Contains(result.FirstViolation, "made no progress for 1 s");
        Assert.IsLessThan(60, clock.Elapsed.TotalSeconds, "seen when it stood still, not at the 2-minute bound");
    }

    [TestMethod]
    public void An_interrupted_sweep_gives_up_a_run_in_progress_unjudged()
    {
        FaultSweepSpec spec = WritebackThatGivesUp();
        using CancellationTokenSource interrupt = new(TimeSpan.FromSeconds(1));
        Stopwatch clock = Stopwatch.StartNew();

        FaultSweepResult result = FaultSweep.Run(spec with { StallTimeout = TimeSpan.FromMinutes(2), RunTimeout = TimeSpan.FromMinutes(2) }, stopAtFirst: true, cancel: interrupt.Token);

        Assert.AreEqual(0, result.Violations, $"a run cut short is judged neither way ({result.FirstViolation})");
        Assert.IsLessThan(60, clock.Elapsed.TotalSeconds, "the interruption ends the wait for the hung run");
    }

    /// <summary>The seeded hang: a writeback batch that failed once is never tried again, at the fault that shows it.</summary>
    private static FaultSweepSpec WritebackThatGivesUp()
    {
        const string mutant = "writeback-gives-up-after-error";
        Exposure shown = SeededBugs.ShownTo(Sweep.Faults, mutant);
        (CacheMode mode, Workload workload) = shown;
        return new FaultSweepSpec(mode, workload, Seed: 1, Ops: 120, MaxRuns: 400, mutant, shown.Where);
    }

    [TestMethod]
    public void A_short_write_lands_its_first_half_then_fails()
    {
        MemoryBlockDevice media = new(8192, name: "disk");
        FaultSwitch faults = new(new Fault(FaultTarget.Cache, FaultOperation.Write, 2, FaultKind.ShortWrite));
        FaultInjectingBlockDevice device = new(media, FaultTarget.Cache, faults);
        faults.Arm();
        byte[] ones = Enumerable.Repeat((byte)1, 4096).ToArray();

        device.Write(0, ones);
        IOException error = Assert.Throws<IOException>(() => device.Write(4096, ones));

        StringAssert.Contains(error.Message, "short write");
        Assert.IsTrue(media.Media.Slice(4096, 2048).ToArray().All(b => b == 1), "the first half landed");
        Assert.IsTrue(media.Media.Slice(6144, 2048).ToArray().All(b => b == 0), "the second half did not");
        device.Write(4096, ones); // the fault fired once
        Assert.AreEqual(3, faults.Counts[(FaultTarget.Cache, FaultOperation.Write)]);
    }

    [TestMethod]
    public void A_burst_fails_a_run_of_operations_then_clears()
    {
        FaultSwitch faults = new(new Fault(FaultTarget.Backing, FaultOperation.Flush, 3, FaultKind.BurstEio));
        FaultInjectingBlockDevice device = new(new MemoryBlockDevice(4096, name: "disk"), FaultTarget.Backing, faults);
        faults.Arm();
        List<bool> failed = [];
        for (int i = 0; i < FaultSwitch.BurstLength + 4; i++)
        {
            try
            {
                device.Flush();
                failed.Add(false);
            }
            catch (IOException)
            {
                failed.Add(true);
            }
        }
        CollectionAssert.AreEqual(
            Enumerable.Range(1, FaultSwitch.BurstLength + 4).Select(n => n >= 3 && n < 3 + FaultSwitch.BurstLength).ToArray(),
            failed.ToArray());
    }
}
