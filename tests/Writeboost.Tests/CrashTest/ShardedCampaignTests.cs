using System.Text.Json;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.CrashTest;

/// <summary>
/// A campaign split over machines: recorded once (wb crashtest record), checked in shards (--recording, the shard
/// from --shard or the engine's environment), merged (wb crashtest merge). The merged report is the unsharded one.
/// </summary>
[TestClass]
public sealed class ShardedCampaignTests
{
    /// <summary>Small: one mode, one workload, two schedules of two rounds (four logs), a few hundred states.</summary>
    internal static string[] SmallCampaign(int states = 600, string mode = "0") => ["--mode", mode, "--workload", "random", "--config", "default", "--states", $"{states}", "--ops", "40", "--schedules", "2", "--rounds", "2"];

    [TestMethod]
    [DataRow("none", 0, "0")]
    [DataRow("skip-cache-flush-before-ack", 1, "0")]
    // Two campaigns, the bug's mode (1) recorded first as a normal run orders them; mode 0 passes.
    [DataRow("drop-pmem-fence", 1, "both")]
    public void A_campaign_split_into_shards_checks_exactly_the_states_the_unsharded_campaign_checks(string mutant, int exitCode, string mode)
    {
        using TempDirectory temp = new();
        string recording = temp.File("recording");
        string results = temp.File("results");
        Run(0, null, ["crashtest", "record", recording, .. SmallCampaign(mode: mode), "--mutant", mutant]);
        JsonElement unsharded = Json(Run(exitCode, null, "crashtest", "--recording", recording, "--json", "--no-minimise", "--save-log", temp.Path));
        // The shards at once, as on a cluster (they share nothing but the recording and the result directory). Each
        // shard's exit code is its own verdict: crash points go to shards in turn, and a seeded bug need not show at
        // the points one shard gets (the earliest point of every log goes to shard 0). The campaign's verdict is the
        // merge's.
        int[] shardExitCodes = new int[4];
        Parallel.For(0, 4, shard => shardExitCodes[shard] = WbProcess.Run(null, "crashtest", "--recording", recording, "--shard", $"{shard}/4", "--result-dir", results, "--save-log", temp.Path).ExitCode);
        for (int shard = 0; shard < 4; shard++)
        {
            long violations = Json(File.ReadAllText(Path.Combine(results, $"shard-{shard}-of-4.json"))).GetProperty("campaigns").EnumerateArray().Sum(c => c.GetProperty("violations").GetInt64());
            Assert.AreEqual(violations > 0 ? 1 : 0, shardExitCodes[shard], $"shard {shard}/4 found {violations} violations");
        }
        JsonElement merged = Json(Run(exitCode, null, "crashtest", "merge", results, "--json"));

        AssertSameCampaign(unsharded, merged);
        Assert.AreEqual(mutant != "none", merged.GetProperty("first_failure").ValueKind == JsonValueKind.Object, "a seeded bug is caught, a clean run has no failure");
        if (mode == "both")
        {
            Assert.AreEqual(1, merged.GetProperty("campaigns")[0].GetProperty("mode").GetInt32(), "the seeded bug's mode first");
            Assert.AreEqual(0L, merged.GetProperty("campaigns")[1].GetProperty("violations").GetInt64(), "mode 0 has no pmem fence to drop");
        }
        if (mutant != "none")
        {
            StringAssert.StartsWith(merged.GetProperty("first_failure").GetProperty("reproduce").GetString(), "wb crashtest --replay ", "the shard that found it saved what replays it");
        }
    }

    [TestMethod]
    public void A_merged_campaign_of_a_design_under_eadr_reports_that_design_and_that_domain()
    {
        using TempDirectory temp = new();
        string recording = temp.File("recording");
        string results = temp.File("results");
        string design = typeof(Writeboost.Samples.PmemWal.PmemWalTarget).Assembly.Location;
        Run(0, null, "crashtest", "record", recording, "--target", design, "--persistence", "eadr", "--workload", "random", "--states", "600", "--ops", "40", "--schedules", "2", "--rounds", "2");
        JsonElement unsharded = Json(Run(0, null, "crashtest", "--recording", recording, "--target", design, "--json"));
        for (int shard = 0; shard < 2; shard++)
        {
            Run(0, null, "crashtest", "--recording", recording, "--target", design, "--shard", $"{shard}/2", "--result-dir", results);
        }
        JsonElement merged = Json(Run(0, null, "crashtest", "merge", results, "--json"));

        AssertSameCampaign(unsharded, merged);
        Assert.AreEqual("pmem-wal", merged.GetProperty("campaigns")[0].GetProperty("config").GetString(), "the design's name, not a writeboost configuration");
        Assert.AreEqual(JsonValueKind.Null, merged.GetProperty("campaigns")[0].GetProperty("table").ValueKind, "a design has no writeboost table");
        StringAssert.Contains(merged.GetProperty("target").GetString(), "target 'pmem-wal'");
        Assert.AreEqual("eadr", merged.GetProperty("persistence").GetString());
        Assert.AreEqual(unsharded.GetProperty("persistence").GetString(), merged.GetProperty("persistence").GetString());
    }

