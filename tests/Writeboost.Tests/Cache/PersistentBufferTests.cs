using Writeboost.Cache.Core;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Table;
using Writeboost.Devices;
using Writeboost.Pmem;
using Writeboost.Tests.Support;
using static Writeboost.Tests.Cache.WritePathTests;
using PmemApi = Writeboost.Pmem.Pmem;

namespace Writeboost.Tests.Cache;

[TestClass]
public sealed class PersistentBufferTests
{
    private const long PmemBytes = 8 << 20;

    /// <summary>A pmem region of either backend: block (RMW over memory) or dax (a mapped /dev/shm file).</summary>
    private static PmemRegion NewPmem(string backend, TempDirectory dir)
    {
        if (backend == "block")
        {
            return PmemApi.Alloc(new MemoryBlockDevice(PmemBytes, name: "pmem"), 0, PmemBytes, ownsDevice: true);
        }
        string path = dir.File("pmem");
        FileBlockDevice.CreateFile(path, PmemBytes);
        return PmemApi.Alloc(path, 0, PmemBytes, PmemBackend.Dax);
    }

    [TestMethod]
    [DataRow("block")]
    [DataRow("dax")]
    public void An_acknowledged_fua_write_survives_an_unclean_close_without_a_partial_log(string backend)
    {
        using TempDirectory dir = new("/dev/shm");
        using CacheRig rig = new(256 * 1024, 10, 4, pmem: NewPmem(backend, dir));
        Assert.AreEqual(CacheMode.Persistent, rig.Device.Mode);
        for (int i = 0; i < 20; i++)
        {
            rig.Write(i * 4096L + 1024, Filled(2048, (byte)(i + 1)), WriteOptions.Fua);
        }
        WriteboostStatus before = rig.Device.Status();
        Assert.AreEqual(0, before.PartialSegments, "mode 1 acknowledges FUA in pmem: no partial log");
        Assert.AreEqual(0, before.CacheFlushes, "and no cache-device flush on the barrier path");
        rig.Crash();
        RecoveryReport recovery = rig.Device.Recovery;
        Assert.AreEqual(1, recovery.PmemSegmentsRebuilt, "the open buffer came back from pmem");
        Assert.AreEqual(20, rig.Device.Status().NrDirtyCaches);
        rig.AssertWholeDeviceReadsBack("after an unclean close in mode 1");
    }

    [TestMethod]
    [DataRow("block")]
    [DataRow("dax")]
    public void A_reformatted_cache_forgets_the_pmem_records_of_the_one_before(string backend)
    {
        using TempDirectory dir = new("/dev/shm");
        using CacheRig rig = new(256 * 1024, 5, 12, pmem: NewPmem(backend, dir));
        for (int i = 0; i < 200; i++)
        {
            rig.Write(i % 60 * 4096L, Filled(4096, (byte)(i + 1)), WriteOptions.Fua);
        }
        rig.Device.Abandon(); // the pmem buffers hold records of segments the new cache will not have

        using (WriteboostDevice.Open(rig.Backing, rig.Cache, new Tunables(rig.Keys), new WriteboostOptions { Reformat = true }, rig.Pmem))
        {
        }
        using WriteboostDevice reopened = WriteboostDevice.Open(rig.Backing, rig.Cache, new Tunables(rig.Keys), pmem: rig.Pmem);

        Assert.AreEqual(0, reopened.Status().NrDirtyCaches, "nothing of the old cache comes back");
        Assert.AreEqual(0, reopened.Recovery.PmemSegmentsRebuilt);
    }

    [TestMethod]
    [DataRow("block")]
    [DataRow("dax")]
    public void Writers_persisting_in_parallel_lose_no_acknowledged_write_at_an_unclean_close(string backend)
    {
        // Each writer owns the blocks whose number is its index modulo the writer count, so the reference is
        // exact; the pool wraps many times, so buffers are rebound while other writers still place into them.
        using TempDirectory dir = new("/dev/shm");
        using CacheRig rig = new(256 * 1024, 5, 12, pmem: NewPmem(backend, dir));
        const int Writers = 4;
        int blocks = rig.Reference.Length / 4096;
        for (int round = 0; round < 3; round++)
        {
            Parallel.For(0, Writers, new ParallelOptions { MaxDegreeOfParallelism = Writers }, writer =>
            {
                Random random = new(round * Writers + writer);
                for (int op = 0; op < 400; op++)
                {
                    int block = random.Next(blocks / Writers) * Writers + writer;
                    byte[] data = new byte[4096];
                    random.NextBytes(data);
                    rig.Write(block * 4096L, data, WriteOptions.Fua);
                }
            });
            rig.Crash();
            rig.AssertWholeDeviceReadsBack($"round {round}: after an unclean close");
        }
    }

