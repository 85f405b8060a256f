using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Configs;
using Writeboost.CrashTest.Mutants;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.States;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.CrashTest;

[TestClass]
public sealed class CrashHarnessTests
{
    [TestMethod]
    [DataRow(CacheMode.Volatile, Workload.Random)]
    [DataRow(CacheMode.Volatile, Workload.Overwrite)]
    [DataRow(CacheMode.Volatile, Workload.Wrap)]
    [DataRow(CacheMode.Persistent, Workload.Random)]
    [DataRow(CacheMode.Persistent, Workload.Overwrite)]
    [DataRow(CacheMode.Persistent, Workload.Wrap)]
    public void No_crash_state_the_hardware_allows_loses_an_acknowledged_write(CacheMode mode, Workload workload)
    {
        CampaignResult result = Campaign.Run(new CampaignSpec(mode, workload, Seed: 7, Ops: 120, MaxStates: 6000));
        Assert.IsGreaterThan(1000L, result.StatesChecked, "a campaign that checks little proves little");
        Assert.IsGreaterThan(0L, result.RecoveryCrashStates, "recovery itself was crashed and recovered again");
        Assert.AreEqual(0, result.Violations, $"{result.FirstViolation} (crash point {result.FirstViolationCrashPoint}, state {result.FirstViolationVariant})");
    }

    [TestMethod]
    [DynamicData(nameof(SeededBugs.Names), typeof(SeededBugs))]
    public void The_default_campaign_catches_every_seeded_bug_with_any_seed(string mutant)
    {
        Exposure shown = SeededBugs.ShownTo(Sweep.Crash, mutant);
        (CacheMode mode, Workload workload) = shown;
        foreach (int seed in new[] { 1, 2, 3 })
        {
            // What `wb crashtest --mutant NAME --seed S` runs: the default plan (every workload, the spread of
            // configurations, three schedules, two rounds, live reads), in the bug's mode.
            (CampaignResult? catching, long states) = DefaultPlan(mode, seed, mutant).Hunt(workload, shown.Prefers);
            Assert.IsNotNull(catching, $"mutant {mutant} passed seed {seed} after {states} states: the harness has no teeth for it");
        }
    }

    private static CampaignPlan DefaultPlan(CacheMode mode, int seed, string mutant = "none") =>
        new([mode], [Workload.Random, Workload.Overwrite, Workload.Wrap, Workload.Protocol], seed, Ops: 150, States: 60_000, mutant);

    [TestMethod]
    public void Only_a_second_crash_shows_recovery_that_leaves_its_repairs_unflushed()
    {
        foreach (int seed in new[] { 1, 2 })
        {
            // The random campaign at its share of the default budget: the mechanism, not the budget, decides.
            CampaignPlan plan = DefaultPlan(CacheMode.Persistent, seed, "recovery-skips-its-flush") with { Workloads = [Workload.Random], States = 20_000 };
            Assert.IsNull((plan with { Rounds = 1 }).Hunt(Workload.Random).Catching, "one crash and one recovery read back correctly (the pmem buffers still hold what the cache lost): the missing flush hurts only once the next life reuses them");
            (CampaignResult? catching, long _) = plan.Hunt(Workload.Random);
            Assert.IsNotNull(catching);
            Assert.IsGreaterThan(1, catching.FirstViolationSite!.Round, "caught in a later round of the history");
        }
    }

    [TestMethod]
    public void Only_a_live_read_shows_a_read_path_bug_in_the_ram_buffer()
    {
        CampaignPlan plan = DefaultPlan(CacheMode.Volatile, 1, "read-buffer-serves-unheld-sectors") with { Workloads = [Workload.Random], States = 20_000 };
        Assert.IsNull((plan with { ReadPercent = 0 }).Hunt(Workload.Random).Catching, "recovery reads the media, never a RAM buffer");
        StringAssert.Contains(plan.Hunt(Workload.Random).Catching!.FirstViolation, "a live read");
    }

