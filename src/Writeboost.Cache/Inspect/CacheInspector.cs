using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Recovery;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Cache.Inspect;

/// <summary>One slot of the ring as it is on the media.</summary>
public sealed record SlotReport(long Slot, ulong Id, int Length, uint StoredChecksum, uint ComputedChecksum, bool IdMatchesSlot, IReadOnlyList<MetablockOnDisk> Metablocks)
{
    public bool IsEmpty => Id == 0 && HeaderExtension != HeaderExtensionState.Damaged;
    public bool ChecksumValid => StoredChecksum == ComputedChecksum;
    /// <summary>Our header extension: absent (kernel-made), intact, or damaged (its checksum fails: damage, never a crash).</summary>
    public HeaderExtensionState HeaderExtension { get; init; }
}

/// <summary>What a cache device holds, read without opening (or changing) it.</summary>
public sealed record CacheReport(SuperblockState Superblock, int SegmentSizeOrder, long NrSegments, int BlocksPerSegment, ulong LastWritebackId, bool? RecordChecksumValid, byte Flags, IReadOnlyList<SlotReport> Slots)
{
    /// <summary>Where recovery's walk starts: the record, or what the ring says when the record is damaged.</summary>
    public ulong ReplayFromId { get; init; }
    /// <summary>Why the record is not used as it is, or null.</summary>
    public string? RecordWarning { get; init; }
    /// <summary>The last segment recovery keeps (replayed, damaged, rebuilt or a tombstone); ReplayFromId when none.</summary>
    public ulong ReplayableThroughId { get; init; }
    /// <summary>Why the walk ends there.</summary>
    public string? WalkEnd { get; init; }
    /// <summary>Intact segments (in their slot, checksum good) recovery would not replay (it refuses the cache).</summary>
    public IReadOnlyList<ulong> UnreachableIds { get; init; } = [];
    /// <summary>The cache's identity (empty for a kernel-made cache).</summary>
    public Guid CacheUuid { get; init; }
    /// <summary>Every segment id up to this is shown durable by the media (headers, the record, pmem).</summary>
    public ulong ProvenDurableId { get; init; }
    /// <summary>The segments recovery would not simply replay, with what it would do to each.</summary>
    public IReadOnlyList<SegmentCheck> Segments { get; init; } = [];
    /// <summary>Blocks whose newest durable copy is lost: reads of them will fail (poisoned).</summary>
    public IReadOnlyList<PoisonedBlock> PoisonedBlocks { get; init; } = [];
    /// <summary>Set when recovery would refuse the cache (a durable segment's blocks are unknown), unless the loss is accepted.</summary>
    public string? Refusal { get; init; }
    /// <summary>Problems the walk reported (damaged headers no crash leaves, an inferred record, pmem buffer headers).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
    /// <summary>With a pmem region: what its buffers hold.</summary>
    public PmemReport? Pmem { get; init; }
}

/// <summary>What recovery would do with one segment it does not simply replay.</summary>
/// <param name="Fate">damaged, crash_tail, discarded, lost, from_pmem (snake case in JSON).</param>
public sealed record SegmentCheck(ulong Id, long Slot, SegmentFate Fate, bool Durable, int BlocksReplayed, int BlocksPoisoned, string? Problem);

/// <summary>One buffer of a mode-1 pmem region, as recovery would read it.</summary>
/// <param name="LostRecords">Acknowledged records whose data is damaged: their blocks are poisoned.</param>
/// <param name="LostUnknownRecords">Acknowledged records whose fields are damaged too: the blocks are unknown.</param>
public sealed record PmemBufferReport(ulong SegmentId, int Records, int TornRecords, int DamagedRecords, int LostRecords = 0, int LostUnknownRecords = 0);

/// <summary>What a mode-1 pmem region holds for a cache, read only.</summary>
/// <param name="Gap">What the walk reports about the pmem buffers (a damaged buffer header, ...), or null.</param>
public sealed record PmemReport(PmemHeaderState Header, string? HeaderProblem, int PoolSize, IReadOnlyList<PmemBufferReport> Buffers, string? Gap);

