using Writeboost.Cache.Core;

namespace Writeboost.Tests.Cache;

/// <summary>dm-writeboost's read cache cells: what a write to a block cancels.</summary>
[TestClass]
public sealed class ReadCacheCellsTests
{
    [TestMethod]
    public void A_write_cancels_both_the_cell_being_staged_and_a_newer_one_of_the_same_block()
    {
        ReadCacheCells cells = new(capacity: 1);
        ReadCacheCell first = cells.ReserveLocked(block: 5, threshold: 127)!;
        first.Fill(new byte[4096]);
        Assert.IsTrue(cells.CompleteLocked(first, out List<ReadCacheCell> ready), "one cell: the set is complete");
        CollectionAssert.AreEqual(new[] { first }, ready);
        // While the first is being staged (its stager waits for a slot), a read that missed reserves another.
        ReadCacheCell second = cells.ReserveLocked(block: 5, threshold: 127)!;

        cells.BeginWriteAroundLocked(5);

        Assert.IsTrue(first.Cancelled, "the cell being staged would place data older than the write");
        Assert.IsTrue(second.Cancelled);
        Assert.IsNull(cells.ReserveLocked(block: 5, threshold: 127), "no cell while the write is on its way");
        cells.EndWriteAroundLocked(5);
        cells.FinishStagingLocked();
    }
}
