using Writeboost.Cache.Core;
using Writeboost.Cache.Table;
using Writeboost.Devices;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Cache;

[TestClass]
public sealed class WritePathTests
{
    [TestMethod]
    [DataRow(5, 6, 0, DisplayName = "3-block segments, a 6-segment ring that wraps many times")]
    [DataRow(10, 3, 0, DisplayName = "the default 127-block segments")]
    [DataRow(6, 5, 3, DisplayName = "7-block segments with read caching")]
    public void Random_sub_block_writes_compose_exactly_across_buffer_cache_and_backing(int order, int segments, int readCacheThreshold)
    {
        Dictionary<string, long> keys = readCacheThreshold > 0
            ? new() { ["read_cache_threshold"] = readCacheThreshold, ["nr_read_cache_cells"] = 4 }
            : new();
        using CacheRig rig = new(256 * 1024, order, segments, keys);
        Random random = new(order * 100 + segments);
        int sectors = rig.Reference.Length / 512;
        for (int step = 0; step < 2500; step++)
        {
            int roll = random.Next(100);
            if (roll < 70)
            {
                rig.WriteRandomSectors(random, () => random.Next(10) == 0 ? WriteOptions.Fua : WriteOptions.None);
            }
            else if (roll < 90)
            {
                int length = random.Next(1, 17);
                int sector = random.Next(0, sectors - length + 1);
                rig.AssertReadsBack(sector * 512L, length * 512, $"step {step}: read of {length} sectors at {sector}");
            }
            else if (roll < 95)
            {
                rig.Device.Flush();
            }
            else if (roll < 97)
            {
                rig.Reopen();
                rig.AssertWholeDeviceReadsBack($"step {step}: after a clean close and reopen");
            }
            else if (roll < 99)
            {
                rig.Device.Flush();
                rig.Crash();
                rig.AssertWholeDeviceReadsBack($"step {step}: after a flush and an unclean close");
            }
            else
            {
                rig.Device.DropCaches();
                Assert.AreEqual(0, rig.Device.Status().NrDirtyCaches);
                CollectionAssert.AreEqual(rig.Reference, rig.Backing.Media.ToArray(), $"step {step}: after drop_caches the backing store holds everything");
            }
        }
        rig.AssertWholeDeviceReadsBack("at the end");
    }

    [TestMethod]
    public void A_partial_overwrite_of_a_dirty_cached_block_keeps_the_old_dirty_sectors()
    {
        using CacheRig rig = new(64 * 1024, 5, 4);
        rig.Write(0, Filled(4096, 0xAA));          // block 0, all dirty, in segment 1
        rig.Device.Flush();                        // segment 1 on the cache device
        rig.Write(512, Filled(1024, 0xBB));        // sectors 1-2 of block 0 again: merged with the old dirty sectors
        rig.Device.Flush();
        rig.AssertReadsBack(0, 4096, "merged block");
        rig.Crash();
        rig.AssertReadsBack(0, 4096, "merged block after recovery: the newer copy alone holds every dirty sector");
        rig.Device.DropCaches();
        CollectionAssert.AreEqual(rig.Reference[..4096], rig.Backing.Media[..4096].ToArray());
    }

    [TestMethod]
    public void A_partial_overwrite_reads_the_old_copy_without_the_lock_and_merges_a_newer_copy_written_meanwhile()
    {
        MemoryBlockDevice backing = new(64 * 1024);
        MemoryBlockDevice cache = new(2 << 20);
        WriteDuringOldCopyRead hooks = new();
        using WriteboostDevice device = WriteboostDevice.Open(backing, cache, new Tunables(new Dictionary<string, long> { ["segment_size_order"] = 5 }),
            new WriteboostOptions { FormatUnformatted = true, Schedule = hooks });
        hooks.Device = device;
        device.Write(0, Filled(4096, 0xAA));
        device.Flush();                                           // block 0 dirty on the cache device
        device.Write(512, Filled(1024, 0xBB));                    // its old sectors are read with the lock let go; meanwhile block 0 is rewritten whole, and flushed

        Assert.AreEqual(2, hooks.Reads, "the stale copy read with the lock let go was read again from the newer one");
        byte[] expected = Filled(4096, 0xCC);
        Array.Fill(expected, (byte)0xBB, 512, 1024);
        byte[] read = new byte[4096];
        device.Read(0, read);
        CollectionAssert.AreEqual(expected, read, "the newer whole-block write, then the partial write over it: none of the stale copy's sectors");
    }

    /// <summary>While a writer reads an old copy with the lock let go, another write rewrites the block whole and makes it durable.</summary>
    private sealed class WriteDuringOldCopyRead : ScheduleHooks
    {
        public WriteboostDevice? Device { get; set; }

        public int Reads { get; private set; }

        public override void At(SchedulePoint point)
        {
            if (point == SchedulePoint.WriterBeforeReadingOldCopy && Reads++ == 0)
            {
                Device!.Write(0, Filled(4096, 0xCC));
                Device.Flush();
            }
        }
    }

