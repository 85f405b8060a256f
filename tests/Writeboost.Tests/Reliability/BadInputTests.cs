using System.Diagnostics;
using System.Security.Cryptography;
using Writeboost.Cache.Table;
using Writeboost.Devices;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Reliability;

/// <summary>Every key out of range or mistyped, devices swapped or aliased, a pmem of another cache, two openers at once.</summary>
[TestClass]
public sealed class BadInputTests
{
    private static readonly Dictionary<string, string> ForcePmem = new() { ["PMEM_IS_PMEM_FORCE"] = "1" };

    public static IEnumerable<object[]> EveryKeyWithEveryBadValue() =>
        from spec in TunableSpecs.All
        from value in new[]
        {
            (spec.Min - 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
            (spec.Max + 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
            "x", "1.5", "0x10", "", "99999999999999999999", "-99999999999999999999",
        }
        select new object[] { spec.Key, value };

    [TestMethod]
    [DynamicData(nameof(EveryKeyWithEveryBadValue))]
    public void Every_tunable_refuses_every_bad_value_naming_the_key(string key, string value)
    {
        TableException error = Assert.Throws<TableException>(() => DeviceTable.Parse(["0", "/b", "/c", key, value]));
        StringAssert.Contains(error.Message, key);
    }

    [TestMethod]
    [DataRow(new[] { "crashtest", "--mode", "3" }, "--mode 3: expected 0, 1 or both")]
    [DataRow(new[] { "crashtest", "--states", "-5" }, "must be positive")]
    [DataRow(new[] { "faults", "--workload", "overwrite" }, "--workload overwrite: expected random, wrap or all")]
    [DataRow(new[] { "faults", "--runs", "0" }, "--runs must be positive")]
    [DataRow(new[] { "faults", "--mutant", "nonsense" }, "unknown mutant nonsense")]
    [DataRow(new[] { "corrupt", "--data-samples", "-1" }, "--data-samples not negative")]
    [DataRow(new[] { "crashtest", "--mutants", "al" }, "--mutants al: expected all")]
    [DataRow(new[] { "faults", "--mutants", "x" }, "--mutants x: expected all")]
    [DataRow(new[] { "bench", "fua", "--mode", "x" }, "--mode")]
    [DataRow(new[] { "bench", "fua", "--independent" }, "--independent: compares --writers N on one device with N devices; --writers 1")]
    [DataRow(new[] { "bench", "fua", "0", "/b", "/c", "--writers", "2", "--independent" }, "--independent: only without a TABLE")]
    [DataRow(new[] { "bench", "fua", "--mode", "both", "--writers", "2", "--independent" }, "--independent: give --mode 0 or 1")]
    [DataRow(new[] { "status", "0", "/nonexistent/b", "/nonexistent/c" }, "/nonexistent/b")]
    public void Bad_arguments_exit_2_with_one_line_naming_the_problem(string[] arguments, string expected)
    {
        WbResult result = WbProcess.Run(null, arguments);
        Assert.AreEqual(2, result.ExitCode, $"{result.Stdout}{result.Stderr}");
        StringAssert.Contains(result.Stderr, expected);
        Assert.AreEqual(1, result.Stderr.Trim().Split('\n').Length, result.Stderr);
    }

    [TestMethod]
    public void Serve_never_replaces_a_file_that_is_not_a_socket()
    {
        using TempDirectory dir = new();
        string backing = dir.File("backing.img");
        string cache = dir.File("cache.img");
        FileBlockDevice.CreateFile(backing, 16 << 20);
        FileBlockDevice.CreateFile(cache, 8 << 20);
        string precious = dir.File("notes.txt");
        File.WriteAllText(precious, "someone's data");

        WbResult result = WbProcess.Run(null, "serve", "0", backing, cache, "--socket", precious);

        Assert.AreEqual(2, result.ExitCode, result.Stdout + result.Stderr);
        StringAssert.Contains(result.Stderr, "not a socket");
        Assert.AreEqual("someone's data", File.ReadAllText(precious));
    }

    [TestMethod]
    public void Swapped_backing_and_cache_are_refused_and_the_backing_store_is_untouched()
    {
        using TempDirectory dir = new();
        string backing = dir.File("backing.img");
        string cache = dir.File("cache.img");
        FileBlockDevice.CreateFile(backing, 16 << 20);
        FileBlockDevice.CreateFile(cache, 8 << 20);
        Assert.AreEqual(0, WbProcess.Run(null, "create", "0", backing, cache).ExitCode);
        byte[] before = SHA256.HashData(File.ReadAllBytes(backing));

        WbResult swapped = WbProcess.Run(null, "status", "0", cache, backing);

        Assert.AreEqual(2, swapped.ExitCode, swapped.Stderr);
        StringAssert.Contains(swapped.Stderr, "swapped");
        CollectionAssert.AreEqual(before, SHA256.HashData(File.ReadAllBytes(backing)), "nothing was written to either device");
    }

    [TestMethod]
    public void A_blanked_sector_0_is_refused_by_status_and_flagged_by_check_in_one_line()
    {
        using TempDirectory dir = new();
        string backing = dir.File("backing.img");
        string cache = dir.File("cache.img");
        FileBlockDevice.CreateFile(backing, 16 << 20);
        FileBlockDevice.CreateFile(cache, 8 << 20);
        Assert.AreEqual(0, WbProcess.Run(null, "bench", "randwrite", "0", backing, cache, "--ops", "2000").ExitCode);
        using (FileStream file = new(cache, FileMode.Open, FileAccess.Write))
        {
            file.Write(new byte[512]); // what a partitioning tool or wipefs might do to sector 0
        }

        WbResult status = WbProcess.Run(null, "status", "0", backing, cache);
        WbResult check = WbProcess.Run(null, "check", cache, "--segment-size-order", "10");

        Assert.AreEqual(1, status.ExitCode, status.Stdout);
        StringAssert.Contains(status.Stderr, "sector 0 is blank, but");
        Assert.AreEqual(1, status.Stderr.Trim().Split('\n').Length, "one line, no stack trace: " + status.Stderr);
        Assert.AreEqual(1, check.ExitCode, check.Stdout);
        StringAssert.Contains(check.Stdout, "sector 0 is blank");
    }

    [TestMethod]
    public void One_file_under_two_names_is_refused_as_backing_and_cache()
    {
        using TempDirectory dir = new();
        string backing = dir.File("backing.img");
        FileBlockDevice.CreateFile(backing, 16 << 20);
        string symlink = dir.File("alias.img");
        File.CreateSymbolicLink(symlink, backing);
        string hardlink = dir.File("hard.img");
        using (Process ln = Process.Start("ln", [backing, hardlink])!)
        {
            ln.WaitForExit();
        }

        foreach (string alias in new[] { symlink, hardlink })
        {
            WbResult result = WbProcess.Run(null, "create", "0", backing, alias);
            Assert.AreEqual(2, result.ExitCode, result.Stderr);
            StringAssert.Contains(result.Stderr, "same file or device");
        }
    }

    [TestMethod]
    public void A_pmem_of_another_cache_is_refused_and_keeps_that_caches_data()
    {
        using TempDirectory dir = new();
        using TempDirectory shm = new("/dev/shm");
        string pmem = shm.File("pmem");
        FileBlockDevice.CreateFile(pmem, 16 << 20);
        string[] first = ["1", dir.File("b1.img"), dir.File("c1.img"), pmem, "pmem_backend", "dax"];
        string[] second = ["1", dir.File("b2.img"), dir.File("c2.img"), pmem, "pmem_backend", "dax"];
        foreach (string file in new[] { first[1], second[1] })
        {
            FileBlockDevice.CreateFile(file, 16 << 20);
        }
        foreach (string file in new[] { first[2], second[2] })
        {
            FileBlockDevice.CreateFile(file, 8 << 20);
        }
        Assert.AreEqual(0, WbProcess.Run(ForcePmem, ["create", .. first]).ExitCode);
        byte[] before = File.ReadAllBytes(pmem);

        WbResult result = WbProcess.Run(ForcePmem, ["create", .. second]);

        Assert.AreNotEqual(0, result.ExitCode, result.Stdout);
        StringAssert.Contains(result.Stderr, "belongs to another cache");
        CollectionAssert.AreEqual(before, File.ReadAllBytes(pmem), "the other cache's pmem buffer was not touched");
    }

    [TestMethod]
    public void A_second_process_gets_a_clear_error_for_every_device_a_server_holds()
    {
        using TempDirectory dir = new();
        using TempDirectory shm = new("/dev/shm");
        string backing = dir.File("backing.img");
        string cache = dir.File("cache.img");
        string pmem = shm.File("pmem");
        FileBlockDevice.CreateFile(backing, 16 << 20);
        FileBlockDevice.CreateFile(cache, 8 << 20);
        FileBlockDevice.CreateFile(pmem, 16 << 20);
        string[] table = ["1", backing, cache, pmem, "pmem_backend", "dax"];
        WbProcess.Create(ForcePmem, table);
        using Process server = WbProcess.StartUntil("ready", ForcePmem, ["serve", .. table, "--socket", dir.File("nbd.sock")]);
        try
        {
            string otherCache = dir.File("other-cache.img");
            string otherBacking = dir.File("other-backing.img");
            FileBlockDevice.CreateFile(otherCache, 8 << 20);
            FileBlockDevice.CreateFile(otherBacking, 16 << 20);
            string otherPmem = shm.File("other-pmem");
            FileBlockDevice.CreateFile(otherPmem, 16 << 20);
            string[][] contenders =
            [
                table,                                                            // the same table
                ["1", backing, otherCache, otherPmem, "pmem_backend", "dax"],     // the backing store
                ["1", otherBacking, cache, otherPmem, "pmem_backend", "dax"],     // the cache device
                ["1", otherBacking, otherCache, pmem, "pmem_backend", "dax"],     // the pmem buffer
            ];
            foreach (string[] contender in contenders)
            {
                WbResult result = WbProcess.Run(ForcePmem, ["create", .. contender]);
                Assert.AreEqual(1, result.ExitCode, $"{string.Join(' ', contender)}: {result.Stdout}");
                StringAssert.Contains(result.Stderr, $"in use by process {server.Id}");
            }
        }
        finally
        {
            server.Kill();
            server.WaitForExit();
        }
    }
}
