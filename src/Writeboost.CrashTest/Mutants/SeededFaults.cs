using Writeboost.Cache.Core;

namespace Writeboost.CrashTest.Mutants;

/// <summary>
/// The seeded bugs as answers at the device's decision points: each overrides one of <see cref="FaultHooks"/>
/// (its name says which rule it breaks; <see cref="MutantCatalogue"/> says what catches it).
/// </summary>
internal static class SeededFaults
{
    internal sealed class WritebackGivesUpAfterError : FaultHooks
    {
        internal override bool WritebackRetriesAfterError => false;
    }

    internal sealed class NbdFuaWriteZeroesSkipsFlush : Nbd.NbdServerFaults
    {
        internal override bool FuaWriteZeroesFlushesBeforeAck => false;
    }

    internal sealed class SecondGapKeepsItsSlot : FaultHooks
    {
        internal override bool TombstonesEveryDroppedSegment => false;
    }

    internal sealed class WriteAroundSwitchKeepsPmemRecords : FaultHooks
    {
        internal override bool WriteAroundSwitchClearsPmem => false;
    }

    internal sealed class ReadCachesAroundWriteAround : FaultHooks
    {
        internal override bool WriteAroundKeepsReadCacheOut => false;
    }

    internal sealed class AckBeforePmemPersist : FaultHooks
    {
        internal override bool PmemWritesBackBeforeAck => false;
    }

    internal sealed class DropPmemFence : FaultHooks
    {
        internal override bool PmemFencesWrittenBackLines => false;
    }

    internal sealed class SkipCacheFlushBeforeAck : FaultHooks
    {
        internal override bool FlushesCacheBeforeAck => false;
    }

    internal sealed class TrustSegmentWithoutChecksum : FaultHooks
    {
        internal override bool SegmentChecksumHolds(bool computed) => true;
    }

    internal sealed class ReuseSlotBeforeWritebackFlushed : FaultHooks
    {
        internal override bool WritebackFlushesBackingBeforeClean => false;
    }

    internal sealed class RecoverySkipsItsFlush : FaultHooks
    {
        internal override bool RecoveryFlushesWhatItWrote => false;
    }

    internal sealed class PmemHoleNotRecorded : FaultHooks
    {
        internal override bool PmemHoleRecordWritten => false;
    }

    internal sealed class ReusePmemBufferOnceWritten : FaultHooks
    {
        internal override bool PmemBufferWaitsForDurableSegment => false;
    }

    internal sealed class FuaTrustsWrittenSegment : FaultHooks
    {
        internal override bool FuaWaitsForFlushOfWrittenSegment => false;
    }

    internal sealed class FlushPublishesBeforeWrite : FaultHooks
    {
        internal override bool FlushWorkerPublishesAfterWrite => false;
    }

    internal sealed class PmemRecordCrcSkipsData : FaultHooks
    {
        internal override bool PmemRecordCrcCoversData => false;
    }

    internal sealed class ReadBufferServesUnheldSectors : FaultHooks
    {
        internal override bool BufferServesOnlyHeldSectors => false;
    }

    internal sealed class CompactMetablockClaimsWholeBlock : FaultHooks
    {
        internal override byte DirtyBitsToSeal(byte dirtyBits, int entryBytes) =>
            entryBytes == Cache.Format.MetablockOnDisk.CompactSizeBytes && dirtyBits != 0 ? Cache.Format.Units.FullBlockBits : dirtyBits;
    }

    internal sealed class PoisonTornTail : FaultHooks
    {
        internal override bool FailedChecksumIsDamage(bool shownDurable) => true;
    }

    internal sealed class IgnoreCacheFlushError : FaultHooks
    {
        internal override bool CacheFlushErrorFails => false;
    }

    internal sealed class WritebackIgnoresWriteError : FaultHooks
    {
        internal override bool WritebackWriteErrorFailsBatch => false;
    }

    internal sealed class StopAtDamagedSegment : FaultHooks
    {
        internal override bool WalkGoesPastDamage => false;
    }

    internal sealed class PoisonReadsOldData : FaultHooks
    {
        internal override bool PoisonedBlockFailsReads => false;
    }

    internal sealed class ReplayDamagedBlocks : FaultHooks
    {
        internal override bool DamagedEntriesAreLost => false;
    }

    internal sealed class ClaimNothingDurable : FaultHooks
    {
        internal override ulong DurableIdToClaim(ulong durableId) => 0;
    }

    internal sealed class PmemDamageAsTorn : FaultHooks
    {
        internal override bool PmemVouchedRecordWasAcknowledged => false;
    }

    internal sealed class ReadOnlyWritesThrough : FaultHooks
    {
        internal override bool ReadOnlyOpenWritesToOverlay => false;
    }
}
