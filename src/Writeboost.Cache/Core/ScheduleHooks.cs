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

    // The ends of the lock's scopes (DeviceMonitor.Enter): each is a window another thread may run in.

    /// <summary>The flush worker, after checking under the lock whether it has work.</summary>
    FlushWorkerAfterIdleCheck,
    /// <summary>The flush worker, after taking the next sealed segment (or a flush request).</summary>
    FlushWorkerAfterTakingSegment,
    /// <summary>The flush worker, after deciding whether a barrier needs the cache flushed.</summary>
    FlushWorkerAfterFlushDecision,
    /// <summary>The flush worker, after publishing a segment written (and durable).</summary>
    FlushWorkerAfterPublishing,
    /// <summary>The flush worker, after publishing a segment before writing it (a seeded bug's path).</summary>
    FlushWorkerAfterPublishingEarly,
    /// <summary>The modulator, after setting the backing store's utilisation.</summary>
    WritebackAfterUtilisation,
    /// <summary>drop_caches, after waiting for writeback.</summary>
    WritebackAfterDropCachesWait,
    /// <summary>Writeback, after checking whether it has work.</summary>
    WritebackAfterIdleCheck,
    /// <summary>Writeback, after choosing and snapshotting a batch.</summary>
    WritebackAfterChoosingBatch,
    /// <summary>Writeback, after marking a batch clean and freeing its slots.</summary>
    WritebackAfterMarkingClean,
    /// <summary>A barrier (flush, FUA), after choosing the segment it must make durable.</summary>
    BarrierAfterChoosingTarget,
    /// <summary>A barrier, after its segment became durable.</summary>
    BarrierAfterDurable,
    /// <summary>A reader, after planning where each piece comes from (pinning what it reads).</summary>
    ReaderAfterPlanning,
    /// <summary>A reader, after releasing its pins.</summary>
    ReaderAfterReleasingPlans,
    /// <summary>A status, after its snapshot.</summary>
    StatusAfterSnapshot,
    /// <summary>clear_stat, after clearing the counters.</summary>
    MessageAfterClearStat,
    /// <summary>clear_poison, after listing the poisoned blocks.</summary>
    ClearPoisonAfterListing,
    /// <summary>A FUA writer, after checking whether its segment was written.</summary>
    WriterAfterCheckingWritten,
    /// <summary>A writer, after placing a block piece (its slot reserved, mode 1: before its copy into pmem).</summary>
    WriterAfterPlacing,
    /// <summary>A mode-1 writer, after its placement into pmem completed (its pin released).</summary>
    WriterAfterPmemPlacement,
    /// <summary>A write-around writer, after its backing write, its blocks open to read caching again.</summary>
    WriteAroundAfterBackingWrite,
    /// <summary>The superblock record's writer, after reading what is durable (before writing the record).</summary>
    RecordAfterReadingDurable,
    /// <summary>The periodic record, after reading the last written-back id.</summary>
    RecordAfterReadingWrittenBack,
    /// <summary>A mode-1 writer opening a segment, letting the lock go to bind its pmem buffer (a persist; DeviceMonitor.Leave).</summary>
    AcquireBeforePmemBind,
    /// <summary>A mode-1 reader staging a block, letting the lock go to write its slot's hole record (DeviceMonitor.Leave).</summary>
    StagerBeforePmemHole,
    /// <summary>A writer of part of a block whose other dirty sectors are on the cache device, letting the lock go to read them (DeviceMonitor.Leave).</summary>
    WriterBeforeReadingOldCopy,
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