    [TestMethod]
    public void The_shard_comes_from_a_Kubernetes_indexed_job_or_a_Slurm_array_and_an_explicit_shard_wins()
    {
        using TempDirectory temp = new();
        string recording = temp.File("recording");
        Run(0, null, ["crashtest", "record", recording, .. SmallCampaign(60)]);
        (Dictionary<string, string> Environment, string[] Extra, string File)[] cases =
        [
            (new() { ["JOB_COMPLETION_INDEX"] = "1", ["WB_SHARD_COUNT"] = "3" }, [], "shard-1-of-3.json"),
            // An array 1-4 (sbatch --array=1-4): task 3 is the third shard of four.
            (new() { ["SLURM_ARRAY_TASK_ID"] = "3", ["SLURM_ARRAY_TASK_COUNT"] = "4", ["SLURM_ARRAY_TASK_MIN"] = "1", ["SLURM_ARRAY_TASK_MAX"] = "4" }, [], "shard-2-of-4.json"),
            (new() { ["SLURM_ARRAY_TASK_ID"] = "0", ["SLURM_ARRAY_TASK_COUNT"] = "2" }, [], "shard-0-of-2.json"),
            (new() { ["SLURM_ARRAY_TASK_ID"] = "3", ["SLURM_ARRAY_TASK_COUNT"] = "4" }, ["--shard", "1/5"], "shard-1-of-5.json"),
        ];
        Parallel.ForEach(cases, c => Run(0, c.Environment, ["crashtest", "--recording", recording, "--result-dir", temp.File("results-" + c.File), .. c.Extra]));
        foreach ((Dictionary<string, string> environment, string[] _, string file) in cases)
        {
            CollectionAssert.AreEqual(new[] { file }, Directory.GetFiles(temp.File("results-" + file)).Select(Path.GetFileName).ToArray(), string.Join(" ", environment.Select(e => $"{e.Key}={e.Value}")));
        }
    }

