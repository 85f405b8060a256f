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
    public void The_block_map_agrees_with_a_dictionary_through_placements_supersessions_and_unmaps_in_crowded_buckets()
    {
        // 64 metablocks (and 64 buckets) over 200 blocks, placed, superseded and unmapped at random: with about as
        // many blocks served as there are buckets, chains of several blocks form and are cut at their head, middle
        // and tail. The model is the map as a dictionary keeps it.
        CacheIndex index = new(nrSegments: 16, BlocksPerSegment);
        Dictionary<long, int> model = [];
        long[] held = new long[16 * BlocksPerSegment];
        Array.Fill(held, -1);
        Random random = new(37);
        for (int step = 0; step < 20_000; step++)
        {
            int g = random.Next(held.Length);
            long block = random.Next(200) * 1_000_003L;
            if (held[g] < 0)
            {
                if (model.TryGetValue(block, out int older))
                {
                    index.Supersede(older, inOpenSegment: random.Next(2) == 0);
                    held[older] = index.BlockAt(older);
                }
                index.Place(g, block, Units.FullBlockBits, dirty: random.Next(2) == 0);
                model[block] = g;
                held[g] = block;
            }
            else
            {
                index.Unmap(g);
                if (model.TryGetValue(held[g], out int serving) && serving == g)
                {
                    model.Remove(held[g]);
                }
                held[g] = -1;
            }
            for (long b = 0; b < 200; b++)
            {
                bool expected = model.TryGetValue(b * 1_000_003L, out int expectedAt);
                Assert.AreEqual(expected, index.TryFind(b * 1_000_003L, out int at), $"step {step}: block {b}");
                Assert.AreEqual(expected ? expectedAt : at, at, $"step {step}: block {b} served from the wrong metablock");
            }
        }
        Assert.AreEqual(Enumerable.Range(0, held.Length).Count(i => index.IsDirty(i)), index.DirtyCount, "the dirty count follows every change");
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