    [TestMethod]
    public void Only_read_caching_in_mode_1_shows_a_missing_hole_record()
    {
        CampaignPlan plan = DefaultPlan(CacheMode.Persistent, 1, "pmem-hole-not-recorded") with { Workloads = [Workload.Random], States = 20_000 };
        Assert.IsNull((plan with { Configs = ConfigChoice.Default }).Hunt(Workload.Random).Catching, "the default configuration caches no reads: every slot is a write's");
        StringAssert.Contains(plan.Hunt(Workload.Random).Catching!.FirstViolation, "acknowledged record(s) whose fields are damaged");
    }

    [TestMethod]
    public void Only_order_11_shows_a_bug_in_its_8_byte_metablocks()
    {
        CampaignPlan plan = DefaultPlan(CacheMode.Volatile, 1, "compact-metablock-claims-whole-block");
        Assert.IsNull((plan with { Configs = ConfigChoice.Default }).Hunt(Workload.Overwrite).Catching, "the default configuration has 16-byte metablocks");
        Assert.AreEqual(11, plan.Hunt(Workload.Overwrite).Catching!.Spec.Config.SegmentSizeOrder);
    }

    [TestMethod]
    [DataRow(CacheMode.Volatile)]
    [DataRow(CacheMode.Persistent)]
    public void A_campaign_covers_every_kind_of_state_across_the_whole_log(CacheMode mode)
    {
        CampaignSpec spec = new(mode, Workload.Random, Seed: 3, Ops: 800, MaxStates: 12_000);
        CampaignResult result = Campaign.Run(spec);
        CampaignCoverage coverage = result.Coverage;

        Assert.AreEqual(0, result.Violations, result.FirstViolation);
        Assert.AreEqual(6, coverage.Logs, "three schedules of two rounds each");
        Assert.IsGreaterThan(coverage.PointsChecked * 5, coverage.CrashPoints, "a budget far below the log's size: sampled (the sampler's own test shows it reaches the end)");
        Assert.IsGreaterThan(0L, coverage.Prefix);
        Assert.IsGreaterThan(0L, coverage.Subset);
        Assert.IsGreaterThan(0L, coverage.Torn);
        Assert.IsGreaterThan(0L, coverage.DuringRecovery);
        Assert.IsGreaterThan(0L, coverage.SecondCrash);
        Assert.IsGreaterThan(0L, coverage.LiveReads);
        if (mode == CacheMode.Persistent)
        {
            Assert.IsGreaterThan(0L, coverage.PmemPrefix, "torn pmem lines get their share at the default budget");
        }
    }

    [TestMethod]
    public void The_sampled_crash_points_reach_the_end_of_a_long_log()
    {
        CrashEvent[] events = [.. Enumerable.Range(0, 8000).Select(i => i % 2 == 0 ? UserWrite(1, fua: false) : Ack(i - 1, fua: false))];
        CrashPointSample sample = CrashPointSampler.Choose(events, first: 0, budget: 6000, seed: 1, frontLoaded: false);

        Assert.AreEqual(1000, sample.Points.Count, "the budget's worth of points, six states each");
        Assert.IsGreaterThan(7900, sample.Points[^1], "the last stratum is near the end of the log");
        Assert.IsLessThan(100, sample.Points[0]);
        int[] gaps = [.. sample.Points.Zip(sample.Points.Skip(1), (a, b) => b - a)];
        Assert.IsLessThan(17, gaps.Max(), "one point per stratum of eight events");
    }

    [TestMethod]
    public void An_unbounded_budget_checks_every_point_with_the_most_states_each()
    {
        // A replay of one saved state (--crash-point P --variant V) runs with no budget: every variant must exist.
        CrashEvent[] events = [.. Enumerable.Range(0, 40).Select(i => i % 2 == 0 ? UserWrite(1, fua: false) : Ack(i - 1, fua: false))];
        CrashPointSample sample = CrashPointSampler.Choose(events, first: 0, budget: long.MaxValue, seed: 1, frontLoaded: false);

        Assert.HasCount(41, sample.Points);
        Assert.AreEqual(CrashPointSampler.MaxStatesPerPoint, sample.StatesPerPoint);
    }

