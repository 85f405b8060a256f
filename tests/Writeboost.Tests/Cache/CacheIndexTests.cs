using Writeboost.Cache.Format;
using Writeboost.Cache.Index;
using Writeboost.Cache.Ring;

namespace Writeboost.Tests.Cache;

/// <summary>The cache index and the segment ring on their own, without a device.</summary>
[TestClass]
public sealed class CacheIndexTests
{
    private const int BlocksPerSegment = 4;

    [TestMethod]
    public void A_placed_block_is_found_and_counted_dirty_until_written_back()
    {
        CacheIndex index = new(nrSegments: 3, BlocksPerSegment);
        int g = index.GlobalOf(slot: 1, indexInSegment: 2);
        index.Place(g, block: 40, sectors: 0x0f, dirty: true);
        Assert.IsTrue(index.TryFind(40, out int found));
        Assert.AreEqual(g, found);
        Assert.AreEqual(1L, index.SlotOf(g));
        Assert.AreEqual(2, index.IndexInSegment(g));
        Assert.AreEqual(1L, index.DirtyCount);
        Assert.AreEqual((byte)0x0f, index.ReadableSectorsAt(g), "a dirty copy serves its own sectors");
        index.MarkClean(g);
        Assert.AreEqual(0L, index.DirtyCount);
        Assert.AreEqual((byte)0, index.ReadableSectorsAt(g), "a clean partial copy was written back: the backing store has it");
    }

    [TestMethod]
    public void A_clean_whole_block_serves_reads_and_a_clean_partial_one_does_not()
    {
        CacheIndex index = new(nrSegments: 2, BlocksPerSegment);
        index.Place(0, block: 7, sectors: Units.FullBlockBits, dirty: false);
        Assert.AreEqual(Units.FullBlockBits, index.ReadableSectorsAt(0), "read-cached");
        Assert.AreEqual(0L, index.DirtyCount);
    }

    [TestMethod]
    public void A_dirty_copy_superseded_in_a_sealed_segment_stays_owed_to_writeback_and_maps_nothing()
    {
        CacheIndex index = new(nrSegments: 3, BlocksPerSegment);
        int old = index.GlobalOf(0, 0);
        int newer = index.GlobalOf(1, 0);
        index.Place(old, block: 9, sectors: 0xff, dirty: true);
        index.Supersede(old, inOpenSegment: false);
        index.Place(newer, block: 9, sectors: 0xff, dirty: true);
        Assert.IsTrue(index.IsSuperseded(old), "owed: until the newer copy is durable the old one is the durable one");
        Assert.AreEqual(9L, index.BlockAt(old));
        Assert.IsTrue(index.TryFind(9, out int found));
        Assert.AreEqual(newer, found);
        Assert.AreEqual(1L, index.DirtyCount, "its dirtiness moved to the newer copy");
        index.UnmapSlot(1);
        Assert.IsFalse(index.Holds(9));
        Assert.IsTrue(index.IsSuperseded(old), "the old slot's debt is its own");
    }

    [TestMethod]
    public void A_copy_superseded_in_the_open_segment_is_cleared()
    {
        CacheIndex index = new(nrSegments: 3, BlocksPerSegment);
        index.Place(0, block: 9, sectors: 0x01, dirty: true);
        index.Supersede(0, inOpenSegment: true);
        index.Place(1, block: 9, sectors: 0x03, dirty: true);
        Assert.IsFalse(index.IsSuperseded(0));
        Assert.AreEqual(-1L, index.BlockAt(0));
        Assert.AreEqual(1L, index.DirtyCount);
    }

    [TestMethod]
    public void The_ring_moves_a_segment_through_its_stages_in_order()
    {
        object deviceLock = new();
        SegmentRing ring = new(nrSegments: 4, deviceLock);
        lock (deviceLock)
        {
            ring.Open(1);
            Assert.AreEqual(1ul, ring.OpenId);
            Assert.AreEqual(1ul, ring.IdIn(0), "segment 1 lives in slot 0");
            ring.Seal(1, length: 3);
            Assert.AreEqual((0ul, 1ul, 3), (ring.OpenId, ring.QueuedId, ring.LengthOf(0)));
            ring.MarkFlushed(1);
            ring.MarkDurable(1);
            ring.MarkWrittenBack(1);
            Assert.AreEqual((1ul, 1ul, 1ul), (ring.FlushedId, ring.DurableId, ring.WrittenBackId));
            ring.Open(2);
            Assert.AreEqual(1L, ring.SlotOf(2));
            ring.Pin(1);
            Assert.IsTrue(ring.IsPinned(1));
            Assert.IsTrue(ring.Unpin(1), "the last read of the slot ended");
            Assert.AreEqual(5L % 4, ring.SlotOf(6));
        }
    }

    [TestMethod]
    public void Recovery_resumes_the_ring_after_the_last_kept_segment()
    {
        SegmentRing ring = new(nrSegments: 4, new object());
        ring.ResumeAfter(lastKeptId: 6, writtenBackId: 3);
        Assert.AreEqual((0ul, 6ul, 6ul, 6ul, 3ul), (ring.OpenId, ring.QueuedId, ring.FlushedId, ring.DurableId, ring.WrittenBackId));
        ring.RaiseWrittenBack(2);
        Assert.AreEqual(3ul, ring.WrittenBackId, "written back only grows");
    }
}
