using System.Text.Json;
using Writeboost.Devices;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Cli;

[TestClass]
public sealed class PmemCliTests
{
    private static readonly Dictionary<string, string> ForcePmem = new() { ["PMEM_IS_PMEM_FORCE"] = "1" };

    [TestMethod]
    public void Forcing_pmem_takes_the_cache_line_flush_path_on_emulated_pmem()
    {
        using TempDirectory dir = new("/dev/shm");
        string path = dir.File("pmem");
        FileBlockDevice.CreateFile(path, 4 << 20);

        using JsonDocument forced = Json(WbProcess.Run(ForcePmem, "pmem", "info", path, "--json"));
        Assert.AreEqual("dax", forced.RootElement.GetProperty("backend").GetString());
        Assert.IsTrue(forced.RootElement.GetProperty("is_pmem").GetBoolean());
        Assert.AreEqual("cache-line", forced.RootElement.GetProperty("granularity").GetString());

        using JsonDocument plain = Json(WbProcess.Run(null, "pmem", "info", path, "--json"));
        Assert.IsFalse(plain.RootElement.GetProperty("is_pmem").GetBoolean());
        Assert.AreEqual("page", plain.RootElement.GetProperty("granularity").GetString());
    }

    [TestMethod]
    [DataRow("dax", "/dev/shm")]
    [DataRow("block", null)]
    public void The_pmem_benchmark_reports_latency_percentiles_for_each_backend(string backend, string? root)
    {
        using TempDirectory dir = new(root);
        string path = dir.File("pmem");
        FileBlockDevice.CreateFile(path, 4 << 20);
        using JsonDocument result = Json(WbProcess.Run(ForcePmem, "bench", "pmem", path, "--backend", backend, "--ops", "300", "--json"));
        JsonElement r = result.RootElement.GetProperty("result");
        Assert.AreEqual(backend, r.GetProperty("backend").GetString());
        Assert.AreEqual(300, r.GetProperty("ops").GetInt64());
        Assert.IsGreaterThan(0.0, r.GetProperty("iops").GetDouble());
        long p50 = r.GetProperty("p50_ns").GetInt64();
        long p99 = r.GetProperty("p99_ns").GetInt64();
        Assert.IsTrue(p50 > 0 && p50 <= p99, $"p50 {p50} ns, p99 {p99} ns");
        // The floor in the same run, for the dax backend: the same loop calling libpmem directly on the same file.
        if (backend == "dax")
        {
            JsonElement bare = result.RootElement.GetProperty("libpmem_bare");
            Assert.AreEqual("libpmem", bare.GetProperty("backend").GetString());
            Assert.AreEqual(300, bare.GetProperty("ops").GetInt64());
            Assert.IsGreaterThan(0L, bare.GetProperty("p50_ns").GetInt64());
            Assert.AreEqual(p50 / (double)bare.GetProperty("p50_ns").GetInt64(), result.RootElement.GetProperty("wb_p50_over_libpmem_bare_p50").GetDouble(), 1e-9);
            Assert.AreEqual(3, result.RootElement.GetProperty("wb_over_libpmem_bare_spread").GetProperty("rounds").GetInt32(), "three rounds by default, each with its floor");
            // What eADR saves, where the region is pmem (forced here): the same writes stored and fenced, no write-back.
            JsonElement eadr = result.RootElement.GetProperty("eadr");
            Assert.AreEqual(300, eadr.GetProperty("ops").GetInt64());
            Assert.IsGreaterThan(0L, eadr.GetProperty("p50_ns").GetInt64());
            Assert.AreEqual(3, result.RootElement.GetProperty("eadr_over_adr_p50_spread").GetProperty("rounds").GetInt32());
        }
        else
        {
            Assert.AreEqual(JsonValueKind.Null, result.RootElement.GetProperty("libpmem_bare").ValueKind, "the block backend's floor is its device flush, not libpmem");
            Assert.AreEqual(JsonValueKind.Null, result.RootElement.GetProperty("eadr").ValueKind, "a block device has no CPU caches to keep");
            Assert.AreEqual(3, result.RootElement.GetProperty("wb_p50_us_spread").GetProperty("rounds").GetInt32());
        }
    }

    [TestMethod]
    [DataRow(new[] { "pmem", "info", "/nonexistent/pmem" }, "/nonexistent/pmem", DisplayName = "a missing file")]
    [DataRow(new[] { "pmem", "frobnicate", "/tmp" }, "expected 'info' or 'bench'", DisplayName = "an unknown action")]
    [DataRow(new[] { "bench", "pmem" }, "exactly one PATH", DisplayName = "a missing path")]
    [DataRow(new[] { "pmem", "info", "/dev/null", "--backend", "tape" }, "expected auto, block or dax", DisplayName = "an unknown backend")]
    public void Usage_errors_exit_2_with_one_clear_line_and_no_stack_trace(string[] arguments, string expected)
    {
        WbResult result = WbProcess.Run(null, arguments);
        Assert.AreEqual(2, result.ExitCode, result.Stderr);
        StringAssert.Contains(result.Stderr, expected);
        Assert.AreEqual(1, result.Stderr.Trim().Split('\n').Length, result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
    }

    [TestMethod]
    public void A_region_past_the_end_of_the_file_is_a_usage_error_naming_it()
    {
        using TempDirectory dir = new();
        string path = dir.File("pmem");
        FileBlockDevice.CreateFile(path, 1 << 16);
        WbResult result = WbProcess.Run(null, "pmem", "info", path, "--offset-bytes", "4096", "--length-bytes", "1048576");
        Assert.AreEqual(2, result.ExitCode);
        StringAssert.Contains(result.Stderr, $"{path} at offset 4096 length 1048576: outside the 65536-byte device");
    }

    private static JsonDocument Json(WbResult result)
    {
        Assert.AreEqual(0, result.ExitCode, result.Stderr);
        return JsonDocument.Parse(result.Stdout);
    }
}
