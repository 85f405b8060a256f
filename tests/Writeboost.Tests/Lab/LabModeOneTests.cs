using System.Globalization;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Lab;

/// <summary>
/// Mode 1 with its pmem buffer on real drivers in the lab: /dev/dax0.0 (devdax) and a file on ext4 -o dax
/// (fsdax). The kernel's NBD client writes 4 KiB FUA writes through wb serve, each logged on the host once
/// acknowledged; the power is cut while they run (no clean close); the second boot recovers and every
/// acknowledged write reads back (guest/mode1.sh). The crash harness's --nbd-client run also passes there.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class LabModeOneTests
{
    private static readonly SharedLabScenario s_scenario = new(() => new LabScenario("mode1.sh", ["6"],
        ["a.img:256M", "b.img:128M", "c.img:256M", "d.img:128M"], ["devdax.img:256M", "fsdax.img:256M"]));

    private static LabScenario Scenario => s_scenario.Value;

    [ClassCleanup]
    public static void RemoveWork() => s_scenario.Dispose();

    [TestMethod]
    [DataRow("dax", "yes", DisplayName = "pmem on /dev/dax0.0")]
    [DataRow("file", "no", DisplayName = "pmem on an ext4 -o dax file")]
    public void The_pmem_buffer_is_mapped_with_MAP_SYNC_without_PMEM_IS_PMEM_FORCE(string pmem, string deviceDax)
    {
        IReadOnlyDictionary<string, string> info = Scenario.Write.Section($"info_{pmem}");
        Assert.AreEqual("dax", info["backend"]);
        Assert.AreEqual("yes", info["map_sync"]);
        Assert.AreEqual(deviceDax, info["device_dax"]);
        Assert.AreEqual("cache-line", info["granularity"]);
    }

    [TestMethod]
    [DataRow("dax", DisplayName = "pmem on /dev/dax0.0")]
    [DataRow("file", DisplayName = "pmem on an ext4 -o dax file")]
    public void Every_acknowledged_FUA_write_survives_a_power_cut_without_a_clean_close(string pmem)
    {
        IReadOnlyDictionary<string, string> verify = Scenario.Verify.Section(pmem);
        Assert.AreEqual("0", verify["lost_blocks"], Scenario.Verify.ToString());
        Assert.AreEqual("0", verify["exit"]);
        Assert.IsGreaterThan(50, int.Parse(verify["acknowledged_writes"], CultureInfo.InvariantCulture), "the writers ran before the cut");
        // The cut left acknowledged writes in the pmem buffer only: recovery rebuilt them from pmem.
        StringAssert.Contains(Scenario.Verify.Section($"recovery_{pmem}")["recovery:"], "from pmem");
    }

    [TestMethod]
    public void Recovery_rebuilds_segments_from_the_pmem_buffer()
    {
        foreach (string pmem in new[] { "dax", "file" })
        {
            string recovery = Scenario.Verify.Section($"recovery_{pmem}")["recovery:"];
            int rebuilt = int.Parse(recovery.Split("rebuilt ")[1].Split(' ')[0], CultureInfo.InvariantCulture);
            Assert.IsGreaterThan(0, rebuilt, $"{pmem}: {recovery}");
        }
    }

    [TestMethod]
    public void The_crash_harness_nbd_client_run_passes_in_the_lab()
    {
        IReadOnlyDictionary<string, string> crash = Scenario.Verify.Section("crashtest");
        Assert.AreEqual("0", crash["exit"], Scenario.Verify.ToString());
    }
}