    [TestMethod]
    [DataRow("0 b c segment_size_order 11 barrier_deadline_ms 2", 3)]
    [DataRow("1 b c p segment_size_order 10 pmem_backend block writeback_threshold 100", 2)]
    [DataRow("1 b c p segment_size_order 5 update_sb_record_interval 1 sync_data_interval 1 read_cache_threshold 4 nr_read_cache_cells 8", 1)]
    [DataRow("0 b c segment_size_order 5 write_around_mode 1", 2)]
    public void A_configuration_given_as_a_table_loses_nothing_acknowledged(string table, int writers)
    {
        (CacheMode mode, CrashConfig config) = CrashConfig.FromTable(table, poolSize: 3, writers);
        foreach (Workload workload in new[] { Workload.Random, Workload.Wrap })
        {
            CampaignResult result = Campaign.Run(new CampaignSpec(mode, workload, Seed: 2, Ops: 150, MaxStates: 3000) { Config = config });
            Assert.AreEqual(0, result.Violations, $"{config.Describe(mode)}, {workload}: {result.FirstViolation}");
            Assert.IsGreaterThan(1000L, result.StatesChecked);
        }
    }

    [TestMethod]
    [DataRow(200L)]
    [DataRow(7L)]
    [DataRow(60_001L)]
    public void The_campaigns_of_a_plan_share_exactly_the_states_asked_for(long states)
    {
        // `wb crashtest --states 200` runs 26 campaigns: an even split alone would buy 26 × 7 = 182.
        CampaignPlan plan = new([CacheMode.Volatile, CacheMode.Persistent], [Workload.Random, Workload.Overwrite, Workload.Wrap, Workload.Protocol], Seed: 1, Ops: 150, States: states);
        IReadOnlyList<CampaignSpec> campaigns = plan.Campaigns();
        Assert.AreEqual(Math.Max(states, campaigns.Count), campaigns.Sum(c => c.MaxStates), "every campaign gets its share, the remainder included (at least one state each)");
        Assert.IsLessThanOrEqualTo(1L, campaigns.Max(c => c.MaxStates) - campaigns.Min(c => c.MaxStates), "shares differ by one state at most");
    }

    [TestMethod]
    public void The_spread_of_configurations_pins_orders_10_and_11_several_writers_and_the_pmem_block_backend()
    {
        foreach (int seed in new[] { 1, 2, 3, 4 })
        {
            IReadOnlyList<CrashConfig> spread = CrashConfig.Spread(seed, 3);
            Assert.AreEqual(CrashConfig.Default, spread[0]);
            Assert.AreEqual(10, spread[1].SegmentSizeOrder);
            Assert.IsGreaterThan(1, spread[1].Writers);
            Assert.AreEqual(Writeboost.Pmem.PmemBackend.Block, spread[1].PmemBackend);
            Assert.AreEqual(11, spread[2].SegmentSizeOrder);
        }
    }

    [TestMethod]
    public void A_failing_random_state_replays_the_same_in_another_process()
    {
        using TempDirectory dir = new();
        // Seed 1's first failure under this mutant is a seeded state past nothing/everything, in a recorded history.
        WbResult found = WbProcess.Run(null, "crashtest", "--mode", "0", "--workload", "random", "--seed", "1",
            "--mutant", "trust-segment-without-checksum", "--save-log", dir.Path, "--json");
        using System.Text.Json.JsonDocument json = System.Text.Json.JsonDocument.Parse(found.Stdout);
        System.Text.Json.JsonElement failure = json.RootElement.GetProperty("first_failure");
        string[] reproduce = failure.GetProperty("reproduce").GetString()!.Split(' ')[1..];

        WbResult replayed = WbProcess.Run(null, [.. reproduce, "--json"]);

        Assert.AreEqual(1, replayed.ExitCode, replayed.Stdout + replayed.Stderr);
        using System.Text.Json.JsonDocument again = System.Text.Json.JsonDocument.Parse(replayed.Stdout);
        Assert.AreEqual(failure.GetProperty("first_violation").GetString(),
            again.RootElement.GetProperty("first_failure").GetProperty("first_violation").GetString(), "the same state, rebuilt in a new process");
    }

