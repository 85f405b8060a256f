using Writeboost.Cache.Core;
using Writeboost.Cache.Table;
using Writeboost.Devices;
using Writeboost.Tests.Support;
using static Writeboost.Tests.Cache.WritePathTests;

namespace Writeboost.Tests.Cache;

[TestClass]
public sealed class StatusAndReadCacheTests
{
    private static int Stat(bool write, bool hit, bool onBuffer, bool fullsize) => (write ? 8 : 0) | (hit ? 4 : 0) | (onBuffer ? 2 : 0) | (fullsize ? 1 : 0);

    [TestMethod]
    public void The_status_line_has_the_dmsetup_fields_in_order()
    {
        using CacheRig rig = new(64 * 1024, 5, 4);
        rig.Write(0, Filled(4096, 1));         // write miss, fullsize
        rig.Write(512, Filled(512, 2));        // write hit on the buffer, partial
        string[] fields = rig.Device.Status().ToStatusLine().Split(' ');
        Assert.AreEqual(7 + 16 + 1 + 1 + 12, fields.Length);
        Assert.AreEqual("1", fields[0], "cursor: one block used");
        Assert.AreEqual("12", fields[1], "nr_caches = 4 segments x 3 blocks");
        Assert.AreEqual("4", fields[2], "nr_segments");
        Assert.AreEqual("1", fields[3], "current_id");
        Assert.AreEqual("1", fields[6], "nr_dirty_caches");
        Assert.AreEqual("1", fields[7 + Stat(write: true, hit: false, onBuffer: false, fullsize: true)]);
        Assert.AreEqual("1", fields[7 + Stat(write: true, hit: true, onBuffer: true, fullsize: false)]);
        Assert.AreEqual("12", fields[24], "tunable pairs follow");
        Assert.AreEqual("writeback_threshold", fields[25]);
    }

    [TestMethod]
    public void Messages_clear_stats_drop_caches_and_set_online_tunables()
    {
        using CacheRig rig = new(64 * 1024, 5, 4);
        rig.Write(0, Filled(8192, 7), WriteOptions.Fua);
        rig.Device.Message(["clear_stat"]);
        Assert.IsTrue(rig.Device.Status().Stats.All(s => s == 0));
        Assert.AreEqual(0, rig.Device.Status().NrPartialFlushed);
        rig.Device.Message(["writeback_threshold", "40"]);
        Assert.AreEqual(40, rig.Device.Status().Tunables["writeback_threshold"]);
        rig.Device.Message(["drop_caches"]);
        Assert.AreEqual(0, rig.Device.Status().NrDirtyCaches);
        CollectionAssert.AreEqual(rig.Reference, rig.Backing.Media.ToArray());
        StringAssert.Contains(Assert.ThrowsExactly<TableException>(() => rig.Device.Message(["frob"])).Message, "unknown message");
    }

    [TestMethod]
    public void Full_block_read_misses_are_staged_as_clean_blocks_and_hit_afterwards()
    {
        using CacheRig rig = new(64 * 1024, 5, 4, new Dictionary<string, long> { ["read_cache_threshold"] = 2, ["nr_read_cache_cells"] = 2 });
        rig.Backing.Media.Slice(3 * 4096, 4096).Fill(0x33);
        rig.Backing.Media.Slice(9 * 4096, 4096).Fill(0x99);
        rig.Backing.Media.CopyTo(rig.Reference);
        rig.AssertReadsBack(3 * 4096, 4096, "first read of block 3 (miss)");
        rig.AssertReadsBack(9 * 4096, 4096, "first read of block 9 (miss): the two cells are staged");
        rig.Device.Message(["clear_stat"]);
        rig.AssertReadsBack(3 * 4096, 4096, "block 3 from the cache");
        rig.AssertReadsBack(9 * 4096, 4096, "block 9 from the cache");
        WriteboostStatus status = rig.Device.Status();
        Assert.AreEqual(2, status.Stats[Stat(write: false, hit: true, onBuffer: true, fullsize: true)], "both read hits, on the open buffer");
        Assert.AreEqual(0, status.NrDirtyCaches, "read-cached blocks are clean");
    }

    [TestMethod]
    public void A_sequential_run_longer_than_the_threshold_is_not_cached()
    {
        using CacheRig rig = new(64 * 1024, 5, 4, new Dictionary<string, long> { ["read_cache_threshold"] = 1, ["nr_read_cache_cells"] = 3 });
        byte[] block = new byte[4096];
        for (int b = 4; b < 7; b++)
        {
            rig.Device.Read(b * 4096L, block);
        }
        rig.Device.Message(["clear_stat"]);
        rig.Device.Read(4 * 4096L, block);
        Assert.AreEqual(1, rig.Device.Status().Stats[Stat(write: false, hit: false, onBuffer: false, fullsize: true)], "still a miss");
    }

