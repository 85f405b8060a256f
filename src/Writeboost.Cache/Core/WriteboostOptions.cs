namespace Writeboost.Cache.Core;

/// <summary>How to open a writeboost device, beyond its table.</summary>
public sealed record WriteboostOptions
{
    /// <summary>Format the cache even if it holds a cache already (dirty data included). <c>wb create --reformat</c>.</summary>
    public bool Reformat { get; init; }

    /// <summary>RAM buffers in the pool (dm-writeboost: 8). A writer waits only when all of them are being flushed.</summary>
    public int BufferPoolSize { get; init; } = 8;

    /// <summary>Dispose the backing and cache devices when the writeboost device is disposed.</summary>
    public bool OwnsDevices { get; init; }

    /// <summary>
    /// Recover and serve reads only: no flush, writeback or modulator thread (the crash harness opens thousands
    /// of recovered states a second just to read them).
    /// </summary>
    internal bool WithoutWorkers { get; init; }

    /// <summary>Seeded bugs, selectable only by the crash harness (internal): proof that it catches what it must.</summary>
    internal Mutant Mutant { get; init; }

    /// <summary>How long writeback pauses after a failed batch before trying it again (the fault sweep shortens it).</summary>
    internal TimeSpan WritebackRetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The modulator's second: its tick, and the unit of <c>update_sb_record_interval</c> and
    /// <c>sync_data_interval</c>. The crash harness shortens it, so a workload of milliseconds sees the periodic
    /// work (background writeback, record updates, data syncs) that a real second would hide from it.
    /// </summary>
    internal TimeSpan ModulatorSecond { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Called at the windows where thread order matters (the crash harness perturbs them).</summary>
    internal ScheduleHooks Schedule { get; init; } = ScheduleHooks.None;

    /// <summary>
    /// Open even when recovery finds a durable segment (or pmem record) whose block list is damaged, so the blocks
    /// it held are unknown: the segment is given up (replaced by an empty one, durably) and those blocks read
    /// their older data. Without it such a cache is refused with an error naming the segment. <c>--accept-loss</c>.
    /// </summary>
    public bool AcceptDataLoss { get; init; }

    /// <summary>
    /// Look, never touch: recovery runs as usual, but everything it would write (zeroed headers, tombstones,
    /// segments rebuilt from pmem, the superblock flags) goes to an overlay in memory, and the device refuses
    /// writes. <c>wb status</c> opens this way, so looking at a device never changes it.
    /// </summary>
    public bool ReadOnly { get; init; }
}

/// <summary>The crash harness's seeded bugs. None in production: only the harness can set one.</summary>
internal enum Mutant
{
    None,
    /// <summary>Mode 1: acknowledge a write before its pmem lines are written back and fenced.</summary>
    AckBeforePmemPersist,
    /// <summary>Mode 1: write back the pmem lines but drop the fence.</summary>
    DropPmemFence,
    /// <summary>Mode 0: acknowledge a FUA/flush after writing the partial log, without the cache-device flush.</summary>
    SkipCacheFlushBeforeAck,
    /// <summary>Replay a segment without verifying its checksum.</summary>
    TrustSegmentWithoutChecksum,
    /// <summary>Replay like the kernel: every valid slot in ring order, across id gaps, and zero nothing.</summary>
    ReplayStaleAfterGap,
    /// <summary>Mark written-back blocks clean (and free their slots) without flushing the backing store.</summary>
    ReuseSlotBeforeWritebackFlushed,
    /// <summary>Treat a failed cache-device flush as done: FUA and flush are acknowledged anyway.</summary>
    IgnoreCacheFlushError,
    /// <summary>Writeback skips a block whose backing write failed, and marks it clean with the rest.</summary>
    WritebackIgnoresWriteError,
    /// <summary>Recovery writes what it repairs (segments rebuilt from pmem, tombstones, zeroed headers) but does not flush it before the device goes on.</summary>
    RecoverySkipsItsFlush,
    /// <summary>Mode 1: a pmem buffer is reused once its segment is written to the cache device, not once it is durable there.</summary>
    ReusePmemBufferOnceWritten,
    /// <summary>Mode 1: a pmem record's CRC covers the record but not the slot's data.</summary>
    PmemRecordCrcSkipsData,
    /// <summary>A read of a block in a RAM buffer takes every requested sector from the buffer, not only those it holds.</summary>
    ReadBufferServesUnheldSectors,
    /// <summary>Mode 0: a FUA write whose segment the flush worker has already written returns without waiting for the cache flush.</summary>
    FuaTrustsWrittenSegment,
    /// <summary>The flush worker counts a segment as written to the cache device just before writing it.</summary>
    FlushPublishesBeforeWrite,
    /// <summary>Order 11's compact metablocks are sealed with every dirty bit set (a partial block claims all eight sectors).</summary>
    CompactMetablockClaimsWholeBlock,
    /// <summary>Recovery ends its walk at the first segment that fails its checksum, as the kernel does, even a durable one.</summary>
    StopAtDamagedSegment,
    /// <summary>A poisoned block reads its older data instead of failing.</summary>
    PoisonReadsOldData,
    /// <summary>A damaged durable segment whose block list is intact is replayed whole, damaged blocks included.</summary>
    ReplayDamagedBlocks,
    /// <summary>Every segment that fails its checksum is taken for damage to durable data, a crash's torn tail too.</summary>
    PoisonTornTail,
    /// <summary>Segment headers and the superblock record vouch for nothing (durable id 0).</summary>
    ClaimNothingDurable,
    /// <summary>Mode 1: a damaged pmem record of an acknowledged write is discarded as torn, and its block reads older data.</summary>
    PmemDamageAsTorn,
    /// <summary>A read-only open (wb status) writes what recovery does to the devices themselves.</summary>
    ReadOnlyWritesThrough,
}
