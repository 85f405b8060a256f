using Writeboost.Cache.Recovery;

namespace Writeboost.Cache.Core;

/// <summary>
/// The decision points where the device keeps acknowledged data safe: it asks here at each one, and the answers of
/// this class are the product's own rules. The crash harness — the only other implementer, the class is internal —
/// plants a seeded bug by overriding one answer, to prove its sweeps catch what they must (its catalogue says which
/// bug overrides what). Each member is named for the rule its default keeps; none holds state.
/// </summary>
internal class FaultHooks
{
    /// <summary>The product: every rule kept.</summary>
    internal static readonly FaultHooks None = new();

    // The write path and the pool of pmem buffers.

    /// <summary>Mode 0: a FUA write whose segment the flush worker already wrote still waits for a cache-device flush.</summary>
    internal virtual bool FuaWaitsForFlushOfWrittenSegment => true;

    /// <summary>Mode 1: a pmem buffer is rebound only once its segment is durable on the cache device (not once merely written).</summary>
    internal virtual bool PmemBufferWaitsForDurableSegment => true;

    /// <summary>Mode 1 (dax): a placement writes back its pmem lines before the write is acknowledged.</summary>
    internal virtual bool PmemWritesBackBeforeAck => true;

    /// <summary>Mode 1 (dax): the written-back pmem lines are fenced.</summary>
    internal virtual bool PmemFencesWrittenBackLines => true;

    /// <summary>Mode 1: a slot the read cache stages (a clean block) gets its hole record before it counts as placed.</summary>
    internal virtual bool PmemHoleRecordWritten => true;

    /// <summary>Mode 1: a pmem record's CRC covers its slot's data.</summary>
    internal virtual bool PmemRecordCrcCoversData => true;

    /// <summary>Mode 1 recovery: a damaged record below the count a later record vouches for was acknowledged (damage, not a torn write).</summary>
    internal virtual bool PmemVouchedRecordWasAcknowledged => true;

    // The flush worker.

    /// <summary>The dirty bits a segment's metablock is sealed with (entries of <paramref name="entryBytes"/> bytes).</summary>
    internal virtual byte DirtyBitsToSeal(byte dirtyBits, int entryBytes) => dirtyBits;

    /// <summary>The durable id a segment header or the superblock record claims, given what a completed flush covers.</summary>
    internal virtual ulong DurableIdToClaim(ulong durableId) => durableId;

    /// <summary>A segment counts as written to the cache device only after its write returned.</summary>
    internal virtual bool FlushWorkerPublishesAfterWrite => true;

    /// <summary>Mode 0: a FUA or flush is acknowledged only after a cache-device flush.</summary>
    internal virtual bool FlushesCacheBeforeAck => true;

    /// <summary>A failed cache-device flush fails the device (nothing waiting on it is acknowledged).</summary>
    internal virtual bool CacheFlushErrorFails => true;

    // Writeback.

    /// <summary>A writeback batch that failed (a transient backing write error) is tried again after a pause, not given up.</summary>
    internal virtual bool WritebackRetriesAfterError => true;

    /// <summary>Written-back blocks are marked clean (and their slots freed) only after the backing store is flushed.</summary>
    internal virtual bool WritebackFlushesBackingBeforeClean => true;

    /// <summary>A failed backing write fails writeback's batch: nothing of it is marked clean.</summary>
    internal virtual bool WritebackWriteErrorFailsBatch => true;

    // The read path.

    /// <summary>A read of a poisoned block fails (its acknowledged data is lost; its older data is not served).</summary>
    internal virtual bool PoisonedBlockFailsReads => true;

    /// <summary>Write-around: no read caches a block while a write of it is on its way to the backing store.</summary>
    internal virtual bool WriteAroundKeepsReadCacheOut => true;

    /// <summary>A read of a block in a RAM buffer takes from the buffer only the sectors it holds.</summary>
    internal virtual bool BufferServesOnlyHeldSectors => true;

    // Recovery.

    /// <summary>Every dropped segment before a kept one becomes a tombstone (its slot marked), two in a row included.</summary>
    internal virtual bool TombstonesEveryDroppedSegment => true;

    /// <summary>Switching a mode-1 cache to write-around clears its pmem buffers' records before formatting the cache.</summary>
    internal virtual bool WriteAroundSwitchClearsPmem => true;

    /// <summary>How recovery walks the ring (the product: <see cref="RingWalk.Run"/>, which asks the hooks below).</summary>
    internal virtual RingWalkResult WalkRing(RingWalk.Input input) => RingWalk.Run(input);

    /// <summary>Whether a segment's checksum holds, given what was computed.</summary>
    internal virtual bool SegmentChecksumHolds(bool computed) => computed;

    /// <summary>The walk goes on past a segment it cannot replay (a crash's tail is dropped later, by what follows it).</summary>
    internal virtual bool WalkGoesPastDamage => true;

    /// <summary>A segment whose checksum fails is damage to data (its blocks poisoned) only when it was shown durable; else a crash's torn write.</summary>
    internal virtual bool FailedChecksumIsDamage(bool shownDurable) => shownDurable;

    /// <summary>A damaged durable segment's blocks whose entries fail their checks are lost (poisoned), not replayed.</summary>
    internal virtual bool DamagedEntriesAreLost => true;

    /// <summary>What recovery wrote (tombstones, rebuilt segments, zeroed headers) is flushed before the device goes on.</summary>
    internal virtual bool RecoveryFlushesWhatItWrote => true;

    /// <summary>A read-only open (<c>wb status</c>) writes what recovery does to an overlay in memory, never to the devices.</summary>
    internal virtual bool ReadOnlyOpenWritesToOverlay => true;
}