    [TestMethod]
    public void A_write_racing_a_read_miss_cancels_its_staging()
    {
        using CacheRig rig = new(64 * 1024, 5, 4, new Dictionary<string, long> { ["read_cache_threshold"] = 4, ["nr_read_cache_cells"] = 2 });
        byte[] block = new byte[4096];
        rig.Device.Read(2 * 4096L, block);      // cell for block 2 reserved and filled
        rig.Write(2 * 4096L, Filled(4096, 0x77)); // a write to block 2 cancels its cell
        rig.Device.Read(6 * 4096L, block);      // second cell: staging runs now
        rig.AssertWholeDeviceReadsBack("the stale staged copy of block 2 must not shadow the write");
        rig.Device.DropCaches();
        rig.Reopen();
        rig.AssertWholeDeviceReadsBack("after writeback and reopen");
    }

    [TestMethod]
    public void A_read_takes_from_the_backing_store_only_the_blocks_the_cache_does_not_hold()
    {
        using MemoryBlockDevice backingMedia = new(64 * 1024);
        ReadLoggingBlockDevice backing = new(backingMedia);
        using MemoryBlockDevice cache = new((1 << 20) + 4 * 16 * 1024);
        Tunables tunables = new(new Dictionary<string, long> { ["segment_size_order"] = 5, ["read_cache_threshold"] = 0 });
        using WriteboostDevice device = WriteboostDevice.Open(backing, cache, tunables);
        // Blocks 0, 1 on the cache device; 4 in the RAM buffer; 2, 3 and 5 only on the backing store; block 6 half written.
        device.Write(0, Filled(8192, 0x11), WriteOptions.Fua);
        device.Write(4 * 4096, Filled(4096, 0x44));
        device.Write(6 * 4096, Filled(2048, 0x66));
        backing.ClearLog();
        byte[] read = new byte[7 * 4096];
        device.Read(0, read);
        CollectionAssert.AreEqual(new[] { (2 * 4096L, 2 * 4096), (5 * 4096L, 2 * 4096) }, backing.Reads.ToArray(),
            "blocks 2-3 in one read, 5-6 in another (6 for its unwritten half); nothing of blocks 0, 1 and 4");
        CollectionAssert.AreEqual(Filled(8192, 0x11), read[..8192]);
        CollectionAssert.AreEqual(new byte[8192], read[8192..16384]);
        CollectionAssert.AreEqual(Filled(4096, 0x44), read[16384..20480]);
        CollectionAssert.AreEqual(new byte[4096], read[20480..24576]);
        CollectionAssert.AreEqual(Filled(2048, 0x66), read[24576..26624]);
        CollectionAssert.AreEqual(new byte[2048], read[26624..]);
    }

    [TestMethod]
    public void A_cache_device_write_error_fails_the_fua_write_instead_of_acknowledging_it()
    {
        using MemoryBlockDevice backing = new(64 * 1024);
        using MemoryBlockDevice cacheMedia = new((1 << 20) + 4 * 16 * 1024);
        FailingBlockDevice cache = new(cacheMedia);
        using WriteboostDevice device = WriteboostDevice.Open(backing, cache, new Tunables(new Dictionary<string, long> { ["segment_size_order"] = 5 }));
        cache.FailWrites = true;
        IOException error = Assert.ThrowsExactly<IOException>(() => device.Write(0, Filled(4096, 1), WriteOptions.Fua));
        StringAssert.Contains(error.Message, "injected write error");
        Assert.IsNotNull(device.Status().Failure);
        Assert.ThrowsExactly<IOException>(() => device.Write(4096, Filled(4096, 1)));
    }

    [TestMethod]
    public void A_failed_backing_flush_after_writeback_fails_the_device_and_keeps_the_data_dirty()
    {
        using MemoryBlockDevice backingMedia = new(64 * 1024);
        using MemoryBlockDevice cache = new((1 << 20) + 4 * 16 * 1024);
        FailingBlockDevice backing = new(backingMedia);
        Tunables tunables = new(new Dictionary<string, long> { ["segment_size_order"] = 5 });
        WriteboostDevice device = WriteboostDevice.Open(backing, cache, tunables);
        device.Write(0, Filled(4096, 0x3C), WriteOptions.Fua);
        backing.FailFlushes = true;
        IOException error = Assert.ThrowsExactly<IOException>(device.DropCaches);
        StringAssert.Contains(error.Message, "flush of the backing store failed");
        StringAssert.Contains(device.Status().Failure, "injected flush error");
        byte[] back = new byte[4096];
        device.Read(0, back);
        CollectionAssert.AreEqual(Filled(4096, 0x3C), back, "a failed device still reads what it acknowledged");
        device.Abandon();

        using WriteboostDevice recovered = WriteboostDevice.Open(backingMedia, cache, tunables);
        Assert.AreEqual(1, recovered.Status().NrDirtyCaches, "never marked clean: the write-back was not durable");
        recovered.Read(0, back);
        CollectionAssert.AreEqual(Filled(4096, 0x3C), back);
    }
}
