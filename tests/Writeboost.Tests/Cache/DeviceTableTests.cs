using Writeboost.Cache.Table;
using Writeboost.Pmem;

namespace Writeboost.Tests.Cache;

[TestClass]
public sealed class DeviceTableTests
{
    [TestMethod]
    public void A_table_without_a_mode_is_mode_0_like_the_kernel()
    {
        DeviceTable table = DeviceTable.Parse(["/dev/sdb", "/dev/nvme0n1", "2", "writeback_threshold", "70"]);
        Assert.AreEqual(CacheMode.Volatile, table.Mode);
        Assert.AreEqual("/dev/sdb", table.BackingPath);
        Assert.AreEqual("/dev/nvme0n1", table.CachePath);
        Assert.AreEqual(70, table.Keys["writeback_threshold"]);
    }

    [TestMethod]
    public void Mode_1_takes_a_pmem_device_and_pairs_may_come_without_a_count()
    {
        DeviceTable table = DeviceTable.Parse(["1", "/b", "/c", "/dev/pmem0", "segment_size_order", "11", "pmem_backend", "block"]);
        Assert.AreEqual(CacheMode.Persistent, table.Mode);
        Assert.AreEqual("/dev/pmem0", table.PmemPath);
        Assert.AreEqual(11, table.CreateTunables().SegmentSizeOrder);
        Assert.AreEqual(PmemBackend.Block, table.PmemBackend);
        CollectionAssert.AreEqual(
            new[] { "1", "/b", "/c", "/dev/pmem0", "4", "segment_size_order", "11", "pmem_backend", "block" },
            table.ToWords().ToArray());
    }

    [TestMethod]
    [DataRow(new[] { "0", "/b" }, "missing <cache>")]
    [DataRow(new[] { "1", "/b", "/c" }, "missing <pmem>")]
    [DataRow(new[] { "2", "/b", "/c" }, "mode 2")]
    [DataRow(new[] { "0", "/b", "/c", "4", "writeback_threshold", "1" }, "says 4 optional arguments but 2 follow")]
    [DataRow(new[] { "0", "/b", "/c", "writeback_threshold" }, "has no value")]
    [DataRow(new[] { "0", "/b", "/c", "writeback_threshold", "101" }, "out of range 0..100")]
    [DataRow(new[] { "0", "/b", "/c", "segment_size_order", "12" }, "out of range 4..11")]
    [DataRow(new[] { "0", "/b", "/c", "nr_max_batched_writeback", "0" }, "out of range 1..32")]
    [DataRow(new[] { "0", "/b", "/c", "read_cache_threshold", "x" }, "not a whole number")]
    [DataRow(new[] { "0", "/b", "/c", "frobnicate", "1" }, "unknown key frobnicate")]
    [DataRow(new[] { "0", "/b", "/c", "sync_data_interval", "1", "sync_data_interval", "2" }, "given twice")]
    [DataRow(new[] { "0", "/same", "/same" }, "are the same path")]
    [DataRow(new[] { "1", "/b", "/c", "/c" }, "is also the backing or cache device")]
    [DataRow(new[] { "0", "/b", "/c", "pmem_backend", "dax" }, "pmem_backend is for mode 1")]
    public void A_bad_table_is_refused_with_the_word_and_the_reason(string[] words, string expected)
    {
        TableException error = Assert.ThrowsExactly<TableException>(() => DeviceTable.Parse(words));
        StringAssert.Contains(error.Message, expected);
    }

    [TestMethod]
    public void Only_online_tunables_change_on_a_live_device()
    {
        Tunables tunables = new();
        tunables.SetOnline("writeback_threshold", "50");
        Assert.AreEqual(50, tunables.WritebackThreshold);
        StringAssert.Contains(Assert.ThrowsExactly<TableException>(() => tunables.SetOnline("segment_size_order", "11")).Message, "only be set when the device is created");
        StringAssert.Contains(Assert.ThrowsExactly<TableException>(() => tunables.SetOnline("barrier_deadline_ms", "-1")).Message, "out of range");
    }
}
