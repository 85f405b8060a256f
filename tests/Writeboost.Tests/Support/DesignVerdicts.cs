using Writeboost.CrashTest;
using Writeboost.CrashTest.Minimise;
using Writeboost.CrashTest.Targets;

namespace Writeboost.Tests.Support;

/// <summary>What the tests of a re-created design ask of the judge: the correct design passes, each seeded bug is caught and told briefly.</summary>
internal static class DesignVerdicts
{
    /// <summary>A campaign on <paramref name="target"/> loses nothing acknowledged, and covered torn pmem lines and a second crash.</summary>
    public static void LosesNothing(ICrashTarget target, Workload workload, int seed = 4, long states = 8000)
    {
        CampaignResult result = Campaign.Run(CampaignSpec.For(target, workload, seed, ops: 150, maxStates: states));

        Assert.AreEqual(0, result.Violations, result.FirstViolation);
        Assert.IsGreaterThan(0L, result.Coverage.PmemPrefix, "torn pmem lines");
        Assert.IsGreaterThan(0L, result.Coverage.SecondCrash, "a second crash after its recovery");
    }

    /// <summary>A seeded bug is caught with seeds 1, 2 and 3 (60,000 states of <paramref name="workload"/>), and seed 1's failure minimises to at most 12 operations.</summary>
    public static void CaughtWithEverySeedAndToldBriefly(ICrashTarget target, Workload workload = Workload.Random)
    {
        CampaignResult? first = null;
        foreach (int seed in new[] { 1, 2, 3 })
        {
            CampaignResult result = Campaign.Run(CampaignSpec.For(target, workload, seed, ops: 150, maxStates: 60_000), stopAtFirst: true);
            Assert.AreEqual(1, result.Violations, $"{target.Name} passed seed {seed}");
            first ??= result;
        }
        MinimisedFailure story = Minimiser.Minimise(first!) ?? throw new AssertFailedException($"{target.Name}: not minimised");
        Assert.IsLessThanOrEqualTo(12, story.OpCount, string.Join('\n', story.Story));
    }
}
