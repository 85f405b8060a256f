using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Faults;
using Writeboost.CrashTest.Minimise;
using Writeboost.CrashTest.Targets;
using Writeboost.Samples.PmemWal;

namespace Writeboost.Tests.Prototyping;

/// <summary>A prototyper's own design (the sample pmem write-ahead log) under the same judge as the writeboost device.</summary>
[TestClass]
public sealed class OwnDesignTests
{
    private static CampaignSpec Spec(WalFlaw flaw, Workload workload, int seed) =>
        CampaignSpec.For(new PmemWalTarget(flaw), workload, seed, ops: 150, maxStates: 8000);

    [TestMethod]
    [DataRow(Workload.Random)]
    [DataRow(Workload.Overwrite)]
    [DataRow(Workload.Wrap)]
    public void The_correct_write_ahead_log_loses_nothing_acknowledged(Workload workload)
    {
        CampaignResult result = Campaign.Run(Spec(WalFlaw.None, workload, seed: 4));

        Assert.AreEqual(0, result.Violations, result.FirstViolation);
        Assert.IsGreaterThan(2000L, result.StatesChecked);
        Assert.IsGreaterThan(0L, result.Coverage.PmemPrefix, "torn pmem lines");
        Assert.IsGreaterThan(0L, result.Coverage.SecondCrash, "a second crash after its recovery");
    }

    [TestMethod]
    [DataRow(WalFlaw.AckBeforeFence)]
    [DataRow(WalFlaw.NewEpochBeforeBackingFlush)]
    public void The_harness_catches_each_flaw_of_the_write_ahead_log(WalFlaw flaw)
    {
        foreach (int seed in new[] { 1, 2, 3 })
        {
            CampaignResult result = Campaign.Run(Spec(flaw, Workload.Random, seed), stopAtFirst: true);
            Assert.AreEqual(1, result.Violations, $"{flaw} passed seed {seed}");
        }
    }

    [TestMethod]
    public void The_story_of_an_unfenced_record_names_the_pmem_lines_the_crash_lost()
    {
        CampaignResult failed = Campaign.Run(Spec(WalFlaw.AckBeforeFence, Workload.Random, seed: 1), stopAtFirst: true);
        MinimisedFailure story = Minimiser.Minimise(failed) ?? throw new AssertFailedException("not minimised");

        string lost = story.Story.First(line => line.Contains("the first lost:", StringComparison.Ordinal));
        StringAssert.Matches(lost, new System.Text.RegularExpressions.Regex(@"the line at byte \d+ kept 0 of its \d+ store\(s\) not yet durable; the first lost: \d+ byte\(s\) at byte \d+ \(0x[0-9a-f]+…?\), written back but not fenced"));
    }

    [TestMethod]
    public void Under_eADR_a_missing_fence_loses_nothing_but_a_missing_block_flush_still_does()
    {
        foreach (int seed in new[] { 1, 2, 3 })
        {
            CampaignResult unfenced = Campaign.Run(Spec(WalFlaw.AckBeforeFence, Workload.Random, seed) with { MaxStates = 3000, Persistence = PersistenceDomain.Eadr }, stopAtFirst: true);
            Assert.AreEqual(0, unfenced.Violations, $"seed {seed}: {unfenced.FirstViolation}");
            Assert.IsGreaterThan(0L, unfenced.Coverage.PmemPrefix, "a store torn by the power failure is still a state");
        }
        CampaignResult unflushed = Campaign.Run(Spec(WalFlaw.NewEpochBeforeBackingFlush, Workload.Random, seed: 1) with { Persistence = PersistenceDomain.Eadr }, stopAtFirst: true);
        Assert.AreEqual(1, unflushed.Violations, "eADR is about the CPU caches, not the block devices' caches");
    }

    private static CorruptionSweepResult Corrupt(ICrashTarget target, Workload workload, int seed) =>
        CorruptionSweep.Run(new CorruptionSweepSpec(CacheMode.Volatile, workload, seed, Ops: 150) { Target = target });

    [TestMethod]
    [DataRow(Workload.Random)]
    [DataRow(Workload.Wrap)]
    public void Damaged_media_of_the_write_ahead_log_are_refused_or_lose_data_but_never_read_as_garbage(Workload workload)
    {
        CorruptionSweepResult result = Corrupt(new PmemWalTarget(), workload, seed: 1);

        Assert.AreEqual(0, result.Violations, result.FirstViolation);
        CorruptionAreaResult header = result.Areas.Single(a => a.Area == "log header");
        CorruptionAreaResult records = result.Areas.Single(a => a.Area == "record headers");
        Assert.AreEqual(header.Tried, header.Refused, "a damaged magic or epoch is refused, not guessed (or formatted over)");
        Assert.IsGreaterThan(10 * 24, records.Tried, "the sweep damages a log with records in it, every byte of each header");
        Assert.IsGreaterThan(0, records.SilentReverts, "a damaged record ends the log there: the WAL cannot tell damage from a torn tail, and the sweep says so");
        Assert.IsGreaterThan(0, result.Areas.Single(a => a.Area == "pmem (unnamed bytes)").Tried);
    }

