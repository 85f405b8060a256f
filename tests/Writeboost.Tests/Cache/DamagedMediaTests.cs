using System.Buffers.Binary;
using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Inspect;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Recovery;
using Writeboost.Cache.Table;
using Writeboost.Devices;
using Writeboost.Pmem;
using Writeboost.Tests.Support;
using static Writeboost.Tests.Cache.WritePathTests;
using PmemApi = Writeboost.Pmem.Pmem;

namespace Writeboost.Tests.Cache;

/// <summary>
/// Damaged media (crash-model.md, "Damaged media"): recovery goes past a damaged segment, only the damaged
/// blocks are lost, a lost block reads as an error until it is rewritten or its loss acknowledged, a crash's
/// torn tail is never taken for damage, and looking never writes.
/// </summary>
[TestClass]
public sealed class DamagedMediaTests
{
    private const int Order = 5;                 // 16 KiB segments, 3 blocks each
    private const long SegmentBytes = 16 * 1024;
    private const int Segments = 8;

    private static int SlotStart(ulong id) => (1 << 20) + (int)((id - 1) % Segments * SegmentBytes);

    private static int DataByte(ulong id, int block, int offset = 100) => SlotStart(id) + 4096 * (1 + block) + offset;

    /// <summary>Segments 1..n, one FUA write of a whole block each (block i holds value i + 1), then a clean close.</summary>
    private static CacheRig DurableSegments(int n)
    {
        CacheRig rig = new(128 * 1024, Order, Segments);
        for (int i = 0; i < n; i++)
        {
            rig.Write(i * 4096L, Filled(4096, (byte)(i + 1)), WriteOptions.Fua);
        }
        rig.Device.Dispose();
        return rig;
    }

    private static byte[] ReadBlock(WriteboostDevice device, long block)
    {
        byte[] back = new byte[4096];
        device.Read(block * 4096, back);
        return back;
    }

    [TestMethod]
    public void A_damaged_block_of_a_durable_segment_is_poisoned_and_every_segment_after_it_is_replayed()
    {
        using CacheRig rig = DurableSegments(5);
        rig.Cache.Media[DataByte(1, 0)] ^= 0x10; // bit rot in segment 1's only block

        using WriteboostDevice device = rig.Open();

        PoisonedBlockException error = Assert.ThrowsExactly<PoisonedBlockException>(() => ReadBlock(device, 0));
        StringAssert.Contains(error.Message, "block 0");
        StringAssert.Contains(error.Message, "segment 1 (slot 0)");
        for (int i = 1; i < 5; i++)
        {
            CollectionAssert.AreEqual(Filled(4096, (byte)(i + 1)), ReadBlock(device, i), $"segment {i + 1} replayed past the damage");
        }
        SegmentRecovery damaged = device.Recovery.Segments.Single();
        Assert.AreEqual((1ul, 0L, "damage", 0, 1), (damaged.Id, damaged.Slot, damaged.Kind, damaged.BlocksReplayed, damaged.BlocksPoisoned));
        WriteboostStatus status = device.Status();
        Assert.IsTrue(status.Degraded);
        Assert.AreEqual(1, status.PoisonedBlocks);
        Assert.AreEqual(0L, status.Poisoned.Single().Block);
    }

    [TestMethod]
    public void Each_block_of_a_damaged_segment_is_judged_by_its_own_entry_checksum()
    {
        using CacheRig rig = new(128 * 1024, Order, Segments);
        for (int i = 0; i < 3; i++)
        {
            rig.Write(i * 4096L, Filled(4096, (byte)(i + 1))); // one full segment of three blocks
        }
        rig.Write(3 * 4096L, Filled(4096, 4), WriteOptions.Fua); // segment 2, written after segment 1 was durable: it vouches for it
        rig.Device.Dispose();
        rig.Cache.Media[DataByte(1, 1)] ^= 0x01;

        using WriteboostDevice device = rig.Open();

        CollectionAssert.AreEqual(Filled(4096, 1), ReadBlock(device, 0));
        Assert.ThrowsExactly<PoisonedBlockException>(() => ReadBlock(device, 1));
        CollectionAssert.AreEqual(Filled(4096, 3), ReadBlock(device, 2));
        CollectionAssert.AreEqual(Filled(4096, 4), ReadBlock(device, 3));
        Assert.AreEqual((2, 1), (device.Recovery.Segments.Single().BlocksReplayed, device.Recovery.Segments.Single().BlocksPoisoned));
    }

