using System.Diagnostics;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Cli;

/// <summary>The micro-benchmarks (tests/Writeboost.Microbenchmarks) build with the solution and each runs (once, BenchmarkDotNet's dry job).</summary>
[TestClass]
public sealed class MicrobenchmarksTests
{
    [TestMethod]
    public void Every_micro_benchmark_runs_once_and_reports_a_figure()
    {
        string dll = Path.Combine(Support.Lab.RepositoryRoot, "tests", "Writeboost.Microbenchmarks", "bin", "Release", "net10.0", "Writeboost.Microbenchmarks.dll");
        Assert.IsTrue(File.Exists(dll), $"{dll}: the solution builds the micro-benchmarks");
        using TempDirectory artifacts = new();
        ProcessStartInfo start = new("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in new[] { dll, "--filter", "*", "--job", "Dry", "--inProcess", "--artifacts", artifacts.Path })
        {
            start.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.IsTrue(process.WaitForExit(TimeSpan.FromMinutes(3)), "the dry run ends");
        Assert.AreEqual(0, process.ExitCode, stdout + stderr.Result);
        StringAssert.Contains(stdout, "executed benchmarks: 8", stdout);
        foreach (string name in new[] { "CRC-32C of a 4 KiB block", "CRC-32C of a 512 KiB segment", "CRC-32C combine", "pmem record of one slot", "segment checksum", "4 KiB write placed into the RAM buffer", "copy into a slot, then CRC-32C", "copy into a slot with the CRC-32C in the same pass" })
        {
            StringAssert.Contains(stdout, name);
        }
        // A benchmark that threw has "NA" for its mean in the summary tables (rows "| 'name' | mean | ...").
        string[] rows = [.. stdout.Split('\n').Where(l => l.StartsWith("| '", StringComparison.Ordinal))];
        Assert.HasCount(8, rows, stdout);
        Assert.IsTrue(rows.All(r => r.Split('|')[2].Trim() != "NA"), "every benchmark measured a mean: " + string.Join('\n', rows));
    }
}