    [TestMethod]
    public void Every_listed_mutant_has_a_test_above()
    {
        CollectionAssert.AreEquivalent(
            new[] { "ack-before-pmem-persist", "drop-pmem-fence", "skip-cache-flush-before-ack", "trust-segment-without-checksum", "replay-stale-after-gap", "reuse-slot-before-writeback-flushed", "poison-torn-tail",
                "recovery-skips-its-flush", "reuse-pmem-buffer-once-written", "fua-trusts-written-segment", "flush-publishes-before-write", "pmem-record-crc-skips-data", "pmem-hole-not-recorded",
                "read-buffer-serves-unheld-sectors", "compact-metablock-claims-whole-block", "read-caches-around-write-around", "nbd-fua-write-zeroes-skips-flush",
                "write-around-switch-keeps-pmem-records", "second-gap-keeps-its-slot" },
            SeededBugs.NamesCaughtBy(Sweep.Crash));
    }

    [TestMethod]
    [DataRow(CacheMode.Volatile)]
    [DataRow(CacheMode.Persistent)]
    public void A_real_client_recorded_through_nbd_loses_nothing_acknowledged_in_any_crash_state(CacheMode mode)
    {
        CampaignSpec spec = new(mode, Workload.Nbd, Seed: 5, Ops: 0, MaxStates: 4000);
        CrashLog log = Campaign.RecordFromNbdClient(spec, "fio",
            ["--name=crash", "--ioengine=nbd", "--uri={uri}", "--rw=randwrite", "--bs=4k", "--size=1m", "--iodepth=1", "--fsync=5", "--randseed=5"],
            out string output);
        Assert.IsTrue(log.Events.Count(e => e.Kind == EventKind.UserWriteAck) >= 256, "fio wrote 1 MiB in 4 KiB writes: " + output);
        Assert.IsTrue(log.Events.Any(e => e.Kind == EventKind.UserFlushAck), "and flushed");
        CampaignResult result = Campaign.Check(spec, log, stopAtFirst: true);
        Assert.IsGreaterThan(1000L, result.StatesChecked);
        Assert.AreEqual(0, result.Violations, $"{result.FirstViolation} (crash point {result.FirstViolationCrashPoint}, state {result.FirstViolationVariant})");
    }

    [TestMethod]
    public void A_saved_log_replays_the_same_failing_state()
    {
        CampaignSpec spec = new(CacheMode.Volatile, Workload.Random, 3, 150, 50_000, "skip-cache-flush-before-ack");
        CrashLog log = Campaign.Record(spec);
        CampaignResult found = Campaign.Check(spec, log, stopAtFirst: true);
        Assert.AreEqual(1, found.Violations);
        using MemoryStream file = new();
        log.Save(file);
        file.Position = 0;
        CrashLog loaded = CrashLog.Load(file);
        CampaignResult again = Campaign.Check(spec, loaded, stopAtFirst: false, onlyCrashPoint: found.FirstViolationCrashPoint, onlyVariant: found.FirstViolationVariant);
        Assert.AreEqual(1, again.StatesChecked);
        Assert.AreEqual(found.FirstViolation, again.FirstViolation);
    }

    [TestMethod]
    public void A_violation_among_the_states_the_choice_of_the_carried_one_judged_is_reported_and_its_history_replays_it()
    {
        // A budget of four sampled states misses the bug; the next life's choice recovers hundreds of the log's states.
        CampaignSpec spec = new(CacheMode.Volatile, Workload.Random, 1, 150, 4, "trust-segment-without-checksum") { Schedules = 1 };
        CampaignResult found = Campaign.Run(spec, stopAtFirst: true);
        Assert.IsTrue(found.FirstViolationSite is { Surveyed: true, Round: 1 }, $"found by the survey of round 1's carry candidates: {found.FirstViolationSite}, {found.FirstViolation}");
        Assert.IsGreaterThan(4L, found.StatesChecked, "the states the survey judged are counted");

        using MemoryStream file = new();
        found.FailingHistory!.Save(file);
        file.Position = 0;
        CrashHistory saved = CrashHistory.Load(file, spec);
        CampaignResult again = Campaign.Replay(saved with { Spec = saved.Spec with { MaxStates = 1 } }, stopAtFirst: true);
        Assert.IsTrue(again.FirstViolationSite is { Surveyed: true }, "the history, replayed whole with a sample of one, surveys its last round again");
        Assert.AreEqual(found.FirstViolation, again.FirstViolation);
        CampaignResult one = Campaign.Replay(saved, stopAtFirst: false, onlyCrashPoint: found.FirstViolationCrashPoint, onlyVariant: found.FirstViolationVariant);
        Assert.AreEqual(1, one.StatesChecked, "the reproducer's one state, outside the sample");
        Assert.AreEqual(found.FirstViolation, one.FirstViolation);
    }