    [TestMethod]
    public void A_partial_write_poisons_only_the_sectors_its_lost_copy_held()
    {
        using CacheRig rig = new(128 * 1024, Order, Segments);
        byte[] backingBlock = Filled(4096, 0x77);
        rig.Backing.Write(0, backingBlock);                  // what the backing store holds for block 0
        rig.Write(1024, Filled(1024, 9), WriteOptions.Fua);  // sectors 2 and 3 of block 0, dirty in segment 1
        rig.Write(8192, Filled(4096, 2), WriteOptions.Fua);  // segment 2 vouches for segment 1
        rig.Device.Dispose();
        rig.Cache.Media[DataByte(1, 0, 1500)] ^= 0x01;

        using WriteboostDevice device = rig.Open();

        byte[] sector = new byte[512];
        device.Read(0, sector);
        CollectionAssert.AreEqual(Filled(512, 0x77), sector, "sector 0 was never dirty: the backing store has it");
        Assert.ThrowsExactly<PoisonedBlockException>(() => device.Read(1024, sector));
        Assert.ThrowsExactly<PoisonedBlockException>(() => device.Read(1536, sector));
        device.Read(2048, sector);
        CollectionAssert.AreEqual(Filled(512, 0x77), sector);
        Assert.AreEqual((byte)0b0000_1100, device.Status().Poisoned.Single().Sectors);
    }

    [TestMethod]
    public void Order_11_has_no_entry_checksums_so_every_block_of_a_damaged_durable_segment_is_poisoned()
    {
        using CacheRig rig = new(4 << 20, 11, 3);
        for (int i = 0; i < 3; i++)
        {
            rig.Write(i * 4096L, Filled(4096, (byte)(i + 1)));
        }
        rig.Device.Flush();                                    // segment 1: three blocks, durable
        rig.Write(10 * 4096L, Filled(4096, 9), WriteOptions.Fua); // segment 2 vouches for it
        rig.Device.Dispose();
        rig.Cache.Media[(1 << 20) + 4096 + 4096 + 7] ^= 0x80;  // one byte of segment 1's second block

        using WriteboostDevice device = rig.Open();

        for (int i = 0; i < 3; i++)
        {
            Assert.ThrowsExactly<PoisonedBlockException>(() => ReadBlock(device, i), $"block {i}: order 11 loses the whole segment");
        }
        CollectionAssert.AreEqual(Filled(4096, 9), ReadBlock(device, 10));
        StringAssert.Contains(device.Recovery.Segments.Single().Detail, "no per-block checksums");
    }

    [TestMethod]
    public void A_crash_torn_segment_is_dropped_and_never_poisoned()
    {
        using CacheRig rig = new(128 * 1024, Order, Segments);
        rig.Write(0, Filled(4096, 1), WriteOptions.Fua);
        RecoveryTests.WriteUnflushedSegment(rig, 2, 1, 2);   // never durable
        rig.Device.Abandon();
        rig.Cache.Media.Slice(DataByte(2, 1, 0), 512).Clear(); // a sector of its write did not reach the media

        using WriteboostDevice device = rig.Open();

        Assert.AreEqual(0, device.Recovery.PoisonedBlocks);
        Assert.AreEqual("crash-tail", device.Recovery.Segments.Single().Kind);
        CollectionAssert.AreEqual(new byte[4096], ReadBlock(device, 2), "never durable: it may read its older data");
        CollectionAssert.AreEqual(Filled(4096, 1), ReadBlock(device, 0));
    }

    [TestMethod]
    public void The_newest_segment_is_told_from_a_torn_one_after_a_clean_close_but_not_after_a_crash()
    {
        using (CacheRig rig = DurableSegments(2)) // a clean close: the superblock record vouches for segment 2
        {
            rig.Cache.Media[DataByte(2, 0)] ^= 0x01;
            using WriteboostDevice device = rig.Open();
            Assert.ThrowsExactly<PoisonedBlockException>(() => ReadBlock(device, 1));
            Assert.AreEqual(2ul, device.Recovery.ProvenDurableId);
        }
        using (CacheRig rig = new(128 * 1024, Order, Segments))
        {
            rig.Write(0, Filled(4096, 1), WriteOptions.Fua);
            rig.Write(4096, Filled(4096, 2), WriteOptions.Fua);
            rig.Device.Abandon(); // a crash: nothing written after segment 2 says it was durable
            rig.Cache.Media[DataByte(2, 0)] ^= 0x01;
            using WriteboostDevice device = rig.Open();
            Assert.AreEqual(0, device.Recovery.PoisonedBlocks, "indistinguishable from a torn write: dropped, not poisoned");
            Assert.AreEqual("crash-tail", device.Recovery.Segments.Single().Kind);
        }
    }

