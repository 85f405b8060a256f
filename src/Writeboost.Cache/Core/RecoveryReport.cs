namespace Writeboost.Cache.Core;

/// <summary>What opening a cache found and did.</summary>
public sealed record RecoveryReport(
    bool Formatted,
    ulong SuperblockRecordId,
    ulong FirstReplayedId,
    ulong LastReplayedId,
    int SegmentsReplayed,
    int SegmentsDiscarded,
    long DirtyBlocksRecovered,
    string? StopReason,
    IReadOnlyList<string> Warnings)
{
    /// <summary>Mode 1: the pmem buffer was blank (or reformatted) and got formatted.</summary>
    public bool PmemFormatted { get; init; }

    /// <summary>Opened with <c>write_around_mode 1</c>: what recovery found was written back, then the cache formatted (<see cref="Formatted"/>).</summary>
    public bool DrainedForWriteAround { get; init; }
    /// <summary>Mode 1: segments rebuilt from pmem buffers and written to the cache device.</summary>
    public int PmemSegmentsRebuilt { get; init; }
    /// <summary>Mode 1: records whose CRC failed that no later record vouches for (writes in flight at the crash, as far as pmem shows).</summary>
    public int PmemTornRecords { get; init; }

    /// <summary>Every segment id up to this was shown durable by the media (segment headers, the superblock record, pmem).</summary>
    public ulong ProvenDurableId { get; init; }
    /// <summary>The segments recovery did not simply replay: damage, a crash's torn tail, a loss accepted, a damaged pmem rebuild.</summary>
    public IReadOnlyList<SegmentRecovery> Segments { get; init; } = [];
    /// <summary>Blocks whose newest durable copy is lost: reads of them fail until they are rewritten or clear_poison.</summary>
    public int PoisonedBlocks { get; init; }
    /// <summary>A durable segment's blocks were unknown and the device was opened with the loss accepted.</summary>
    public bool LossAccepted { get; init; }

    public static RecoveryReport None { get; } = new(false, 0, 0, 0, 0, 0, 0, null, []);
}

/// <summary>One segment recovery did not simply replay.</summary>
/// <param name="Kind">"damage" (durable, good blocks replayed, damaged ones poisoned), "crash-tail" (nothing shows it
/// was durable: taken for a crash's torn write and dropped), "lost" (durable, its blocks unknown: given up, the loss
/// accepted), "pmem" (rebuilt from the pmem buffer, some acknowledged records damaged).</param>
public sealed record SegmentRecovery(ulong Id, long Slot, string Kind, int BlocksReplayed, int BlocksPoisoned, string Detail);