    private static byte[] Sector(byte value) => Enumerable.Repeat(value, 512).ToArray();

    private static CrashEvent UserWrite(byte value, bool fua) => new(EventKind.UserWrite, DeviceId.User, 0, 512, Sector(value), fua, -1);

    private static CrashEvent Ack(int write, bool fua) => new(EventKind.UserWriteAck, DeviceId.User, 0, 512, null, fua, write);

    [TestMethod]
    public void The_oracle_allows_the_last_durable_value_or_a_later_issued_one_and_nothing_else()
    {
        CrashEvent[] events =
        [
            UserWrite(1, fua: true),   // 0
            Ack(0, fua: true),         // 1: value 1 durable
            UserWrite(2, fua: false),  // 2
            Ack(2, fua: false),        // 3: acknowledged, not durable
            UserWrite(3, fua: false),  // 4: issued, never acknowledged
        ];
        Oracle oracle = new(events);
        Assert.IsNull(oracle.Check(1, Sector(0)), "before the FUA ack: the initial zeros");
        Assert.IsNotNull(oracle.Check(2, Sector(0)), "after it: zeros are older than the durable value");
        Assert.IsNull(oracle.Check(5, Sector(1)), "the last durable value");
        Assert.IsNull(oracle.Check(5, Sector(2)), "a later acknowledged write");
        Assert.IsNull(oracle.Check(5, Sector(3)), "a later issued write, unacknowledged");
        Assert.IsNotNull(oracle.Check(4, Sector(3)), "not before it was issued");
        Assert.IsNotNull(oracle.Check(5, Sector(9)), "garbage");
    }

    [TestMethod]
    public void A_flush_makes_durable_only_writes_completed_before_it_began()
    {
        BlockTimeline timeline = new(DeviceId.Cache, 4096);
        CrashEvent Write(byte v) => new(EventKind.Write, DeviceId.Cache, 0, 512, Sector(v), false, -1);
        timeline.Apply(0, Write(1));
        timeline.Apply(1, new CrashEvent(EventKind.WriteDone, DeviceId.Cache, 0, 512, null, false, 0));
        timeline.Apply(2, new CrashEvent(EventKind.FlushBegin, DeviceId.Cache, 0, 0, null, false, -1));
        timeline.Apply(3, Write(2));
        timeline.Apply(4, new CrashEvent(EventKind.WriteDone, DeviceId.Cache, 0, 512, null, false, 3));
        Assert.AreEqual(0, timeline.Durable[0], "nothing durable before the flush ends");
        timeline.Apply(5, new CrashEvent(EventKind.FlushEnd, DeviceId.Cache, 0, 0, null, false, 2));
        Assert.AreEqual(1, timeline.Durable[0], "the write completed before the flush began is durable");
        Assert.AreEqual(1, timeline.NotDurable.Count, "the one completed after it began is not");
    }