    [TestMethod]
    public void Rewriting_a_poisoned_block_clears_it_for_good()
    {
        using CacheRig rig = DurableSegments(3);
        rig.Cache.Media[DataByte(1, 0)] ^= 0x01;
        using (WriteboostDevice device = rig.Open())
        {
            device.Write(0, Filled(4096, 0x42), WriteOptions.Fua);
            CollectionAssert.AreEqual(Filled(4096, 0x42), ReadBlock(device, 0));
            Assert.IsFalse(device.Status().Degraded);
            device.Abandon(); // even after a crash, the rewrite (durable) supersedes the damaged copy
        }
        using WriteboostDevice again = rig.Open();
        CollectionAssert.AreEqual(Filled(4096, 0x42), ReadBlock(again, 0));
        Assert.AreEqual(0, again.Recovery.PoisonedBlocks);
    }

    [TestMethod]
    public void A_partial_rewrite_clears_only_the_sectors_it_writes()
    {
        using CacheRig rig = DurableSegments(3);
        rig.Cache.Media[DataByte(1, 0)] ^= 0x01;
        using WriteboostDevice device = rig.Open();

        device.Write(512, Filled(512, 0x33), WriteOptions.Fua);

        byte[] sector = new byte[512];
        device.Read(512, sector);
        CollectionAssert.AreEqual(Filled(512, 0x33), sector);
        Assert.ThrowsExactly<PoisonedBlockException>(() => device.Read(0, sector));
        Assert.AreEqual((byte)0b1111_1101, device.Status().Poisoned.Single().Sectors);
    }

    [TestMethod]
    public void Clear_poison_acknowledges_the_loss_durably_and_the_lost_sectors_read_as_zeros()
    {
        using CacheRig rig = DurableSegments(3);
        rig.Cache.Media[DataByte(1, 0)] ^= 0x01;
        using (WriteboostDevice device = rig.Open())
        {
            device.Message(["clear_poison"]);
            CollectionAssert.AreEqual(new byte[4096], ReadBlock(device, 0));
            Assert.IsFalse(device.Status().Degraded);
            device.Abandon();
        }
        using WriteboostDevice again = rig.Open();
        CollectionAssert.AreEqual(new byte[4096], ReadBlock(again, 0), "the acknowledgement survived a crash");
        Assert.AreEqual(0, again.Recovery.PoisonedBlocks);
        CollectionAssert.AreEqual(Filled(4096, 2), ReadBlock(again, 1));
    }

    [TestMethod]
    public void A_damaged_header_of_a_durable_segment_is_recovered_from_its_self_checking_entries()
    {
        using CacheRig rig = DurableSegments(4);
        rig.Cache.Media[SlotStart(2) + 3] ^= 0x04; // a bit of segment 2's id: its header checksum fails

        using WriteboostDevice device = rig.Open();

        CollectionAssert.AreEqual(Filled(4096, 2), ReadBlock(device, 1), "each entry vouches for its sector, dirty bits and data");
        CollectionAssert.AreEqual(Filled(4096, 4), ReadBlock(device, 3));
        Assert.AreEqual(0, device.Recovery.PoisonedBlocks);
        StringAssert.Contains(device.Recovery.Segments.Single().Detail, "pass their own checksum");
    }

