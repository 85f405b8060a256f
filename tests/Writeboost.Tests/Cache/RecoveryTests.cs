using System.Buffers.Binary;
using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Table;
using Writeboost.Devices;
using Writeboost.Tests.Support;
using static Writeboost.Tests.Cache.WritePathTests;

namespace Writeboost.Tests.Cache;

[TestClass]
public sealed class RecoveryTests
{
    private const int Order = 5;                 // 16 KiB segments, 3 blocks each
    private const long SegmentBytes = 16 * 1024;

    private static long SlotStart(ulong id, long segments) => (1 << 20) + (long)((id - 1) % (ulong)segments) * SegmentBytes;

    [TestMethod]
    public void Recovery_after_a_clean_close_rebuilds_the_index_and_dirty_state()
    {
        using CacheRig rig = new(128 * 1024, Order, 8);
        for (int i = 0; i < 7; i++)
        {
            rig.Write(i * 4096L + 512 * i, Filled(512 * (i + 1), (byte)(i + 1)));
        }
        long dirty = rig.Device.Status().NrDirtyCaches;
        rig.Reopen();
        WriteboostStatus status = rig.Device.Status();
        Assert.AreEqual(dirty, status.NrDirtyCaches);
        Assert.AreEqual(status.Recovery.SegmentsReplayed, (int)status.LastFlushedId);
        rig.AssertWholeDeviceReadsBack("after reopen");
    }

    [TestMethod]
    public void Replay_stops_at_a_torn_segment_and_keeps_everything_before_it()
    {
        using CacheRig rig = new(128 * 1024, Order, 8);
        rig.Write(0, Filled(4096, 1), WriteOptions.Fua);        // segment 1
        byte[] before = rig.Reference.ToArray();
        rig.Device.Write(4096, Filled(4096, 2), WriteOptions.Fua); // segment 2: torn below
        rig.Device.Abandon();
        rig.Cache.Media[(int)SlotStart(2, 8) + 4096 + 100] ^= 0xFF; // a data byte of segment 2

        using WriteboostDevice device = rig.Open();
        RecoveryReport report = device.Recovery;
        Assert.AreEqual(1, report.SegmentsReplayed);
        StringAssert.Contains(report.StopReason, "segment 2: checksum mismatch");
        byte[] back = new byte[8192];
        device.Read(0, back);
        CollectionAssert.AreEqual(before[..8192], back, "segment 1 kept, segment 2's block reads as the backing store");
    }

    /// <summary>Writes whole blocks without FUA until segment <paramref name="id"/> is sealed and written, never flushed: a crash may lose or keep it.</summary>
    internal static void WriteUnflushedSegment(CacheRig rig, ulong id, long firstBlock, byte value)
    {
        for (int i = 0; i < 3; i++)
        {
            rig.Device.Write((firstBlock + i) * 4096L, Filled(4096, value)); // 3 blocks fill a segment of order 5: it is sealed and written
        }
        SpinWait.SpinUntil(() => rig.Device.Status().LastFlushedId >= id, TimeSpan.FromSeconds(30));
        Assert.IsGreaterThanOrEqualTo(id, rig.Device.Status().LastFlushedId, $"segment {id} written to the cache device");
    }

    [TestMethod]
    public void Intact_segments_after_a_crash_torn_one_are_replayed_and_a_stale_one_never_overrides_newer_writes()
    {
        using CacheRig rig = new(128 * 1024, Order, 8);
        rig.Write(0, Filled(4096, 1), WriteOptions.Fua);      // segment 1: durable
        WriteUnflushedSegment(rig, 2, 1, 2);                   // segment 2: blocks 1..3, written, never flushed: lost below
        WriteUnflushedSegment(rig, 3, 4, 3);                   // segment 3: blocks 4..6, written, never flushed: kept below
        rig.Device.Abandon();
        rig.Cache.Media.Slice((int)SlotStart(2, 8), 4096).Clear(); // a crash: segment 2 never reached the media, 3 did

        using (WriteboostDevice first = rig.Open())
        {
            Assert.AreEqual(3ul, first.Recovery.LastReplayedId, "segment 3 is intact: replayed, not zeroed");
            Assert.IsTrue(first.Recovery.Segments.Any(s => s.Id == 2 && s.Kind == "crash-tail"), "segment 2 is a crash's torn tail: dropped, and said so");
            Assert.AreEqual(0, first.Recovery.PoisonedBlocks, "nothing showed segment 2 was durable: a crash, not damage");
            byte[] back = new byte[7 * 4096];
            first.Read(0, back);
            Assert.IsTrue(back[..4096].All(b => b == 1));
            Assert.IsTrue(back[4096..16384].All(b => b == 0), "segment 2's blocks read their older data (never durable)");
            Assert.IsTrue(back[16384..].All(b => b == 3), "segment 3's blocks are there");
            first.Write(4 * 4096L, Filled(4096, 4), WriteOptions.Fua); // newer than segment 3's copy
            first.Write(5 * 4096L, Filled(4096, 5), WriteOptions.Fua);
            first.Abandon();
        }
        using WriteboostDevice second = rig.Open();
        byte[] again = new byte[3 * 4096];
        second.Read(4 * 4096L, again);
        Assert.IsTrue(again[..4096].All(b => b == 4), "the newer write wins: segment 3 is never replayed after it");
        Assert.IsTrue(again[4096..8192].All(b => b == 5));
        Assert.IsTrue(again[8192..].All(b => b == 3));
        Assert.IsGreaterThan(3ul, second.Recovery.LastReplayedId, "ids are never reused for the segments written after a tombstone");
    }

