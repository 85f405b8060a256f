using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Index;

namespace Writeboost.Tests.Cache;

/// <summary>The open segment's slots and its seal: a slot the index still maps is sealed as it is now, any other as it was placed, merges included.</summary>
[TestClass]
public sealed class OpenSegmentTests
{
    private const int EntryBytes = MetablockOnDisk.WideSizeBytes;

    [TestMethod]
    public void The_seal_writes_each_slot_as_the_index_maps_it_or_as_it_was_placed()
    {
        OpenSegment open = new(3);
        CacheIndex index = new(nrSegments: 1, blocksPerSegment: 3);
        open.Begin();
        Assert.AreEqual(0, open.Place(block: 7, sectors: 0b0000_0011, dirty: true)); // superseded since: not mapped
        Assert.AreEqual(1, open.Place(block: 9, sectors: 0xFF, dirty: false));       // staged by the read cache: clean
        open.Merged(0, 0b0000_1111);                                                 // mode 0: a write merged in place
        Assert.AreEqual(2, open.Length);
        Assert.IsFalse(open.IsFull);
        Assert.AreEqual(2, open.Place(block: 1, sectors: 0b0000_0001, dirty: true));
        index.Place(2, block: 1, sectors: 0b0000_0111, dirty: true);                  // what the index says now wins
        Assert.IsTrue(open.IsFull, "three slots of three");

        byte[] image = new byte[Units.BlockBytes * 4];
        Assert.AreEqual(3, open.Seal(5, image, index, firstGlobal: 0, EntryBytes, partial: false, FaultHooks.None));

        Assert.AreEqual(new SegmentHeaderOnDisk(5, 0, 3), SegmentHeaderOnDisk.Read(image));
        Assert.AreEqual(new MetablockOnDisk(7 * Units.SectorsPerBlock, 0b0000_1111), MetablockOnDisk.Read(image, 0, EntryBytes));
        Assert.AreEqual(new MetablockOnDisk(9 * Units.SectorsPerBlock, 0), MetablockOnDisk.Read(image, 1, EntryBytes), "a clean slot is sealed with no dirty sectors");
        Assert.AreEqual(new MetablockOnDisk(1 * Units.SectorsPerBlock, 0b0000_0111), MetablockOnDisk.Read(image, 2, EntryBytes));
        Assert.AreEqual(0, open.Length, "none is open after the seal");
        Assert.AreEqual((1L, 0L), (open.FullSeals, open.PartialSeals));
    }

    [TestMethod]
    public void A_barrier_seals_a_partial_log_counted_until_stats_are_cleared_and_a_new_segment_forgets_the_last()
    {
        OpenSegment open = new(3);
        CacheIndex index = new(nrSegments: 1, blocksPerSegment: 3);
        open.Begin();
        open.Place(block: 4, sectors: 0xFF, dirty: true);
        byte[] image = new byte[Units.BlockBytes * 4];

        Assert.AreEqual(1, open.Seal(6, image, index, firstGlobal: 0, EntryBytes, partial: true, FaultHooks.None));
        Assert.AreEqual((0L, 1L, 1L), (open.FullSeals, open.PartialSeals, open.PartialSealsSinceCleared));
        open.ClearStats();
        Assert.AreEqual((1L, 0L), (open.PartialSeals, open.PartialSealsSinceCleared), "clear_stat clears nr_partial_flushed only");

        open.Begin();
        open.Place(block: 5, sectors: 0b1, dirty: false);
        open.Seal(7, image, index, firstGlobal: 0, EntryBytes, partial: true, FaultHooks.None);
        Assert.AreEqual(new MetablockOnDisk(5 * Units.SectorsPerBlock, 0), MetablockOnDisk.Read(image, 0, EntryBytes), "slot 0 is the new segment's");
    }
}
