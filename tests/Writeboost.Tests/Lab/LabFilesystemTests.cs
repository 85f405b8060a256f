using System.Globalization;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Lab;

/// <summary>
/// Real filesystems on wb serve through the kernel's NBD client (nbd-client -u SOCKET /dev/nbdN -b 4096) in the
/// lab: ext4 on mode 0 and xfs on mode 1 with the pmem buffer on device dax, two stacks in one VM. Files
/// and a directory tree are written with fsync, renames made durable, then more writes run and the power is cut;
/// the second boot recovers wb, mounts (journal replay), checks every fsync'd file's checksum and runs
/// e2fsck -fn / xfs_repair -n (guest/fs.sh).
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class LabFilesystemTests
{
    private static readonly SharedLabScenario s_scenario = new(() => new LabScenario("fs.sh", ["3"],
        ["a.img:512M", "b.img:128M", "c.img:512M", "d.img:128M"],
        ["devdax0.img:256M"]));

    private static LabScenario Scenario => s_scenario.Value;

    [ClassCleanup]
    public static void RemoveWork() => s_scenario.Dispose();

    [TestMethod]
    [DataRow("m0ext4", DisplayName = "ext4 on mode 0")]
    [DataRow("m1xfs", DisplayName = "xfs on mode 1, pmem on /dev/dax0.0")]
    public void Every_file_fsynced_before_a_power_cut_has_its_checksum_after_journal_replay(string stack)
    {
        IReadOnlyDictionary<string, string> verify = Scenario.Verify.Section(stack);
        Assert.AreEqual("0", verify["bad_files"], Scenario.Verify.ToString());
        Assert.IsGreaterThanOrEqualTo(6, int.Parse(verify["files"], CultureInfo.InvariantCulture));
        Assert.AreEqual("yes", verify["journal_replayed"], "the cut came in the middle of writes: the mount replays the journal");
    }

    [TestMethod]
    [DataRow("m0ext4", DisplayName = "e2fsck -fn, mode 0")]
    [DataRow("m1xfs", DisplayName = "xfs_repair -n, mode 1")]
    public void The_filesystem_checker_finds_nothing_to_repair_after_the_cut(string stack)
    {
        Assert.AreEqual("0", Scenario.Verify.Section(stack)["fsck_exit"], Scenario.Verify.ToString());
    }
}