    [TestMethod]
    public void A_torn_write_into_a_reused_slot_loses_nothing_acknowledged()
    {
        // dm-writeboost replays from the slot after the newest id and stops at the first bad checksum: a torn
        // reuse of the oldest slot would stop it before every newer segment. Here the record guards reuse.
        const int segments = 4;
        using CacheRig rig = new(256 * 1024, Order, segments);
        for (int i = 0; i < 7; i++)
        {
            rig.Write(i * 4096L, Filled(4096, (byte)(i + 10)), WriteOptions.Fua); // segment i+1, wraps the ring
        }
        WriteboostStatus status = rig.Device.Status();
        ulong writtenBack = status.LastWritebackId;
        Assert.IsGreaterThanOrEqualTo(3ul, writtenBack);
        rig.Device.Abandon();
        // The next segment (8) would reuse the slot of segment 4; tear that slot as a crash mid-write would.
        ulong nextReuse = 8 - (ulong)segments;
        Assert.IsLessThanOrEqualTo(writtenBack, nextReuse, "the slot about to be reused holds a written-back segment");
        rig.Cache.Media.Slice((int)SlotStart(nextReuse, segments) + 4096, 512).Fill(0xEE);

        using WriteboostDevice device = rig.Open();
        byte[] back = new byte[7 * 4096];
        device.Read(0, back);
        CollectionAssert.AreEqual(rig.Reference[..(7 * 4096)], back);
    }

    [TestMethod]
    public void Recovery_is_idempotent_when_a_crash_interrupts_it()
    {
        using CacheRig rig = new(128 * 1024, Order, 8);
        rig.Write(0, Filled(4096, 1), WriteOptions.Fua);
        WriteUnflushedSegment(rig, 2, 1, 2);
        WriteUnflushedSegment(rig, 3, 4, 3);
        rig.Device.Abandon();
        rig.Cache.Media.Slice((int)SlotStart(2, 8), 4096).Clear();
        byte[] media = rig.Cache.Media.ToArray();
        // First recovery, abandoned right after; then recover again from the untouched media too.
        using (WriteboostDevice first = rig.Open())
        {
            first.Abandon();
        }
        using WriteboostDevice again = rig.Open();
        media.CopyTo(rig.Cache.Media);
        using WriteboostDevice fromScratch = rig.Open();
        Assert.AreEqual(again.Recovery.LastReplayedId, fromScratch.Recovery.LastReplayedId);
        byte[] a = new byte[7 * 4096];
        byte[] b = new byte[7 * 4096];
        again.Read(0, a);
        fromScratch.Read(0, b);
        CollectionAssert.AreEqual(a, b);
        again.Abandon();
        fromScratch.Abandon();
    }

    [TestMethod]
    public void A_cache_of_another_backing_store_is_refused()
    {
        using CacheRig rig = new(128 * 1024, Order, 8);
        rig.Device.Dispose();
        using MemoryBlockDevice otherBacking = new(256 * 1024, name: "other-backing");
        TableException error = Assert.ThrowsExactly<TableException>(() => WriteboostDevice.Open(otherBacking, rig.Cache, new Tunables(rig.Keys)));
        StringAssert.Contains(error.Message, "wrong backing/cache pair");
    }

    [TestMethod]
    public void A_table_with_another_segment_size_than_the_cache_is_refused()
    {
        using CacheRig rig = new(128 * 1024, Order, 8);
        rig.Device.Dispose();
        TableException error = Assert.ThrowsExactly<TableException>(() =>
            WriteboostDevice.Open(rig.Backing, rig.Cache, new Tunables(new Dictionary<string, long> { ["segment_size_order"] = 6 })));
        StringAssert.Contains(error.Message, "formatted with segment_size_order 5, the table says 6");
    }

    [TestMethod]
    public void A_corrupt_superblock_record_is_recognised_and_dirty_data_is_kept()
    {
        using CacheRig rig = new(128 * 1024, Order, 8);
        rig.Write(0, Filled(4096, 1), WriteOptions.Fua);
        rig.Device.Abandon();
        BinaryPrimitives.WriteUInt64LittleEndian(rig.Cache.Media[((1 << 20) - 512)..], 999); // a flipped record
        using WriteboostDevice recovered = rig.Open();
        StringAssert.Contains(recovered.Recovery.Warnings[0], "the superblock record is corrupt");
        byte[] back = new byte[4096];
        recovered.Read(0, back);
        CollectionAssert.AreEqual(Filled(4096, 1), back, "replayed from the inferred point, not from a bogus 999");
    }

    [TestMethod]
    public void Reformat_starts_over_and_says_so()
    {
        using CacheRig rig = new(128 * 1024, Order, 8);
        rig.Write(0, Filled(4096, 1), WriteOptions.Fua);
        rig.Device.Dispose();
        using WriteboostDevice device = WriteboostDevice.Open(rig.Backing, rig.Cache, new Tunables(rig.Keys), new WriteboostOptions { Reformat = true });
        Assert.IsTrue(device.Recovery.Formatted);
        StringAssert.Contains(device.Recovery.Warnings[0], "reformatted");
        Assert.AreEqual(0, device.Status().NrDirtyCaches);
    }
}