    [TestMethod]
    public void A_pmem_line_becomes_durable_only_after_write_back_and_fence()
    {
        PmemTimeline timeline = new(4096);
        timeline.Apply(new CrashEvent(EventKind.PmemStore, DeviceId.Pmem, 60, 8, [1, 1, 1, 1, 1, 1, 1, 1], false, -1)); // spans two lines
        Assert.AreEqual(2, timeline.PendingLines.Count, "a store across a line boundary tears there");
        timeline.Apply(new CrashEvent(EventKind.PmemFence, DeviceId.Pmem, 0, 0, null, false, -1));
        Assert.AreEqual(0, timeline.Durable[60], "a fence without a write-back persists nothing");
        timeline.Apply(new CrashEvent(EventKind.PmemFlush, DeviceId.Pmem, 0, 64, null, false, -1));
        timeline.Apply(new CrashEvent(EventKind.PmemFence, DeviceId.Pmem, 0, 0, null, false, -1));
        Assert.AreEqual(1, timeline.Durable[63], "the written-back line is durable");
        Assert.AreEqual(0, timeline.Durable[64], "the other line is still pending");
        Assert.AreEqual(1, timeline.PendingLines.Count);
    }

    [TestMethod]
    public void A_fence_completes_only_the_write_backs_of_its_own_thread()
    {
        PmemTimeline timeline = new(4096);
        timeline.Apply(new CrashEvent(EventKind.PmemStore, DeviceId.Pmem, 0, 8, [1, 1, 1, 1, 1, 1, 1, 1], false, -1));
        timeline.Apply(new CrashEvent(EventKind.PmemFlush, DeviceId.Pmem, 0, 8, null, false, Ref: 7)); // thread 7 writes the line back
        timeline.Apply(new CrashEvent(EventKind.PmemStore, DeviceId.Pmem, 128, 8, [2, 2, 2, 2, 2, 2, 2, 2], false, -1));
        timeline.Apply(new CrashEvent(EventKind.PmemFlush, DeviceId.Pmem, 128, 8, null, false, Ref: 9));

        timeline.Apply(new CrashEvent(EventKind.PmemFence, DeviceId.Pmem, 0, 0, null, false, Ref: 9));
        Assert.AreEqual(0, timeline.Durable[0], "thread 9's sfence does not complete thread 7's write-back");
        Assert.AreEqual(2, timeline.Durable[128], "its own, it does");

        timeline.Apply(new CrashEvent(EventKind.PmemFence, DeviceId.Pmem, 0, 0, null, false, Ref: 7));
        Assert.AreEqual(1, timeline.Durable[0]);
        Assert.AreEqual(0, timeline.PendingLines.Count);
    }

    [TestMethod]
    public void A_log_without_threads_keeps_its_meaning_any_fence_completes_any_write_back()
    {
        PmemTimeline timeline = new(4096);
        timeline.Apply(new CrashEvent(EventKind.PmemStore, DeviceId.Pmem, 0, 8, [1, 1, 1, 1, 1, 1, 1, 1], false, -1));
        timeline.Apply(new CrashEvent(EventKind.PmemFlush, DeviceId.Pmem, 0, 8, null, false, -1));
        timeline.Apply(new CrashEvent(EventKind.PmemFence, DeviceId.Pmem, 0, 0, null, false, Ref: 3));
        Assert.AreEqual(1, timeline.Durable[0]);
    }

    [TestMethod]
    public void Two_threads_writing_back_one_line_each_complete_what_their_own_write_back_covered()
    {
        PmemTimeline timeline = new(4096);
        timeline.Apply(new CrashEvent(EventKind.PmemStore, DeviceId.Pmem, 0, 1, [1], false, -1));
        timeline.Apply(new CrashEvent(EventKind.PmemFlush, DeviceId.Pmem, 0, 64, null, false, Ref: 1)); // covers the first store
        timeline.Apply(new CrashEvent(EventKind.PmemStore, DeviceId.Pmem, 1, 1, [2], false, -1));
        timeline.Apply(new CrashEvent(EventKind.PmemFlush, DeviceId.Pmem, 0, 64, null, false, Ref: 2)); // covers both

        timeline.Apply(new CrashEvent(EventKind.PmemFence, DeviceId.Pmem, 0, 0, null, false, Ref: 1));
        Assert.AreEqual(1, timeline.Durable[0]);
        Assert.AreEqual(0, timeline.Durable[1], "thread 1's write-back came before the second store");
        timeline.Apply(new CrashEvent(EventKind.PmemFence, DeviceId.Pmem, 0, 0, null, false, Ref: 2));
        Assert.AreEqual(2, timeline.Durable[1], "thread 2's covered the rest");
        Assert.AreEqual(0, timeline.PendingLines.Count);
    }

