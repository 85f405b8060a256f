using Writeboost.Tests.Support;

namespace Writeboost.Tests.Lab;

/// <summary>
/// The Pmem API on the kernel's real pmem drivers in the lab (emulated NVDIMMs, Debian's kernel): the block
/// backend on a raw /dev/pmem namespace, the dax backend on an ext4 -o dax file (fsdax) and on /dev/dax0.0
/// (devdax). One scenario (guest/pmem-api.sh): write and persist seeded patterns, power cut, second boot reads
/// them back.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class LabPmemApiTests
{
    private static readonly SharedLabScenario s_scenario = new(() => new LabScenario("pmem-api.sh", [],
        [], ["devdax.img:256M", "fsdax.img:256M", "raw.img:256M"]));

    private static LabScenario Scenario => s_scenario.Value;

    [ClassCleanup]
    public static void RemoveWork() => s_scenario.Dispose();

    [TestMethod]
    public void The_block_backend_on_dev_pmem_takes_its_size_from_BLKGETSIZE64_and_opens_it_O_DIRECT()
    {
        IReadOnlyDictionary<string, string> rmw = Scenario.Write.Section("rmw");
        Assert.AreEqual("block", rmw["backend"]);
        Assert.AreEqual("yes", rmw["block_device"], "a /dev/pmem node is a block device");
        Assert.AreEqual(Scenario.Write.Section("blockdev")["size_bytes"], rmw["device_size_bytes"], "the size is the kernel's (blockdev --getsize64)");
        Assert.AreEqual(256L << 20, long.Parse(rmw["device_size_bytes"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.AreEqual("yes", rmw["o_direct"], "the pmem driver accepts O_DIRECT");
        Assert.AreEqual("no", rmw["is_pmem"]);
        Assert.AreEqual("page", rmw["granularity"]);
    }

    [TestMethod]
    public void The_block_backend_reads_only_the_partial_sectors_and_writes_the_run_once()
    {
        IReadOnlyDictionary<string, string> rmw = Scenario.Write.Section("rmw");
        Assert.AreEqual("reads 1 writes 1 flushes 0", rmw["rmw_inside_one_sector"]);
        Assert.AreEqual("reads 2 writes 1 flushes 0", rmw["rmw_partial_head_and_tail"]);
        Assert.AreEqual("reads 0 writes 1 flushes 0", rmw["rmw_aligned"]);
        Assert.AreEqual("reads 0 writes 0 flushes 1", rmw["rmw_persist"], "persist is the device flush alone");
    }

    [TestMethod]
    public void A_file_on_ext4_dax_is_mapped_with_MAP_SYNC_at_cache_line_granularity()
    {
        IReadOnlyDictionary<string, string> file = Scenario.Write.Section("file");
        Assert.AreEqual("dax", file["backend"]);
        Assert.AreEqual("yes", file["map_sync"], "the kernel grants MAP_SYNC on ext4 -o dax");
        Assert.AreEqual("no", file["device_dax"]);
        Assert.AreEqual("yes", file["is_pmem"], "pmem without PMEM_IS_PMEM_FORCE");
        Assert.AreEqual("cacheline", file["granularity"]);
        IReadOnlyDictionary<string, string> unaligned = Scenario.Write.Section("file_unaligned");
        Assert.AreEqual("ok", unaligned["map"], "a file region need not start on a page");
        Assert.AreEqual("yes", unaligned["last_bytes_read_back"]);
    }

    [TestMethod]
    public void Device_dax_is_mapped_at_its_2_MiB_alignment()
    {
        IReadOnlyDictionary<string, string> devdax = Scenario.Write.Section("devdax");
        Assert.AreEqual("dax", devdax["backend"]);
        Assert.AreEqual("yes", devdax["device_dax"]);
        Assert.AreEqual("yes", devdax["is_pmem"]);
        Assert.AreEqual("cacheline", devdax["granularity"]);
        Assert.AreEqual("exit 0", $"exit {devdax["exit"]}");
    }

    [TestMethod]
    public void Device_dax_refuses_an_unaligned_start_clearly_and_rounds_an_unaligned_length()
    {
        IReadOnlyDictionary<string, string> start = Scenario.Write.Section("devdax_unaligned_start");
        Assert.AreEqual("refused", start["map"]);
        StringAssert.Contains(start["error"], "/dev/dax0.0 at offset 4096");
        StringAssert.Contains(start["error"], "aligned to 2097152 bytes");
        IReadOnlyDictionary<string, string> length = Scenario.Write.Section("devdax_unaligned_length");
        Assert.AreEqual("ok", length["map"], "a length that is not a multiple of 2 MiB is mapped rounded up");
        Assert.AreEqual("100000", length["length_bytes"]);
        Assert.AreEqual("yes", length["last_bytes_read_back"]);
        IReadOnlyDictionary<string, string> pastEnd = Scenario.Write.Section("devdax_past_end");
        Assert.AreEqual("refused", pastEnd["map"]);
        StringAssert.Contains(pastEnd["error"], "/dev/dax0.0");
    }

    [TestMethod]
    public void Namespace_modes_are_kept_on_the_NVDIMM_across_a_reboot()
    {
        IReadOnlyDictionary<string, string> after = Scenario.Verify.Section("namespaces");
        Assert.AreEqual("devdax", after["mode0"]);
        Assert.AreEqual("fsdax", after["mode1"]);
        Assert.AreEqual("raw", after["mode2"]);
    }

    [TestMethod]
    [DataRow("block", DisplayName = "block backend, /dev/pmem2, O_DIRECT")]
    [DataRow("file", DisplayName = "dax backend, ext4 -o dax file")]
    [DataRow("devdax", DisplayName = "dax backend, /dev/dax0.0")]
    public void Persisted_writes_at_every_alignment_survive_a_power_cut(string region)
    {
        Assert.AreEqual("yes", Scenario.Write.Section(region)["written"], Scenario.Write.ToString());
        IReadOnlyDictionary<string, string> verify = Scenario.Verify.Section(region);
        Assert.AreEqual("0", verify["wrong_bytes"], Scenario.Verify.ToString());
        Assert.AreEqual("0", verify["exit"]);
        Assert.IsGreaterThan(100_000, int.Parse(verify["checked_bytes"], System.Globalization.CultureInfo.InvariantCulture));
    }
}