/// <summary>
/// Reads the superblock, the record and every segment slot of a cache device (and a mode-1 pmem region), as
/// dm-writeboost-tools' meta and check do, and runs recovery's own walk (<see cref="RingWalk"/>) on them: read
/// only, nothing is replayed or written. So <c>wb check</c> says exactly what recovery will do.
/// </summary>
public static class CacheInspector
{
    /// <exception cref="InvalidDataException">the device holds no writeboost cache.</exception>
    public static CacheReport Inspect(IBlockDevice cache, int? segmentSizeOrder = null, PmemRegion? pmem = null)
    {
        ArgumentNullException.ThrowIfNull(cache);
        byte[] block = new byte[Units.BlockBytes];
        cache.Read(0, block);
        SuperblockReadResult superblock = SuperblockHeaderOnDisk.Read(block);
        if (superblock.State is SuperblockState.Unformatted or SuperblockState.FormatInterrupted && segmentSizeOrder is null)
        {
            throw new InvalidDataException($"{cache.Name} holds no writeboost cache (no magic in sector 0; give the segment size order to inspect its slots anyway)");
        }
        int order = segmentSizeOrder ?? superblock.Header?.SegmentSizeOrder ?? CacheGeometry.DefaultSegmentSizeOrder;
        CacheGeometry geometry = CacheGeometry.For(cache.SizeBytes, order, cache.Name);
        cache.Read(SuperblockRecordOnDisk.WriteOffsetBytes, block);
        SuperblockRecordOnDisk.Record record = SuperblockRecordOnDisk.Read(block);
        using SegmentScratch scratch = new((int)geometry.SegmentSizeBytes); // a campaign inspects every state it may carry
        byte[] segment = scratch.Bytes;
        List<SlotReport> slots = [];
        for (long slot = 0; slot < geometry.NrSegments; slot++)
        {
            SegmentSlotRead read = SegmentLogReader.Read(cache, geometry, slot, segment);
            SegmentHeaderOnDisk header = read.Header;
            int length = Math.Min((int)header.Length, geometry.BlocksPerSegment); // the metablocks are all in the first block
            uint computed = read.LengthFits ? read.ComputedChecksum : ~header.Checksum;
            List<MetablockOnDisk> metablocks = [];
            for (int i = 0; i < length; i++)
            {
                metablocks.Add(MetablockOnDisk.Read(segment, i, geometry.MetablockBytes));
            }
            slots.Add(new SlotReport(slot, header.Id, header.Length, header.Checksum, computed,
                read.IsEmpty || read.IdFitsSlot, metablocks)
            {
                HeaderExtension = SegmentHeaderExtension.Read(segment).State,
            });
        }
        bool ours = superblock.State == SuperblockState.Formatted;
        (PmemReport? pmemReport, PmemRecovery? fromPmem) = pmem is null ? (null, null) : ReadPmem(pmem, geometry, superblock.Header?.CacheUuid ?? Guid.Empty);
        // The backing size is in our extension; a kernel-made cache has none, so only alignment is checked there.
        long backingSectors = superblock.Header is { BackingSizeBytes: > 0 } extension ? Units.BytesToSectors(extension.BackingSizeBytes / Units.BlockBytes * Units.BlockBytes) : long.MaxValue;
        RingWalkResult walk;
        using (fromPmem)
        {
            walk = RingWalk.Run(new RingWalk.Input(cache, geometry, record, ours, backingSectors, fromPmem, AcceptLoss: false, FaultHooks.None));
        }
        WalkedSegment? firstDropped = walk.Segments.FirstOrDefault(s => s.Fate == SegmentFate.Discarded);
        List<WalkedSegment> unusual = walk.Segments.Where(s => s.Fate != SegmentFate.Replayed || s.BlocksPoisoned > 0).ToList();
        return new CacheReport(superblock.State, order, geometry.NrSegments, geometry.BlocksPerSegment,
            record.LastWritebackId, record.ChecksumValid, superblock.Header?.Flags ?? 0, slots)
        {
            ReplayFromId = walk.RecordId,
            RecordWarning = walk.RecordWarning,
            ReplayableThroughId = Math.Max(walk.LastKeptId, walk.RecordId),
            WalkEnd = firstDropped is not null ? $"segment {firstDropped.Id}: {firstDropped.Problem}" : $"segment {Math.Max(walk.LastKeptId, walk.RecordId) + 1}: nothing more in the ring",
            UnreachableIds = walk.UnreachableIds,
            CacheUuid = superblock.Header?.CacheUuid ?? Guid.Empty,
            ProvenDurableId = walk.ProvenDurableId,
            Segments = unusual.Select(s => new SegmentCheck(s.Id, s.Slot, s.Fate, s.Durable, s.BlocksReplayed, s.BlocksPoisoned, s.Problem)).ToList(),
            PoisonedBlocks = Poisoned(walk, geometry),
            Refusal = walk.Refusal,
            Warnings = walk.Warnings.Where(w => w != walk.RecordWarning).ToList(),
            Pmem = pmemReport,
        };
    }