    [TestMethod]
    public void Under_eADR_a_pmem_store_is_durable_once_it_completed_and_only_one_in_progress_can_tear()
    {
        PmemTimeline timeline = new(new byte[4096], cachesPersist: true);
        timeline.Apply(new CrashEvent(EventKind.PmemStore, DeviceId.Pmem, 60, 8, [1, 1, 1, 1, 1, 1, 1, 1], false, -1));
        Assert.AreEqual(2, timeline.PendingLines.Count, "a crash during the store may keep either line");
        Assert.AreEqual(0, timeline.Durable[60]);

        timeline.Apply(new CrashEvent(EventKind.PmemStore, DeviceId.Pmem, 128, 1, [2], false, -1));
        Assert.AreEqual(1, timeline.Durable[60], "the store before completed: it reached the cache, inside the power-fail domain");
        Assert.AreEqual(1, timeline.Durable[67]);
        Assert.AreEqual(1, timeline.PendingLines.Count, "only the store in progress");

        timeline.Apply(new CrashEvent(EventKind.WriteDone, DeviceId.Cache, 0, 512, null, false, 0));
        Assert.AreEqual(2, timeline.Durable[128], "any later event of any device: no write-back or fence needed");
        Assert.AreEqual(0, timeline.PendingLines.Count);
    }

    [TestMethod]
    public void The_timelines_tell_when_each_write_and_each_line_of_a_store_became_durable()
    {
        List<(int Write, int At)> block = [];
        BlockTimeline disk = new(DeviceId.Cache, 4096) { BecameDurable = (write, at) => block.Add((write, at)) };
        disk.Apply(0, new CrashEvent(EventKind.Write, DeviceId.Cache, 0, 512, Sector(1), false, -1));
        disk.Apply(1, new CrashEvent(EventKind.Write, DeviceId.Cache, 512, 512, Sector(2), true, -1));
        disk.Apply(2, new CrashEvent(EventKind.WriteDone, DeviceId.Cache, 512, 512, null, true, 1));
        disk.Apply(3, new CrashEvent(EventKind.WriteDone, DeviceId.Cache, 0, 512, null, false, 0));
        disk.Apply(4, new CrashEvent(EventKind.FlushBegin, DeviceId.Cache, 0, 0, null, false, -1));
        disk.Apply(5, new CrashEvent(EventKind.FlushEnd, DeviceId.Cache, 0, 0, null, false, 4));
        CollectionAssert.AreEqual(new[] { (1, 2), (0, 5) }, block, "the FUA write at its completion, the other at the end of the flush that covered it");

        List<(int Store, int At)> lines = [];
        PmemTimeline pmem = new(4096) { BecameDurable = (store, at) => lines.Add((store, at)) };
        pmem.Apply(new CrashEvent(EventKind.PmemStore, DeviceId.Pmem, 60, 8, [1, 1, 1, 1, 1, 1, 1, 1], false, -1), 10); // two lines
        pmem.Apply(new CrashEvent(EventKind.PmemFlush, DeviceId.Pmem, 0, 64, null, false, Ref: 7), 11);
        pmem.Apply(new CrashEvent(EventKind.PmemFence, DeviceId.Pmem, 0, 0, null, false, Ref: 9), 12);
        Assert.IsEmpty(lines, "another thread's fence completes nothing of thread 7's write-back");
        pmem.Apply(new CrashEvent(EventKind.PmemFence, DeviceId.Pmem, 0, 0, null, false, Ref: 7), 13);
        pmem.Apply(new CrashEvent(EventKind.PmemFlush, DeviceId.Pmem, 64, 64, null, false, Ref: 7), 14);
        pmem.Apply(new CrashEvent(EventKind.PmemFence, DeviceId.Pmem, 0, 0, null, false, Ref: 7), 15);
        CollectionAssert.AreEqual(new[] { (10, 13), (10, 15) }, lines, "the store's first line at the fence after its write-back, its second at the next");
    }
}
