using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Minimise;
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
}