    [TestMethod]
    public void Reads_racing_mode_1_writers_see_each_sector_old_or_new_never_another_blocks_data()
    {
        // Writers stamp every sector they write with its own number and a version; readers check that each sector
        // they read is a stamp of that very sector (or zeros: never written). A mode-1 slot is reserved under the
        // lock and its data copied in after the writer leaves it, so a read of the block meanwhile — or a partial
        // overwrite merging it — must wait for the copy: until then the slot holds what an earlier segment of its
        // buffer put there, another block's data. Small segments over few blocks, so buffers are rebound all the time.
        using TempDirectory dir = new("/dev/shm");
        using CacheRig rig = new(32 * 4096, 6, 64, pmem: NewPmem("dax", dir));
        int writersLeft = 2;
        string? failure = null;
        void Writer(int seed)
        {
            Random random = new(seed);
            for (int op = 1; op <= 20_000 && failure is null; op++)
            {
                int count = random.Next(3) == 0 ? random.Next(1, 4) : 8;
                int first = count == 8 ? random.Next(32) * 8 : random.Next(32) * 8 + random.Next(8 - count + 1);
                byte[] data = new byte[count * 512];
                for (int s = 0; s < count; s++)
                {
                    System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(data.AsSpan(s * 512, 512)).Fill(((long)(first + s) << 32) | ((long)op << 1) | (uint)seed);
                }
                rig.Device.Write(first * 512L, data, random.Next(4) == 0 ? WriteOptions.Fua : WriteOptions.None);
            }
            Interlocked.Decrement(ref writersLeft);
        }
        void Reader(int seed)
        {
            Random random = new(seed);
            byte[] block = new byte[4096];
            while (Volatile.Read(ref writersLeft) > 0 && failure is null)
            {
                int b = random.Next(32);
                rig.Device.Read(b * 4096L, block);
                for (int s = 0; s < 8; s++)
                {
                    ReadOnlySpan<long> words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(block.AsSpan(s * 512, 512));
                    long stamp = words[0];
                    bool whole = !words.ContainsAnyExcept(stamp);
                    if (!whole || (stamp != 0 && stamp >> 32 != b * 8 + s))
                    {
                        failure ??= $"block {b} sector {s} read {(whole ? $"the stamp of sector {stamp >> 32}" : "a mixture")}";
                    }
                }
            }
        }
        void Run(Action<int> body, int seed)
        {
            try
            {
                body(seed);
            }
            catch (Exception error)
            {
                failure ??= error.ToString();
                Interlocked.Exchange(ref writersLeft, 0);
            }
        }
        Thread[] threads = [new(() => Run(Writer, 1)), new(() => Run(Writer, 2)), new(() => Run(Reader, 3)), new(() => Run(Reader, 4))];
        foreach (Thread thread in threads)
        {
            thread.Start();
        }
        foreach (Thread thread in threads)
        {
            thread.Join();
        }
        Assert.IsNull(failure, failure);
    }

    [TestMethod]
    public void Random_writes_in_mode_1_on_dax_survive_every_unclean_close()
    {
        using TempDirectory dir = new("/dev/shm");
        using CacheRig rig = new(256 * 1024, 5, 6, pmem: NewPmem("dax", dir));
        Random random = new(11);
        int sectors = rig.Reference.Length / 512;
        for (int step = 0; step < 1500; step++)
        {
            int roll = random.Next(100);
            if (roll < 75)
            {
                rig.WriteRandomSectors(random); // on dax every write is persisted before it is acknowledged, FUA or not
            }
            else if (roll < 95)
            {
                int length = random.Next(1, 17);
                int sector = random.Next(0, sectors - length + 1);
                rig.AssertReadsBack(sector * 512L, length * 512, $"step {step}");
            }
            else
            {
                rig.Crash();
                rig.AssertWholeDeviceReadsBack($"step {step}: after an unclean close");
            }
        }
    }