    [TestMethod]
    public void A_record_checksum_that_leaves_out_the_header_passes_every_crash_and_is_caught_by_the_corruption_sweep()
    {
        foreach (int seed in new[] { 1, 2, 3 })
        {
            CorruptionSweepResult result = Corrupt(new PmemWalTarget(WalFlaw.ChecksumOmitsHeader), Workload.Wrap, seed);
            Assert.IsGreaterThan(0, result.Violations, $"seed {seed}: the flaw passed the corruption sweep");
            Assert.IsGreaterThan(0, result.Areas.Single(a => a.Area == "record headers").Violations);
        }
        CampaignResult crashes = Campaign.Run(Spec(WalFlaw.ChecksumOmitsHeader, Workload.Wrap, seed: 1));
        Assert.AreEqual(0, crashes.Violations, "no crash makes a header that checks out and lies: only damage does");
    }

    [TestMethod]
    public void A_design_that_names_no_metadata_has_every_byte_of_its_pmem_damaged()
    {
        CorruptionSweepResult result = Corrupt(new Writeboost.TestDesigns.WalWithoutDefaults(WalFlaw.None), Workload.Random, seed: 2);

        Assert.AreEqual(0, result.Violations, result.FirstViolation);
        CorruptionAreaResult any = result.Areas.Single();
        Assert.AreEqual("pmem (any byte)", any.Area);
        Assert.IsGreaterThanOrEqualTo(2000, any.Tried);
    }

    [TestMethod]
    public void A_recovery_that_does_not_end_on_damaged_media_is_a_violation_and_the_sweep_stops()
    {
        CorruptionSweepResult result = CorruptionSweep.Run(new CorruptionSweepSpec(CacheMode.Volatile, Workload.Random, 1, Ops: 60) { Target = new StallsOnDamage(), RecoveryBound = TimeSpan.FromMilliseconds(300) });

        Assert.AreEqual(1, result.Violations);
        StringAssert.StartsWith(result.FirstViolation, "hung: no damage was judged for");
        StringAssert.Contains(result.FirstViolation, "log header");
    }

    [TestMethod]
    public void A_metadata_region_outside_its_device_is_refused_naming_the_region()
    {
        ArgumentException refused = Assert.ThrowsExactly<ArgumentException>(() =>
            CorruptionSweep.Run(new CorruptionSweepSpec(CacheMode.Volatile, Workload.Random, 1, Ops: 20) { Target = new NamesTooMuch() }));

        StringAssert.Contains(refused.Message, "metadata region 'tail' (bytes 65536..65600 of Pmem) is not inside its 65536-byte device");
    }

    /// <summary>The sample WAL, naming a region past the end of its log.</summary>
    private sealed class NamesTooMuch : ICrashTarget
    {
        private readonly PmemWalTarget _wal = new();

        public string Name => "names-too-much";

        public TargetGeometry GeometryFor(Workload workload) => _wal.GeometryFor(workload);

        public IReadOnlyList<MetadataRegion> MetadataRegions(TargetDevices media) => [new("tail", Writeboost.CrashTest.Recording.DeviceId.Pmem, 64 * 1024, 64)];

        public ICrashTargetDevice Open(TargetDevices devices, TargetOpen options) => _wal.Open(devices, options);
    }

    /// <summary>The sample WAL, whose recovery stalls (for a while) when its log's magic is damaged.</summary>
    private sealed class StallsOnDamage : ICrashTarget
    {
        private readonly PmemWalTarget _wal = new();

        public string Name => "stalls-on-damage";

        public TargetGeometry GeometryFor(Workload workload) => _wal.GeometryFor(workload);

        public IReadOnlyList<MetadataRegion> MetadataRegions(TargetDevices media) => _wal.MetadataRegions(media);

        public ICrashTargetDevice Open(TargetDevices devices, TargetOpen options)
        {
            byte[] magic = new byte[8];
            devices.Pmem!.Read(0, magic);
            if (magic.AsSpan().ContainsAnyExcept((byte)0) && BitConverter.ToUInt64(magic) != 0x314C415750424557)
            {
                Thread.Sleep(2000);
            }
            return _wal.Open(devices, options);
        }
    }
}