    [TestMethod]
    public void A_durable_segment_whose_block_list_is_lost_refuses_the_cache_until_the_loss_is_accepted()
    {
        using CacheRig rig = DurableSegments(4);
        rig.Cache.Media[SlotStart(2) + 512 + 1] ^= 0x01; // the backing sector of segment 2's only entry: which block it held is unknown

        InvalidDataException refused = Assert.ThrowsExactly<InvalidDataException>(() => rig.Open());
        StringAssert.Contains(refused.Message, "segment 2 (slot 1) was durable");
        StringAssert.Contains(refused.Message, "--accept-loss");
        CacheReport check = CacheInspector.Inspect(rig.Cache);
        StringAssert.Contains(check.Refusal, "segment 2 (slot 1)", "wb check says which");

        using (WriteboostDevice accepted = WriteboostDevice.Open(rig.Backing, rig.Cache, new Tunables(rig.Keys), new WriteboostOptions { AcceptDataLoss = true }))
        {
            Assert.IsTrue(accepted.Recovery.LossAccepted);
            Assert.AreEqual("lost", accepted.Recovery.Segments.Single().Kind);
            CollectionAssert.AreEqual(new byte[4096], ReadBlock(accepted, 1), "the loss accepted: segment 2's block reads its older data");
            CollectionAssert.AreEqual(Filled(4096, 3), ReadBlock(accepted, 2), "and segments 3 and 4 are kept");
            CollectionAssert.AreEqual(Filled(4096, 4), ReadBlock(accepted, 3));
        }
        using WriteboostDevice later = rig.Open();
        Assert.IsFalse(later.Recovery.LossAccepted, "the acceptance was durable (the header says so): the next open needs no flag");
        CollectionAssert.AreEqual(Filled(4096, 4), ReadBlock(later, 3));
    }

    [TestMethod]
    public void Accepting_a_lost_entry_keeps_the_segments_intact_entries()
    {
        using CacheRig rig = new(128 * 1024, Order, Segments);
        for (int i = 0; i < 3; i++)
        {
            rig.Write(i * 4096L, Filled(4096, (byte)(i + 1)));
        }
        rig.Write(3 * 4096L, Filled(4096, 4), WriteOptions.Fua);
        rig.Device.Dispose();
        rig.Cache.Media[SlotStart(1) + 512 + 16 + 2] ^= 0x01; // entry 1 of segment 1

        Assert.ThrowsExactly<InvalidDataException>(() => rig.Open());
        using WriteboostDevice accepted = WriteboostDevice.Open(rig.Backing, rig.Cache, new Tunables(rig.Keys), new WriteboostOptions { AcceptDataLoss = true });
        CollectionAssert.AreEqual(Filled(4096, 1), ReadBlock(accepted, 0));
        CollectionAssert.AreEqual(new byte[4096], ReadBlock(accepted, 1), "the one entry given up");
        CollectionAssert.AreEqual(Filled(4096, 3), ReadBlock(accepted, 2));
    }

    [TestMethod]
    public void Damage_to_bytes_no_block_depends_on_costs_nothing()
    {
        using CacheRig rig = DurableSegments(3);
        rig.Cache.Media[SlotStart(1) + 512 + 10] ^= 0x01;      // the kernel's padding after the dirty bits, which nothing reads
        rig.Cache.Media[SlotStart(2) + 512 + 16 * 2] ^= 0x01;  // an entry past the segment's length

        using WriteboostDevice device = rig.Open();

        for (int i = 0; i < 3; i++)
        {
            CollectionAssert.AreEqual(Filled(4096, (byte)(i + 1)), ReadBlock(device, i));
        }
        Assert.AreEqual(0, device.Recovery.PoisonedBlocks);
        Assert.AreEqual(2, device.Recovery.Segments.Count(s => s.Kind == "damage" && s.BlocksPoisoned == 0), "reported, though nothing was lost");
    }

    [TestMethod]
    public void A_durable_segment_wiped_whole_is_an_unknown_loss_not_an_empty_segment()
    {
        using CacheRig rig = DurableSegments(3);
        rig.Cache.Media.Slice(SlotStart(2), (int)SegmentBytes).Clear();

        InvalidDataException refused = Assert.ThrowsExactly<InvalidDataException>(() => rig.Open());
        StringAssert.Contains(refused.Message, "segment 2 (slot 1) was durable");
    }

