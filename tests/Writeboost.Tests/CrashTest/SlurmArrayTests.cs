using System.Diagnostics;
using System.Text.Json;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.CrashTest;

/// <summary>
/// deploy/slurm for real: a single-node Slurm from Debian's packages (deploy/slurm/single-node.sh installs what is
/// missing and starts munged, slurmctld and slurmd under a temp directory), a 4-task array of shards, the merge.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class SlurmArrayTests
{
    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public void A_Slurm_array_of_four_shards_merges_into_the_unsharded_campaign()
    {
        using TempDirectory temp = new();
        string cluster = temp.File("slurm");
        string work = temp.File("campaign");
        string slurm = Path.Combine(Support.Lab.RepositoryRoot, "deploy", "slurm");
        (int started, string startOutput) = Bash(TimeSpan.FromSeconds(120), null, Path.Combine(slurm, "single-node.sh"), "start", cluster);
        try
        {
            if (started == 77)
            {
                Assert.Inconclusive($"skipped: Slurm cannot start here: {startOutput.Trim()}");
            }
            Assert.AreEqual(0, started, startOutput);
            Dictionary<string, string> environment = new()
            {
                ["SLURM_CONF"] = Path.Combine(cluster, "slurm.conf"),
                ["WB"] = Path.Combine(AppContext.BaseDirectory, "wb"),
            };
            (int status, string output) = Bash(TimeSpan.FromSeconds(90), environment, Path.Combine(slurm, "crashtest-array.sh"), [work, "4", .. ShardedCampaignTests.SmallCampaign()]);
            Assert.AreEqual(0, status, output);
            StringAssert.Contains(output, "merged 4 shards");
            for (int task = 0; task < 4; task++)
            {
                // Each task took its shard from the array's environment, not from an option.
                StringAssert.Contains(File.ReadAllText(Path.Combine(work, "logs", $"shard-{task}.out")), $"shard {task}/4 (SLURM_ARRAY_TASK_ID={task} of 0-3)");
            }
            JsonElement merged = ShardedCampaignTests.Json(File.ReadAllText(Path.Combine(work, "merged.json")));
            WbResult unsharded = WbProcess.Run(null, "crashtest", "--recording", Path.Combine(work, "recording"), "--json", "--no-minimise");
            Assert.AreEqual(0, unsharded.ExitCode, unsharded.Stderr);
            ShardedCampaignTests.AssertSameCampaign(ShardedCampaignTests.Json(unsharded.Stdout), merged);
        }
        finally
        {
            (int stopped, string stopOutput) = Bash(TimeSpan.FromSeconds(30), null, Path.Combine(slurm, "single-node.sh"), "stop", cluster);
            Assert.AreEqual(0, stopped, stopOutput);
        }
    }

    /// <summary>Runs a script with bash; returns its exit code and everything it printed (stdout, then stderr). Killed at the limit.</summary>
    private static (int ExitCode, string Output) Bash(TimeSpan limit, Dictionary<string, string>? environment, string script, params string[] arguments)
    {
        ProcessStartInfo start = new("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        foreach ((string key, string value) in environment ?? [])
        {
            start.Environment[key] = value;
        }
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return (-1, $"{Path.GetFileName(script)} did not finish in {limit.TotalSeconds} s\n{stdout.Result}\n{stderr.Result}");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