    [TestMethod]
    [DataRow("JOB_COMPLETION_INDEX=2", "WB_SHARD_COUNT")]
    [DataRow("JOB_COMPLETION_INDEX=3 WB_SHARD_COUNT=3", "JOB_COMPLETION_INDEX=3")]
    [DataRow("JOB_COMPLETION_INDEX=x WB_SHARD_COUNT=3", "JOB_COMPLETION_INDEX=x")]
    [DataRow("JOB_COMPLETION_INDEX=0 WB_SHARD_COUNT=0", "WB_SHARD_COUNT=0")]
    [DataRow("SLURM_ARRAY_TASK_ID=1", "SLURM_ARRAY_TASK_COUNT")]
    [DataRow("SLURM_ARRAY_TASK_ID=-1 SLURM_ARRAY_TASK_COUNT=4", "SLURM_ARRAY_TASK_ID=-1")]
    [DataRow("SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_COUNT=4 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=6", "SLURM_ARRAY_TASK_MAX=6")]
    [DataRow("SLURM_ARRAY_TASK_ID=9 SLURM_ARRAY_TASK_COUNT=4 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_MAX=4", "SLURM_ARRAY_TASK_ID=9")]
    [DataRow("SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 JOB_COMPLETION_INDEX=1 WB_SHARD_COUNT=2", "--shard")]
    public void A_shard_the_environment_gets_wrong_is_a_usage_error_naming_the_variable(string variables, string named)
    {
        Dictionary<string, string> environment = variables.Split(' ').Select(v => v.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
        WbResult result = WbProcess.Run(environment, "crashtest", "--states", "10", "--ops", "5", "--mode", "0", "--workload", "random", "--config", "default");
        Assert.AreEqual(2, result.ExitCode, result.Stdout + result.Stderr);
        StringAssert.Contains(result.Stderr, named);
    }

    [TestMethod]
    public void Merge_refuses_shards_of_different_campaigns_and_missing_or_duplicate_shards()
    {
        using TempDirectory temp = new();
        string a = temp.File("a");
        string b = temp.File("b");
        Parallel.Invoke(
            () => Run(0, null, ["crashtest", "record", a, .. SmallCampaign(60)]),
            () => Run(0, null, ["crashtest", "record", b, .. SmallCampaign(60), "--seed", "2"]));
        Parallel.ForEach(new[] { (a, "ra"), (b, "rb") }.SelectMany(r => new[] { 0, 1 }.Select(shard => (Recording: r.Item1, Results: r.Item2, Shard: shard))),
            s => Run(0, null, "crashtest", "--recording", s.Recording, "--shard", $"{s.Shard}/2", "--result-dir", temp.File(s.Results)));
        string a0 = Path.Combine(temp.File("ra"), "shard-0-of-2.json");
        string a1 = Path.Combine(temp.File("ra"), "shard-1-of-2.json");
        string b1 = Path.Combine(temp.File("rb"), "shard-1-of-2.json");
        File.Copy(a0, temp.File("copy-of-shard-0.json"));

        Refused("different campaigns (seed 2 vs 1)", a0, b1);
        Refused("shard 1/2 missing", a0);
        Refused("shard 0/2 is there twice", a0, a1, temp.File("copy-of-shard-0.json"));
        Refused("no such file", a0, temp.File("nothing.json"));
        Run(0, null, "crashtest", "merge", a0, a1);
    }

    [TestMethod]
    public void Result_files_need_a_recording()
    {
        WbResult result = WbProcess.Run(null, "crashtest", "--shard", "0/2", "--result-dir", Path.GetTempPath(), "--states", "10");
        Assert.AreEqual(2, result.ExitCode);
        StringAssert.Contains(result.Stderr, "--result-dir needs --recording");
    }

    /// <summary>The merged report is the unsharded one: totals, states per kind, every campaign, the first violation (speed aside).</summary>
    internal static void AssertSameCampaign(JsonElement unsharded, JsonElement merged)
    {
        Assert.IsGreaterThan(200L, unsharded.GetProperty("states_checked").GetInt64(), "a campaign that checks little proves little");
        foreach (string total in new[] { "states_generated", "states_checked", "violations", "recovery_crash_states" })
        {
            Assert.AreEqual(unsharded.GetProperty(total).GetInt64(), merged.GetProperty(total).GetInt64(), total);
        }
        Assert.AreEqual(unsharded.GetProperty("coverage").GetRawText(), merged.GetProperty("coverage").GetRawText(), "states per kind, crash points, logs, live reads");
        Assert.AreEqual(Campaigns(unsharded), Campaigns(merged), "per campaign: events, states, verdicts");
        Assert.AreEqual(FirstFailure(unsharded), FirstFailure(merged));
    }

    private static void Refused(string why, params string[] files)
    {
        WbResult result = WbProcess.Run(null, ["crashtest", "merge", .. files]);
        Assert.AreEqual(2, result.ExitCode, result.Stdout + result.Stderr);
        StringAssert.Contains(result.Stderr, why);
    }

    private static string Run(int exitCode, Dictionary<string, string>? environment, params string[] arguments)
    {
        WbResult result = WbProcess.Run(environment, arguments);
        Assert.AreEqual(exitCode, result.ExitCode, $"wb {string.Join(' ', arguments)}: {result.Stderr}");
        return result.Stdout;
    }

    internal static JsonElement Json(string stdout) => JsonDocument.Parse(stdout).RootElement.Clone();

    /// <summary>Each campaign's report but its speed (the time a machine takes is not the campaign).</summary>
    internal static string Campaigns(JsonElement report) => string.Join("\n", report.GetProperty("campaigns").EnumerateArray().Select(c =>
        string.Join(", ", c.EnumerateObject().Where(p => p.Name != "states_per_second").Select(p => $"{p.Name}={p.Value.GetRawText()}"))));

    internal static string FirstFailure(JsonElement report) => report.GetProperty("first_failure") is { ValueKind: JsonValueKind.Object } failure
        ? string.Join(", ", failure.EnumerateObject().Where(p => p.Name != "reproduce").Select(p => $"{p.Name}={p.Value.GetRawText()}"))
        : "none";
}
