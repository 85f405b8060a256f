using System.Text.Json;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.CrashTest;

/// <summary>
/// wb crashtest runs its campaigns three at a time (some record while the others check): what it checks is what it
/// checked one at a time, and its figures are over the clock's time, not the campaigns' own overlapping times.
/// </summary>
[TestClass]
public sealed class SideBySideCampaignTests
{
    [TestMethod]
    public void Campaigns_run_three_at_a_time_check_the_states_asked_for_and_are_timed_by_the_clock()
    {
        WbResult result = WbProcess.Run(null, "crashtest", "--mode", "0", "--workload", "wrap", "--states", "200", "--rounds", "1", "--json");

        Assert.AreEqual(0, result.ExitCode, result.Stderr + result.Stdout);
        using JsonDocument report = JsonDocument.Parse(result.Stdout);
        JsonElement root = report.RootElement;
        Assert.AreEqual(3, root.GetProperty("campaigns_at_once").GetInt32());
        Assert.AreEqual(200, root.GetProperty("log_states").GetInt64(), "--states N checks N, side by side as one at a time");
        Assert.AreEqual(4, root.GetProperty("campaigns").GetArrayLength(), "every configuration of the spread, in its place");
        double wall = root.GetProperty("wall_seconds").GetDouble();
        Assert.IsGreaterThan(0, wall);
        // Their own times overlap, and no moment of the clock passes with none running: together they cover it.
        Assert.IsGreaterThanOrEqualTo(wall * 0.9, root.GetProperty("seconds").GetDouble());
        Assert.AreEqual(root.GetProperty("states_checked").GetInt64() / wall, root.GetProperty("states_per_second").GetDouble(), 1e-6 * root.GetProperty("states_per_second").GetDouble());
    }

    [TestMethod]
    public void A_seeded_bugs_campaigns_run_one_at_a_time_and_stop_at_the_first_catch()
    {
        WbResult result = WbProcess.Run(null, "crashtest", "--mutant", "poison-torn-tail", "--no-minimise", "--states", "2000", "--json");

        Assert.AreEqual(1, result.ExitCode, result.Stderr + result.Stdout);
        using JsonDocument report = JsonDocument.Parse(result.Stdout);
        JsonElement root = report.RootElement;
        Assert.AreEqual(1, root.GetProperty("campaigns_at_once").GetInt32());
        Assert.AreEqual(JsonValueKind.Null, root.GetProperty("wall_seconds").ValueKind, "one at a time, each campaign keeps its own timing");
        Assert.AreEqual(1, root.GetProperty("campaigns").GetArrayLength(), "the campaign that caught it ends the run");
        Assert.AreEqual(1, root.GetProperty("violations").GetInt64());
    }
}
