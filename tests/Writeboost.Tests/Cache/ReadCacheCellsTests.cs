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
        (ReadCacheCell first, List<ReadCacheCell> ready) = CompleteASetOfOne(cells, block: 5);
        CollectionAssert.AreEqual(new[] { first }, ready);
        // While the first is being staged (its stager waits for a slot), a read that missed reserves another.
        ReadCacheCell second = cells.ReserveLocked(block: 5, threshold: 127)!;

        cells.BeginWriteAroundLocked(5);

        Assert.IsTrue(first.Cancelled, "the cell being staged would place data older than the write");
        Assert.IsTrue(second.Cancelled);
        Assert.IsNull(cells.ReserveLocked(block: 5, threshold: 127), "no cell while the write is on its way");
        cells.EndWriteAroundLocked(5);
        cells.FinishStagingLocked(ready);
    }

    [TestMethod]
    public void A_stager_that_finishes_leaves_the_cells_another_stager_still_waits_to_place_cancellable()
    {
        ReadCacheCells cells = new(capacity: 1);
        // Stager A completes its set and waits for a buffer slot (outside the lock) with the old data of block 7.
        (ReadCacheCell waiting, List<ReadCacheCell> readyA) = CompleteASetOfOne(cells, block: 7);
        // Stager B completes a set of its own (another block) and finishes while A still waits.
        (_, List<ReadCacheCell> readyB) = CompleteASetOfOne(cells, block: 3);
        cells.FinishStagingLocked(readyB);

        cells.BeginWriteAroundLocked(7);

        Assert.IsTrue(waiting.Cancelled, "A's cell would place data older than the write, as clean, after the write was acknowledged");
        cells.EndWriteAroundLocked(7);
        cells.FinishStagingLocked(readyA);
    }

    [TestMethod]
    public void A_write_cancels_every_stagers_cell_of_its_block()
    {
        ReadCacheCells cells = new(capacity: 1);
        (ReadCacheCell first, List<ReadCacheCell> readyA) = CompleteASetOfOne(cells, block: 7);
        (ReadCacheCell second, List<ReadCacheCell> readyB) = CompleteASetOfOne(cells, block: 7);

        cells.CancelLocked(7);

        Assert.IsTrue(first.Cancelled);
        Assert.IsTrue(second.Cancelled);
        cells.FinishStagingLocked(readyB);
        cells.FinishStagingLocked(readyA);
    }

    /// <summary>A full-block read miss of <paramref name="block"/> reserves the one cell, reads, and completes its set: its stager now holds it.</summary>
    private static (ReadCacheCell Cell, List<ReadCacheCell> Ready) CompleteASetOfOne(ReadCacheCells cells, long block)
    {
        ReadCacheCell cell = cells.ReserveLocked(block, threshold: 127)!;
        cell.Fill(new byte[4096]);
        Assert.IsTrue(cells.CompleteLocked(cell, out List<ReadCacheCell> ready), "one cell: the set is complete");
        return (cell, ready);
    }
}
