using System.Globalization;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Lab;

/// <summary>
/// The on-disk format against the real dm-writeboost kernel module (Debian's dm-writeboost-dkms, built for the
/// lab's kernel), in both directions, each after a power cut (guest/kernel.sh): a cache wb wrote with FUA writes
/// and never drained is replayed by the kernel; caches the kernel wrote with FUA writes are replayed by wb.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class LabKernelModuleTests
{
    private static readonly SharedLabScenario s_scenario = new(() => new LabScenario("kernel.sh", ["6"],
        ["a.img:256M", "b.img:128M", "c.img:256M", "d.img:64M", "e.img:256M", "f.img:128M"], []));

    private static LabScenario Scenario => s_scenario.Value;

    [ClassCleanup]
    public static void RemoveWork() => s_scenario.Dispose();

    [TestMethod]
    public void The_kernel_module_replays_a_cache_wb_left_at_a_power_cut()
    {
        IReadOnlyDictionary<string, string> replay = Scenario.Verify.Section("a_kernel_replays_wb");
        Assert.AreEqual("0", replay["lost_blocks"], Scenario.Verify.ToString());
        Assert.AreEqual("0", replay["exit"]);
        Assert.IsGreaterThan(100, int.Parse(replay["acknowledged_writes"], CultureInfo.InvariantCulture));
        Assert.IsFalse(replay.ContainsKey("dmesg"), $"the module complained: {replay.GetValueOrDefault("dmesg")}");
    }

    [TestMethod]
    public void Wb_replays_a_cache_the_kernel_module_left_at_a_power_cut_before_its_log_wrapped()
    {
        IReadOnlyDictionary<string, string> replay = Scenario.Verify.Section("b_wb_replays_kernel_unwrapped");
        Assert.AreEqual("0", replay["check_exit"], "wb check finds the kernel's cache sound");
        Assert.AreEqual("0", replay["lost_blocks"], Scenario.Verify.ToString());
        Assert.AreEqual("40", replay["acknowledged_writes"]);
    }

    [TestMethod]
    public void Wb_replays_a_cache_the_kernel_module_left_at_a_power_cut_after_its_log_wrapped()
    {
        IReadOnlyDictionary<string, string> replay = Scenario.Verify.Section("b_wb_replays_kernel_wrapped");
        Assert.AreEqual("0", replay["lost_blocks"], Scenario.Verify.ToString());
        Assert.AreEqual("0", replay["check_exit"]);
    }
}