    [TestMethod]
    public void A_torn_pmem_record_is_discarded_and_the_block_keeps_its_older_value()
    {
        using TempDirectory dir = new("/dev/shm");
        PmemRegion pmem = NewPmem("dax", dir);
        using CacheRig rig = new(64 * 1024, 10, 4, pmem: pmem);
        rig.Write(0, Filled(4096, 0x11), WriteOptions.Fua);   // slot 0
        byte[] older = rig.Reference[..4096];
        rig.Device.Write(0, Filled(4096, 0x22), WriteOptions.Fua); // slot 1 (copy-on-write), torn below
        rig.Device.Abandon();
        PmemLayout layout = new(10, 8, 127);
        pmem.Write(layout.DataOffset(0, 1) + 100, [0xFF]);     // as if the crash left this line behind

        using WriteboostDevice recovered = rig.Open();
        Assert.AreEqual(1, recovered.Recovery.PmemTornRecords);
        byte[] back = new byte[4096];
        recovered.Read(0, back);
        CollectionAssert.AreEqual(older, back);
        recovered.Abandon();
    }

    [TestMethod]
    public void Rewriting_a_block_in_the_open_buffer_takes_a_new_slot_in_mode_1()
    {
        using TempDirectory dir = new("/dev/shm");
        using CacheRig rig = new(64 * 1024, 10, 4, pmem: NewPmem("block", dir));
        rig.Write(0, Filled(4096, 1));
        rig.Write(512, Filled(512, 2));
        rig.Write(1024, Filled(512, 3), WriteOptions.Fua);
        WriteboostStatus status = rig.Device.Status();
        Assert.AreEqual(3, status.Cursor, "three slots: the committed ones are never rewritten in place");
        Assert.AreEqual(1, status.NrDirtyCaches);
        rig.Crash();
        rig.AssertReadsBack(0, 4096, "the newest copy holds every dirty sector");
        rig.Reopen();
        rig.AssertReadsBack(0, 4096, "and after its segment went to the cache device");
    }

    [TestMethod]
    public void A_pmem_region_of_another_cache_is_refused_not_replayed()
    {
        using TempDirectory dir = new("/dev/shm");
        PmemRegion pmem = NewPmem("block", dir);
        using CacheRig first = new(64 * 1024, 10, 4, pmem: pmem);
        first.Write(0, Filled(4096, 9), WriteOptions.Fua);
        first.Device.Abandon();
        using MemoryBlockDevice otherBacking = new(64 * 1024);
        using MemoryBlockDevice otherCache = new((1 << 20) + 4 * (512 << 10));
        InvalidDataException error = Assert.ThrowsExactly<InvalidDataException>(() =>
            WriteboostDevice.Open(otherBacking, otherCache, new Tunables(), pmem: pmem));
        StringAssert.Contains(error.Message, "belongs to another cache");
        // Nothing was written to the other cache's pmem: the first cache still recovers its write.
        using WriteboostDevice again = first.Open();
        byte[] back = new byte[4096];
        again.Read(0, back);
        CollectionAssert.AreEqual(Filled(4096, 9), back);
        again.Abandon();
    }

    [TestMethod]
    public void A_pmem_region_too_small_for_the_buffers_is_refused()
    {
        using MemoryBlockDevice backing = new(64 * 1024);
        using MemoryBlockDevice cache = new((1 << 20) + 4 * (512 << 10));
        using BlockPmemRegion pmem = PmemApi.Alloc(new MemoryBlockDevice(1 << 20), 0, 1 << 20, ownsDevice: true);
        TableException error = Assert.ThrowsExactly<TableException>(() => WriteboostDevice.Open(backing, cache, new Tunables(), pmem: pmem));
        StringAssert.Contains(error.Message, "4 buffers of 127 blocks need 2117632 bytes");
    }

    [TestMethod]
    public void Mode_0_refuses_a_cache_whose_pmem_buffer_may_hold_data_until_a_clean_mode_1_close()
    {
        using TempDirectory dir = new("/dev/shm");
        using CacheRig rig = new(64 * 1024, 10, 4, pmem: NewPmem("block", dir));
        rig.Write(4096, Filled(4096, 5), WriteOptions.Fua);
        rig.Device.Abandon();
        TableException refused = Assert.ThrowsExactly<TableException>(() => WriteboostDevice.Open(rig.Backing, rig.Cache, new Tunables()));
        StringAssert.Contains(refused.Message, "last used in mode 1");
        rig.Reopen();  // mode 1 recovers the buffer; the clean close writes it to the cache and clears the flag
        rig.Device.Dispose();
        using WriteboostDevice mode0 = WriteboostDevice.Open(rig.Backing, rig.Cache, new Tunables());
        byte[] back = new byte[4096];
        mode0.Read(4096, back);
        CollectionAssert.AreEqual(Filled(4096, 5), back);
    }