    /// <summary>The blocks recovery would poison: lost entries of kept segments not superseded by a later copy.</summary>
    private static List<PoisonedBlock> Poisoned(RingWalkResult walk, CacheGeometry geometry)
    {
        PoisonSet poison = new();
        foreach (WalkedSegment segment in walk.Segments.Where(s => s.Fate is SegmentFate.Replayed or SegmentFate.Damaged or SegmentFate.FromPmem))
        {
            foreach (WalkedEntry entry in segment.Entries)
            {
                if (entry.Lost)
                {
                    poison.Poison(entry.Block, entry.Bits, (int)(segment.Slot * geometry.BlocksPerSegment + entry.Index), segment.Id);
                }
                else
                {
                    poison.Clear(entry.Block, entry.Bits, segment.Id);
                }
            }
        }
        return poison.List(geometry.BlocksPerSegment);
    }

    /// <summary>A pmem region's header and buffers, against the cache it should belong to (nothing is written).</summary>
    private static (PmemReport Report, PmemRecovery? Recovery) ReadPmem(PmemRegion region, CacheGeometry geometry, Guid cacheUuid)
    {
        byte[] header = new byte[Math.Min(PmemLayout.RegionHeaderBytes, region.LengthBytes)];
        region.Read(0, header);
        if (header.Length < PmemLayout.RegionHeaderBytes)
        {
            return (new PmemReport(PmemHeaderState.Foreign, $"the region is {region.LengthBytes} bytes, smaller than its header", 0, [], null), null);
        }
        int poolSize = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(14));
        PmemLayout layout = new(geometry.SegmentSizeOrder, Math.Max(1, poolSize), geometry.BlocksPerSegment);
        PmemHeaderCheck check = layout.CheckHeader(header, cacheUuid);
        if (check.State != PmemHeaderState.Ours)
        {
            return (new PmemReport(check.State, check.Problem, poolSize, [], null), null);
        }
        if (region.LengthBytes < layout.RegionBytes)
        {
            return (new PmemReport(PmemHeaderState.Foreign, $"the region is {region.LengthBytes} bytes; its header describes {layout.RegionBytes}", poolSize, [], null), null);
        }
        // Ours, and no recorded uuid to compare: the pool is opened as it is, never formatted.
        PmemBufferPool pool = PmemBufferPool.Open(region, layout, new PmemClaim(cacheUuid, region.Name, Guid.Empty, OwnBufferMayHoldWrites: false, Format: false, Discard: false), out _);
        PmemRecovery recovered = pool.Recover(0);
        return (new PmemReport(check.State, null, poolSize,
            recovered.Buffers.Select(b => new PmemBufferReport(b.SegmentId, b.Slots.Count(s => !s.Lost), b.TornSlots, b.DamagedSlots, b.LostSlots, b.LostUnknownSlots)).ToList(),
            recovered.Warnings.Count == 0 ? null : string.Join("; ", recovered.Warnings)), recovered);
    }
}