    [TestMethod]
    public void Writeback_never_passes_a_segment_that_still_holds_a_lost_block()
    {
        using CacheRig rig = DurableSegments(3);
        rig.Cache.Media[DataByte(1, 0)] ^= 0x01;
        using WriteboostDevice device = rig.Open();

        // Fill the ring: segment 9 needs segment 1's slot, and writeback cannot pass segment 1.
        IOException stuck = Assert.ThrowsExactly<IOException>(() =>
        {
            for (int i = 0; i < 64; i++)
            {
                device.Write((3 + i % 20) * 4096L, Filled(4096, (byte)i), WriteOptions.Fua);
            }
        });
        StringAssert.Contains(stuck.Message, "writeback cannot pass segment 1");
        StringAssert.Contains(stuck.Message, "clear_poison");
        Assert.ThrowsExactly<PoisonedBlockException>(() => ReadBlock(device, 0), "still lost, never silently written back or dropped");

        device.ClearPoison();
        device.Write(30 * 4096L, Filled(4096, 0x55), WriteOptions.Fua); // the ring moves again
        CollectionAssert.AreEqual(Filled(4096, 0x55), ReadBlock(device, 30));
    }

    [TestMethod]
    public void A_read_only_open_writes_nothing_and_reads_what_a_read_write_open_reads()
    {
        using CacheRig rig = new(128 * 1024, Order, Segments);
        for (int i = 0; i < 4; i++)
        {
            rig.Write(i * 4096L, Filled(4096, (byte)(i + 1)), WriteOptions.Fua);
        }
        RecoveryTests.WriteUnflushedSegment(rig, 5, 10, 9);
        RecoveryTests.WriteUnflushedSegment(rig, 6, 13, 8);
        rig.Device.Abandon();
        rig.Cache.Media[DataByte(2, 0)] ^= 0x01;               // damage: block 1 poisoned
        rig.Cache.Media.Slice(SlotStart(5), 512).Clear();      // a torn tail before an intact segment: a tombstone to write
        byte[] cacheBefore = rig.Cache.Media.ToArray();
        byte[] backingBefore = rig.Backing.Media.ToArray();

        byte[] looked = new byte[64 * 1024];
        using (WriteboostDevice readOnly = WriteboostDevice.Open(rig.Backing, rig.Cache, new Tunables(rig.Keys), new WriteboostOptions { ReadOnly = true }))
        {
            Assert.ThrowsExactly<PoisonedBlockException>(() => ReadBlock(readOnly, 1));
            readOnly.Read(8192, looked.AsSpan(8192));
            Assert.ThrowsExactly<IOException>(() => readOnly.Write(0, new byte[4096]));
            Assert.IsTrue(readOnly.Status().Degraded);
        }

        CollectionAssert.AreEqual(cacheBefore, rig.Cache.Media.ToArray(), "the cache device is byte-identical after looking");
        CollectionAssert.AreEqual(backingBefore, rig.Backing.Media.ToArray());
        using WriteboostDevice readWrite = rig.Open();
        byte[] recovered = new byte[64 * 1024];
        readWrite.Read(8192, recovered.AsSpan(8192));
        CollectionAssert.AreEqual(recovered, looked);
        Assert.ThrowsExactly<PoisonedBlockException>(() => ReadBlock(readWrite, 1));
    }

    [TestMethod]
    public void Wb_check_lists_the_poisoned_blocks_recovery_will_find()
    {
        using CacheRig rig = DurableSegments(3);
        rig.Cache.Media[DataByte(2, 0)] ^= 0x01;

        CacheReport report = CacheInspector.Inspect(rig.Cache);

        Assert.AreEqual((1L, (byte)0xFF, 2ul, 1L), (report.PoisonedBlocks.Single().Block, report.PoisonedBlocks.Single().Sectors, report.PoisonedBlocks.Single().SegmentId, report.PoisonedBlocks.Single().Slot));
        Assert.AreEqual(SegmentFate.Damaged, report.Segments.Single().Fate);
        Assert.IsNull(report.Refusal);
    }