    [TestMethod]
    public void Writes_wait_for_writeback_instead_of_overwriting_dirty_data_when_the_ring_is_full()
    {
        using CacheRig rig = new(1 << 20, 5, 2); // two 3-block segments: 6 blocks of cache for 256 blocks of data
        for (int block = 0; block < 256; block++)
        {
            rig.Write(block * 4096L, Filled(4096, (byte)block));
        }
        rig.AssertWholeDeviceReadsBack("everything written through a tiny ring");
        WriteboostStatus status = rig.Device.Status();
        Assert.IsGreaterThanOrEqualTo(80ul, status.LastWritebackId, "the ring wrapped many times");
        Assert.IsLessThanOrEqualTo(6L, status.NrDirtyCaches);
    }

    [TestMethod]
    public void An_acknowledged_fua_write_survives_an_unclean_close_and_a_buffered_one_may_not()
    {
        using CacheRig rig = new(64 * 1024, 10, 2);
        rig.Write(8192, Filled(4096, 0x11), WriteOptions.Fua);
        rig.Device.Write(8192 + 1024, Filled(512, 0x22)); // not in the reference: never made durable
        rig.Crash();
        rig.AssertReadsBack(8192, 4096, "the FUA write is durable; the later buffered write was lost with the RAM buffer");
        WriteboostStatus status = rig.Device.Status();
        Assert.AreEqual(1, status.Recovery.SegmentsReplayed);
        Assert.AreEqual(1, status.NrDirtyCaches);
    }

    [TestMethod]
    public void Each_fua_write_in_mode_0_costs_a_partial_log_and_a_cache_flush()
    {
        using CacheRig rig = new(64 * 1024, 10, 8); // room for every log: no writeback, no superblock record
        for (int i = 0; i < 5; i++)
        {
            rig.Write(i * 4096L, Filled(4096, (byte)i), WriteOptions.Fua);
        }
        WriteboostStatus status = rig.Device.Status();
        Assert.AreEqual(5, status.PartialSegments);
        Assert.AreEqual(5, status.NrPartialFlushed);
        Assert.AreEqual(5, status.CacheFlushes);
        Assert.AreEqual(5 * 2 * 4096, status.CacheBytesWritten, $"each partial log is its metadata block + one data block ({status.CacheBytesWritten})");
    }

    [TestMethod]
    public void A_fua_write_waits_up_to_the_barrier_deadline_and_a_buffer_filled_meanwhile_needs_no_partial_log()
    {
        using CacheRig rig = new(64 * 1024, 5, 4, new Dictionary<string, long> { ["barrier_deadline_ms"] = 10_000 });
        Task fua = Task.Run(() => rig.Device.Write(0, Filled(4096, 1), WriteOptions.Fua));
        Thread.Sleep(200);
        Assert.IsFalse(fua.IsCompleted, "the FUA write waits for the buffer to fill");
        rig.Device.Write(4096, Filled(4096, 2));
        rig.Device.Write(8192, Filled(4096, 3)); // the 3-block buffer is full: sealed, written, flushed
        Assert.IsTrue(fua.Wait(5000), "a full log satisfies the waiting FUA long before the deadline");
        WriteboostStatus status = rig.Device.Status();
        Assert.AreEqual(0, status.PartialSegments);
        Assert.AreEqual(1, status.FullSegments);
    }

    [TestMethod]
    public void Writes_beyond_the_device_are_refused()
    {
        using CacheRig rig = new(64 * 1024, 5, 4);
        Assert.AreEqual(64 * 1024, rig.Device.SizeBytes);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => rig.Device.Write(64 * 1024 - 512, new byte[1024]));
        Assert.ThrowsExactly<ArgumentException>(() => rig.Device.Write(100, new byte[512]));
    }

    [TestMethod]
    public void Write_around_mode_writes_the_backing_store_and_caches_nothing_dirty()
    {
        using CacheRig rig = new(64 * 1024, 5, 4, new Dictionary<string, long> { ["write_around_mode"] = 1 });
        rig.Write(4096, Filled(4096, 0x5A));
        CollectionAssert.AreEqual(Filled(4096, 0x5A), rig.Backing.Media.Slice(4096, 4096).ToArray());
        Assert.AreEqual(0, rig.Device.Status().NrDirtyCaches);
        rig.AssertReadsBack(0, 16384, "reads in write-around mode");
    }

    [TestMethod]
    public void Switching_a_dirty_cache_to_write_around_writes_it_back_first()
    {
        using CacheRig rig = new(64 * 1024, 5, 4);
        rig.Write(0, Filled(8192, 0x42), WriteOptions.Fua);
        rig.Device.Dispose();
        using WriteboostDevice around = WriteboostDevice.Open(rig.Backing, rig.Cache, new Tunables(new Dictionary<string, long> { ["segment_size_order"] = 5, ["write_around_mode"] = 1 }));
        CollectionAssert.AreEqual(Filled(8192, 0x42), rig.Backing.Media[..8192].ToArray());
        around.Dispose();
    }

    internal static byte[] Filled(int length, byte value) => Enumerable.Repeat(value, length).ToArray();
}
