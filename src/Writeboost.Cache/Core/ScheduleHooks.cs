namespace Writeboost.Cache.Core;

/// <summary>
/// The windows of the device's concurrency where the order of its threads decides what reaches the media:
/// a writer between requests, the flush worker between writing a segment and flushing it, writeback between
/// the backing store's writes, its flush and the superblock record. The crash harness stretches these windows
/// (<see cref="ScheduleHooks"/>) to record interleavings that a quiet machine would almost never produce.
/// </summary>
internal enum SchedulePoint
{
    /// <summary>A writer, before it takes the lock to place a block piece (and maybe to take a new buffer and slot).</summary>
    WriterBeforePlace,
    /// <summary>A writer, before it waits for its FUA or flush to be durable.</summary>
    WriterBeforeBarrier,
    /// <summary>The flush worker, before it writes a sealed segment to the cache device.</summary>
    FlushBeforeSegmentWrite,
    /// <summary>The flush worker, after writing a segment and before deciding whether to flush the cache device.</summary>
    FlushAfterSegmentWrite,
    /// <summary>The flush worker, before the cache-device flush that makes written segments durable.</summary>
    FlushBeforeCacheFlush,
    /// <summary>Writeback, before it chooses and copies a batch.</summary>
    WritebackBeforeBatch,
    /// <summary>Writeback, after the batch's backing writes, before the backing store's flush.</summary>
    WritebackBeforeBackingFlush,
    /// <summary>Writeback, after the superblock record, before the blocks are marked clean and their slots freed.</summary>
    WritebackBeforeMarkClean,
    /// <summary>A write-around writer, after unmapping its blocks under the lock, before its backing-store write.</summary>
    WriteAroundBeforeBackingWrite,
}

/// <summary>
/// A seam for tests: the device calls <see cref="At"/> at each <see cref="SchedulePoint"/>, outside its lock.
/// The product's hooks do nothing; the crash harness's delay or yield the calling thread, seeded, so each
/// recorded schedule is a different interleaving of the writers and the workers.
/// </summary>
internal class ScheduleHooks
{
    public static ScheduleHooks None { get; } = new();

    public virtual void At(SchedulePoint point)
    {
    }
}
