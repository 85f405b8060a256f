using System.Text.Json;
using Writeboost.Devices;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Cli;

[TestClass]
public sealed class TableCliTests
{
    private static (TempDirectory Dir, string Backing, string Cache) Files(long cacheBytes = 8 << 20)
    {
        TempDirectory dir = new();
        string backing = dir.File("backing.img");
        string cache = dir.File("cache.img");
        FileBlockDevice.CreateFile(backing, 16 << 20);
        FileBlockDevice.CreateFile(cache, cacheBytes);
        return (dir, backing, cache);
    }

    [TestMethod]
    public void Create_formats_once_and_then_recovers()
    {
        (TempDirectory dir, string backing, string cache) = Files();
        using (dir)
        {
            WbResult first = WbProcess.Run(null, "create", "0", backing, cache);
            Assert.AreEqual(0, first.ExitCode, first.Stderr);
            StringAssert.Contains(first.Stdout, "formatted");
            StringAssert.Contains(first.Stdout, "14 segments of 127 blocks");
            WbResult second = WbProcess.Run(null, "create", backing, cache);
            Assert.AreEqual(0, second.ExitCode, second.Stderr);
            StringAssert.Contains(second.Stdout, "already holds a cache");
        }
    }

    [TestMethod]
    public void Status_prints_the_dmsetup_line_and_json_with_named_fields()
    {
        (TempDirectory dir, string backing, string cache) = Files();
        using (dir)
        {
            WbProcess.Create(null, ["0", backing, cache]);
            WbResult text = WbProcess.Run(null, "status", "0", backing, cache, "2", "writeback_threshold", "20");
            Assert.AreEqual(0, text.ExitCode, text.Stderr);
            string[] fields = text.Stdout.Split('\n')[0].Split(' ');
            Assert.AreEqual("writeboost", fields[2]);
            Assert.AreEqual((16 << 20) / 512, long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture));
            CollectionAssert.Contains(fields, "writeback_threshold");

            WbResult json = WbProcess.Run(null, "status", "0", backing, cache, "--json");
            Assert.AreEqual(0, json.ExitCode, json.Stderr);
            using JsonDocument document = JsonDocument.Parse(json.Stdout);
            JsonElement status = document.RootElement.GetProperty("status");
            Assert.AreEqual(14, status.GetProperty("nr_segments").GetInt64());
            Assert.AreEqual(0, status.GetProperty("nr_dirty_caches").GetInt64());
            Assert.AreEqual(16, status.GetProperty("stats").GetArrayLength());
            Assert.AreEqual(0, document.RootElement.GetProperty("mode").GetInt32());
        }
    }

    [TestMethod]
    [DataRow(new[] { "frobnicate", "1" }, "unknown key frobnicate")]
    [DataRow(new[] { "writeback_threshold", "200" }, "out of range 0..100")]
    [DataRow(new[] { "segment_size_order", "11" }, "formatted with segment_size_order 10")]
    public void A_bad_table_exits_2_with_one_line(string[] keys, string expected)
    {
        (TempDirectory dir, string backing, string cache) = Files();
        using (dir)
        {
            Assert.AreEqual(0, WbProcess.Run(null, "create", "0", backing, cache).ExitCode);
            WbResult result = WbProcess.Run(null, ["status", "0", backing, cache, .. keys]);
            Assert.AreEqual(2, result.ExitCode, result.Stderr);
            StringAssert.Contains(result.Stderr, expected);
            Assert.AreEqual(1, result.Stderr.Trim().Split('\n').Length, result.Stderr);
        }
    }

    [TestMethod]
    public void A_cache_another_process_holds_is_refused_not_shared()
    {
        (TempDirectory dir, string backing, string cache) = Files();
        using (dir)
        using (FileBlockDevice holder = FileBlockDevice.Open(cache, new FileBlockDeviceOptions { Exclusive = true }))
        {
            WbResult result = WbProcess.Run(null, "status", "0", backing, cache);
            Assert.AreEqual(1, result.ExitCode, result.Stderr);
            StringAssert.Contains(result.Stderr, "in use");
        }
    }

    [TestMethod]
    public void Bench_fua_and_randwrite_print_the_contract_fields()
    {
        (TempDirectory dir, string backing, string cache) = Files(32 << 20);
        using (dir)
        {
            WbResult fua = WbProcess.Run(null, "bench", "fua", "0", backing, cache, "--ops", "200", "--json");
            Assert.AreEqual(0, fua.ExitCode, fua.Stderr);
            using JsonDocument f = JsonDocument.Parse(fua.Stdout);
            foreach (string field in new[] { "mode", "ops", "iops", "p50_us", "p99_us", "user_bytes", "cache_bytes_written", "full_segments", "partial_segments" })
            {
                Assert.IsTrue(f.RootElement.TryGetProperty(field, out _), $"bench fua JSON lacks {field}");
            }
            Assert.AreEqual(200, f.RootElement.GetProperty("partial_segments").GetInt64(), "mode 0: every FUA write is a partial log");
            Assert.IsFalse(f.RootElement.TryGetProperty("independent", out _), "no reference unless --independent asks for it");

            // The cache holds the fua bench's cache now: only --force benchmarks over it.
            WbResult rand = WbProcess.Run(null, "bench", "randwrite", "0", backing, cache, "--ops", "2000", "--json", "--force");
            Assert.AreEqual(0, rand.ExitCode, rand.Stderr);
            using JsonDocument r = JsonDocument.Parse(rand.Stdout);
            foreach (string field in new[] { "iops", "bytes_per_second", "cache_bytes_written", "full_segments", "partial_segments" })
            {
                Assert.IsTrue(r.RootElement.TryGetProperty(field, out _), $"bench randwrite JSON lacks {field}");
            }
            Assert.AreEqual(2000 / 127, r.RootElement.GetProperty("full_segments").GetInt64());
        }
    }

    [TestMethod]
    public void Bench_fua_independent_runs_the_same_writers_on_a_device_each_and_reports_the_ratio()
    {
        using TempDirectory dir = new();
        WbResult fua = WbProcess.Run(null, "bench", "fua", "--mode", "0", "--work-dir", dir.Path, "--writers", "2", "--independent", "--ops", "400", "--json");
        Assert.AreEqual(0, fua.ExitCode, fua.Stderr);
        using JsonDocument f = JsonDocument.Parse(fua.Stdout);
        JsonElement shared = f.RootElement;
        JsonElement independent = shared.GetProperty("independent");
        Assert.AreEqual(2, shared.GetProperty("writers").GetInt32());
        Assert.AreEqual(1, shared.GetProperty("devices").GetInt32());
        Assert.AreEqual(2, independent.GetProperty("writers").GetInt32());
        Assert.AreEqual(2, independent.GetProperty("devices").GetInt32());
        Assert.AreEqual(400, shared.GetProperty("ops").GetInt64());
        Assert.AreEqual(400, independent.GetProperty("ops").GetInt64());
        Assert.AreEqual(400, independent.GetProperty("partial_segments").GetInt64(), "mode 0: every FUA write on either device is a partial log");
        Assert.IsFalse(independent.TryGetProperty("independent", out _), "the reference has no reference");
        double ratio = shared.GetProperty("iops").GetDouble() / independent.GetProperty("iops").GetDouble();
        Assert.AreEqual(ratio, shared.GetProperty("iops_ratio_to_independent").GetDouble(), 1e-9);
        Assert.IsEmpty(Directory.GetFileSystemEntries(dir.Path), "the temporary files are gone");
    }

    [TestMethod]
    [DataRow("dax")]
    [DataRow("block")]
    public void Mode_1_fua_writes_make_no_partial_logs_and_a_clean_close_hands_the_cache_to_mode_0(string backend)
    {
        (TempDirectory dir, string backing, string cache) = Files(32 << 20);
        using (dir)
        using (TempDirectory shm = new("/dev/shm"))
        {
            string pmem = shm.File("pmem");
            FileBlockDevice.CreateFile(pmem, 16 << 20);
            Dictionary<string, string> force = new() { ["PMEM_IS_PMEM_FORCE"] = "1" };
            WbResult bench = WbProcess.Run(force, "bench", "fua", "1", backing, cache, pmem, "pmem_backend", backend, "--ops", "400", "--json");
            Assert.AreEqual(0, bench.ExitCode, bench.Stderr);
            using JsonDocument f = JsonDocument.Parse(bench.Stdout);
            Assert.AreEqual(1, f.RootElement.GetProperty("mode").GetInt32());
            Assert.AreEqual(0, f.RootElement.GetProperty("partial_segments").GetInt64());
            Assert.AreEqual(3, f.RootElement.GetProperty("full_segments").GetInt64(), "400 writes fill three 127-block segments");

            WbResult status = WbProcess.Run(force, "status", "1", backing, cache, pmem, "pmem_backend", backend, "--json");
            Assert.AreEqual(0, status.ExitCode, status.Stderr);
            using JsonDocument s = JsonDocument.Parse(status.Stdout);
            Assert.AreEqual(1, s.RootElement.GetProperty("mode").GetInt32());
            long dirty = s.RootElement.GetProperty("status").GetProperty("nr_dirty_caches").GetInt64();
            Assert.IsTrue(dirty is > 350 and <= 400, $"{dirty} dirty blocks: 400 writes at random offsets of 4096 blocks, recovered after the bench closed");

            WbResult mode0 = WbProcess.Run(null, "status", "0", backing, cache);
            Assert.AreEqual(0, mode0.ExitCode, "a clean mode-1 close lets mode 0 open the cache: " + mode0.Stderr);
        }
    }

    [TestMethod]
    public void Dump_lists_the_segments_and_check_finds_a_flipped_byte()
    {
        (TempDirectory dir, string backing, string cache) = Files();
        using (dir)
        {
            Assert.AreEqual(0, WbProcess.Run(null, "bench", "fua", "0", backing, cache, "--ops", "20").ExitCode);
            WbResult dump = WbProcess.Run(null, "dump", cache, "--metablocks");
            Assert.AreEqual(0, dump.ExitCode, dump.Stderr);
            StringAssert.Contains(dump.Stdout, "segment_size_order 10, 14 segments of 127 blocks");
            StringAssert.Contains(dump.Stdout, "block 0: backing sector");
            Assert.AreEqual(0, WbProcess.Run(null, "check", cache).ExitCode, "a clean cache checks clean");

            using (FileStream file = new(cache, FileMode.Open, FileAccess.ReadWrite))
            {
                file.Position = (1 << 20) + 4096 + 100; // data block 0 of slot 0
                int b = file.ReadByte();
                file.Position--;
                file.WriteByte((byte)(b ^ 0xFF));
            }
            WbResult check = WbProcess.Run(null, "check", cache);
            Assert.AreEqual(1, check.ExitCode, check.Stdout);
            StringAssert.Contains(check.Stdout, "1 damaged");
            StringAssert.Contains(check.Stdout, "slot 0: segment");
        }
    }
}