    [TestMethod]
    [DataRow("block")]
    [DataRow("dax")]
    public void A_block_staged_by_the_read_cache_leaves_a_hole_record_that_a_later_fua_vouches_for(string backend)
    {
        // Order 5: 3 slots a segment; a pool of 8 buffers. 48 FUA writes fill segments 1..16, so every pmem slot holds
        // a record of an older segment when segment 17 opens in buffer 0.
        using TempDirectory dir = new("/dev/shm");
        using CacheRig rig = new(256 * 1024, 5, 64, new Dictionary<string, long> { ["read_cache_threshold"] = 1, ["nr_read_cache_cells"] = 1 }, pmem: NewPmem(backend, dir));
        for (int i = 0; i < 48; i++)
        {
            rig.Write(i * 4096L, Filled(4096, (byte)(i + 1)), WriteOptions.Fua);
        }
        rig.Backing.Media.Slice(60 * 4096, 4096).Fill(0x60);
        rig.Reference.AsSpan(60 * 4096, 4096).Fill(0x60);
        rig.AssertReadsBack(60 * 4096, 4096, "a read miss of block 60: staged into slot 0 of segment 17, clean");
        rig.Write(61 * 4096L, Filled(4096, 0x61), WriteOptions.Fua); // slot 1: its record says slot 0 is durable

        PmemLayout layout = new(5, 8, 3);
        byte[] record = new byte[PmemLayout.RecordBytes];
        rig.Pmem!.Read(layout.RecordOffset(0, 0), record);
        PmemRecord? hole = PmemRecord.ReadFields(record);
        Assert.IsNotNull(hole, "slot 0's record is whole");
        Assert.AreEqual(17ul, hole.Value.SegmentId, "slot 0 of buffer 0 now belongs to segment 17");
        Assert.AreEqual(0, hole.Value.DirtyBits, "a hole: a clean block, nothing to recover");

        rig.Crash(); // a slot vouched for with an older segment's record would be a lost write of an unknown block: refused
        Assert.AreEqual(0, rig.Device.Recovery.PoisonedBlocks);
        rig.AssertWholeDeviceReadsBack("after an unclean close: the FUA write is back, the staged block reads as the backing store");
    }

    [TestMethod]
    [DataRow("block")]
    [DataRow("dax")]
    public void Staging_several_blocks_across_a_segment_boundary_does_not_wait_for_itself(string backend)
    {
        // One pmem buffer, 3 slots a segment, cells staged two at a time: the first staged block fills the open
        // segment, the second needs the next one, in the same buffer. A pin the stager still held on that buffer
        // (its first hole record) would make the acquire wait for the stager itself: every thread of the device stuck.
        using TempDirectory dir = new("/dev/shm");
        using MemoryBlockDevice backing = new(64 * 1024, name: "backing");
        using MemoryBlockDevice cache = new((1 << 20) + 8 * 16 * 1024, name: "cache");
        using PmemRegion pmem = NewPmem(backend, dir);
        backing.Media.Slice(10 * 4096, 2 * 4096).Fill(0x5A);
        Tunables tunables = new(new Dictionary<string, long> { ["segment_size_order"] = 5, ["read_cache_threshold"] = 127, ["nr_read_cache_cells"] = 2 });
        using WriteboostDevice device = WriteboostDevice.Open(backing, cache, tunables, new WriteboostOptions { BufferPoolSize = 1 }, pmem);
        device.Write(0, Filled(4096, 1));
        device.Write(4096, Filled(4096, 2)); // two of the open segment's three slots
        Task reads = Task.Run(() =>
        {
            byte[] block = new byte[4096];
            device.Read(10 * 4096L, block); // a cell, reserved
            device.Read(11 * 4096L, block); // the second: both are staged now, across the segment boundary
        });
        Assert.IsTrue(reads.Wait(TimeSpan.FromSeconds(30)), "the staging reader finished (it did not wait on its own pin)");
        byte[] back = new byte[4096];
        device.Read(11 * 4096L, back);
        Assert.IsTrue(back.All(b => b == 0x5A));
        device.Write(2 * 4096L, Filled(4096, 3), WriteOptions.Fua); // and the device goes on
    }
}
