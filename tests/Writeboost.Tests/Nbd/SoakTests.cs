using System.Diagnostics;
using System.Text.Json;

namespace Writeboost.Tests.Nbd;

/// <summary>
/// The bounded soak: bench/soak.sh for 40 s with 3 clients (fio with verify, the FUA client), the ring wrapping
/// and writeback running, a kill -9 of `wb serve` mid-run and a restart. The full run is 10 minutes
/// (docs/benchmarks.md); this one keeps every check and only shortens the phases.
/// </summary>
[TestClass]
public sealed class SoakTests
{
    /// <summary>The repository root: the first directory above the test binaries that holds bench/soak.sh.</summary>
    private static string RepoRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "bench", "soak.sh")) && File.Exists(Path.Combine(dir.FullName, "Writeboost.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no bench/soak.sh above {AppContext.BaseDirectory}");
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(0)]
    public void Soak_with_verify_and_a_kill_9_midway_loses_nothing_durable(int mode)
    {
        string root = RepoRoot();
        string wb = Path.Combine(AppContext.BaseDirectory, File.Exists(Path.Combine(AppContext.BaseDirectory, "wb")) ? "wb" : "wb.dll");
        ProcessStartInfo start = new("bash") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root };
        foreach (string argument in new[] { Path.Combine(root, "bench", "soak.sh"), "--mode", $"{mode}", "--seconds", "40", "--clients", "3",
                     "--json", "--no-build", "--wb", wb })
        {
            start.ArgumentList.Add(argument);
        }
        using Process soak = Process.Start(start)!;
        Task<string> stderr = soak.StandardError.ReadToEndAsync();
        Task<string> stdout = soak.StandardOutput.ReadToEndAsync();
        if (!soak.WaitForExit(240_000))
        {
            soak.Kill(entireProcessTree: true);
            Assert.Fail($"soak.sh did not finish in 240 s: {stdout.Result}{stderr.Result}");
        }
        string output = stdout.Result;
        string log = output + stderr.Result;
        string last = output.TrimEnd().Split('\n')[^1];
        Assert.IsTrue(last.StartsWith('{'), $"no JSON line: {log}");
        using JsonDocument json = JsonDocument.Parse(last);
        JsonElement result = json.RootElement;
        Assert.AreEqual(0, result.GetProperty("verify_errors").GetInt32(), log);
        Assert.AreEqual(0, result.GetProperty("fio_failures").GetInt32(), log);
        Assert.AreEqual(0, result.GetProperty("crash_ledger_errors").GetInt32(), log);
        Assert.IsTrue(result.GetProperty("recovered").GetBoolean(), log);
        Assert.IsTrue(result.GetProperty("phase1_digest_match").GetBoolean(), log);
        Assert.IsGreaterThan(0, result.GetProperty("crash_ledger_blocks_checked").GetInt64(), log);
        Assert.IsGreaterThanOrEqualTo(1.0, result.GetProperty("cache_laps").GetDouble(), log);
        Assert.IsTrue(result.GetProperty("passed").GetBoolean(), log);
        Assert.AreEqual(0, soak.ExitCode, log);
    }
}