    [TestMethod]
    public void Headers_say_what_was_durable_and_entries_carry_their_block_checksum_without_changing_the_kernels_checksum()
    {
        using CacheRig rig = new(128 * 1024, Order, Segments);
        rig.Write(0, Filled(4096, 1), WriteOptions.Fua);       // segment 1
        byte[] data = new byte[4096];
        new Random(3).NextBytes(data);
        rig.Write(4096, data, WriteOptions.Fua);               // segment 2, written once segment 1 was durable
        rig.Device.Abandon();

        ReadOnlySpan<byte> segment = rig.Cache.Media.Slice(SlotStart(2), 8192);
        (HeaderExtensionState state, SegmentHeaderExtension extension) = SegmentHeaderExtension.Read(segment);
        Assert.AreEqual(HeaderExtensionState.Intact, state);
        Assert.AreEqual(1ul, extension.DurableId, "segment 2's header vouches for segment 1");
        Assert.AreEqual(ReferenceCrc32C.Compute(segment[512..8192]), BinaryPrimitives.ReadUInt32LittleEndian(segment[8..]), "the kernel's checksum, over the entry checksums too");
        byte[] covered = [.. segment.Slice(512, 9), .. segment.Slice(4096, 4096)];
        Assert.AreEqual(ReferenceCrc32C.Compute(covered), BinaryPrimitives.ReadUInt32LittleEndian(segment[(512 + 12)..]), "entry checksum over sector, dirty bits and data");
        Assert.AreEqual(ReferenceCrc32C.Compute(segment.Slice(512, 16)), extension.MetablocksChecksum);
        Assert.IsTrue(segment.Slice(512 + 9, 3).ToArray().All(b => b == 0), "the rest of the kernel's padding stays zero");
    }

    [TestMethod]
    public void A_damaged_pmem_record_of_an_acknowledged_write_poisons_its_block_and_the_rest_is_rebuilt()
    {
        using TempDirectory dir = new("/dev/shm");
        using CacheRig rig = ThreeBlocksAcknowledgedInPmem(dir);
        PmemRegion pmem = rig.Pmem!;
        PmemLayout layout = new(10, 8, 127);
        pmem.Write(layout.DataOffset(0, 1) + 50, [0xEE]); // the data of slot 1: slot 2 says slot 1 was durable

        using WriteboostDevice device = rig.Open();

        CollectionAssert.AreEqual(Filled(4096, 1), ReadBlock(device, 0));
        Assert.ThrowsExactly<PoisonedBlockException>(() => ReadBlock(device, 1));
        CollectionAssert.AreEqual(Filled(4096, 3), ReadBlock(device, 2));
        Assert.AreEqual(1, device.Recovery.PoisonedBlocks);
        device.Dispose();

        // The pmem buffer is reused from now on; the poison lives on in the rebuilt segment's lost bitmap.
        using WriteboostDevice again = rig.Open();
        Assert.ThrowsExactly<PoisonedBlockException>(() => ReadBlock(again, 1));
        CollectionAssert.AreEqual(Filled(4096, 3), ReadBlock(again, 2));
    }

    [TestMethod]
    public void A_pmem_record_whose_block_is_unknown_refuses_the_cache_until_the_loss_is_accepted()
    {
        using TempDirectory dir = new("/dev/shm");
        using CacheRig rig = ThreeBlocksAcknowledgedInPmem(dir);
        PmemRegion pmem = rig.Pmem!;
        PmemLayout layout = new(10, 8, 127);
        pmem.Write(layout.RecordOffset(0, 1) + 9, [0x40]); // the block number of slot 1's record

        InvalidDataException refused = Assert.ThrowsExactly<InvalidDataException>(() => rig.Open());
        StringAssert.Contains(refused.Message, "segment 1");
        StringAssert.Contains(refused.Message, "pmem");
        using WriteboostDevice accepted = WriteboostDevice.Open(rig.Backing, rig.Cache, new Tunables(rig.Keys), new WriteboostOptions { AcceptDataLoss = true }, pmem);
        Assert.IsTrue(accepted.Recovery.LossAccepted);
        CollectionAssert.AreEqual(Filled(4096, 3), ReadBlock(accepted, 2));
        accepted.Abandon();
    }

    /// <summary>A mode-1 cache on a dax pmem file, blocks 0..2 written (filled 1, 2, 3) and acknowledged in pmem (dax: every write persisted), then abandoned.</summary>
    private static CacheRig ThreeBlocksAcknowledgedInPmem(TempDirectory dir)
    {
        string path = dir.File("pmem");
        FileBlockDevice.CreateFile(path, 8 << 20);
        CacheRig rig = new(256 * 1024, 10, 4, pmem: PmemApi.Alloc(path, 0, 8 << 20, PmemBackend.Dax));
        for (int i = 0; i < 3; i++)
        {
            rig.Write(i * 4096L, Filled(4096, (byte)(i + 1)));
        }
        rig.Device.Abandon();
        return rig;
    }
}
