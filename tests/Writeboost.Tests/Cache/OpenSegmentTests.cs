using Writeboost.Cache.Core;
using Writeboost.Cache.Format;

namespace Writeboost.Tests.Cache;

/// <summary>The open segment's slots: what the seal writes for each is what it was given when placed, merges included.</summary>
[TestClass]
public sealed class OpenSegmentTests
{
    [TestMethod]
    public void Each_slot_keeps_what_it_was_placed_with_until_the_next_segment_begins()
    {
        OpenSegment open = new(3);
        open.Begin();
        Assert.AreEqual(0, open.Place(block: 7, sectors: 0b0000_0011, dirty: true));
        Assert.AreEqual(1, open.Place(block: 9, sectors: 0xFF, dirty: false)); // staged by the read cache: clean
        open.Merged(0, 0b0000_1111);                                           // mode 0: a write merged in place

        Assert.AreEqual(new MetablockOnDisk(7 * Units.SectorsPerBlock, 0b0000_1111), open.AsPlaced(0));
        Assert.AreEqual(new MetablockOnDisk(9 * Units.SectorsPerBlock, 0), open.AsPlaced(1), "a clean slot is sealed with no dirty sectors");
        Assert.AreEqual(2, open.Length);
        Assert.IsFalse(open.IsFull);

        Assert.AreEqual(2, open.Place(block: 1, sectors: 1, dirty: true));
        Assert.IsTrue(open.IsFull, "three slots of three");
        open.Sealed();
        Assert.AreEqual(0, open.Length);

        open.Begin();
        Assert.AreEqual(new MetablockOnDisk(0, 0), open.AsPlaced(0), "a new segment forgets the last one's slots");
    }
}
