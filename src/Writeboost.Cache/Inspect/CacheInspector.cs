using Writeboost.Cache.Format;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Cache.Inspect;

/// <summary>One slot of the ring as it is on the media.</summary>
public sealed record SlotReport(long Slot, ulong Id, int Length, uint StoredChecksum, uint ComputedChecksum, bool IdMatchesSlot, IReadOnlyList<MetablockOnDisk> Metablocks)
{
    public bool IsEmpty => Id == 0;
    public bool ChecksumValid => StoredChecksum == ComputedChecksum;
}

/// <summary>What a cache device holds, read without opening (or changing) it.</summary>
public sealed record CacheReport(SuperblockState Superblock, int SegmentSizeOrder, long NrSegments, int BlocksPerSegment, ulong LastWritebackId, bool? RecordChecksumValid, byte Flags, IReadOnlyList<SlotReport> Slots)
{
    /// <summary>Where recovery's walk starts: the record, or what the ring says when the record is damaged.</summary>
    public ulong ReplayFromId { get; init; }
    /// <summary>Why the record is not used as it is, or null.</summary>
    public string? RecordWarning { get; init; }
    /// <summary>The last segment recovery would replay (ReplayFromId when none).</summary>
    public ulong ReplayableThroughId { get; init; }
    /// <summary>Why the walk ends there.</summary>
    public string? WalkEnd { get; init; }
    /// <summary>Intact segments (in their slot, checksum good) newer than the walk reaches: recovery cannot use them.</summary>
    public IReadOnlyList<ulong> UnreachableIds { get; init; } = [];
    /// <summary>The cache's identity (empty for a kernel-made cache).</summary>
    public Guid CacheUuid { get; init; }
}

/// <summary>One buffer of a mode-1 pmem region, as recovery would read it after the cache replay.</summary>
public sealed record PmemBufferReport(ulong SegmentId, int Records, int TornRecords, int DamagedRecords);

/// <summary>What a mode-1 pmem region holds for a cache, read only.</summary>
/// <param name="Gap">Set when a buffer holds a segment that recovery cannot reach (the segment before it is neither on the cache device nor in pmem).</param>
public sealed record PmemReport(PmemHeaderState Header, string? HeaderProblem, int PoolSize, IReadOnlyList<PmemBufferReport> Buffers, string? Gap);

/// <summary>
/// Reads the superblock, the record and every segment slot of a cache device, as dm-writeboost-tools' meta and
/// check do: read only, nothing is replayed or written.
/// </summary>
public static class CacheInspector
{
    /// <exception cref="InvalidDataException">the device holds no writeboost cache.</exception>
    public static CacheReport Inspect(IBlockDevice cache, int? segmentSizeOrder = null)
    {
        ArgumentNullException.ThrowIfNull(cache);
        byte[] block = new byte[Units.BlockBytes];
        cache.Read(0, block);
        SuperblockReadResult superblock = SuperblockHeaderOnDisk.Read(block);
        if (superblock.State is SuperblockState.Unformatted && segmentSizeOrder is null)
        {
            throw new InvalidDataException($"{cache.Name} holds no writeboost cache (no magic in sector 0; give the segment size order to inspect its slots anyway)");
        }
        int order = segmentSizeOrder ?? superblock.Header?.SegmentSizeOrder ?? CacheGeometry.DefaultSegmentSizeOrder;
        CacheGeometry geometry = CacheGeometry.For(cache.SizeBytes, order, cache.Name);
        cache.Read(SuperblockRecordOnDisk.WriteOffsetBytes, block);
        SuperblockRecordOnDisk.Record record = SuperblockRecordOnDisk.Read(block);
        byte[] segment = new byte[geometry.SegmentSizeBytes];
        List<SlotReport> slots = [];
        for (long slot = 0; slot < geometry.NrSegments; slot++)
        {
            cache.Read(geometry.SegmentStartBytes(slot), segment.AsSpan(0, Units.BlockBytes));
            SegmentHeaderOnDisk header = SegmentHeaderOnDisk.Read(segment);
            int length = Math.Min((int)header.Length, geometry.BlocksPerSegment);
            if (length > 0)
            {
                cache.Read(geometry.DataBlockBytes(slot, 0), segment.AsSpan(Units.BlockBytes, (int)Units.BlocksToBytes(length)));
            }
            uint computed = header.Length > geometry.BlocksPerSegment ? ~header.Checksum : SegmentHeaderOnDisk.ComputeChecksum(segment, length);
            List<MetablockOnDisk> metablocks = [];
            for (int i = 0; i < length; i++)
            {
                metablocks.Add(MetablockOnDisk.Read(segment, i, geometry.MetablockBytes));
            }
            slots.Add(new SlotReport(slot, header.Id, header.Length, header.Checksum, computed,
                header.Id == 0 || geometry.SlotOf(header.Id) == slot, metablocks));
        }
        ulong from = SuperblockRecordOnDisk.Infer(record, slots.Select(s => s.Id).ToList(), geometry,
            ours: superblock.State == SuperblockState.Formatted, out string? recordWarning);
        // The backing size is in our extension; a kernel-made cache has none, so only alignment is checked there.
        long backingSectors = superblock.Header is { BackingSizeBytes: > 0 } extension ? Units.BytesToSectors(extension.BackingSizeBytes / Units.BlockBytes * Units.BlockBytes) : long.MaxValue;
        (ulong through, string walkEnd) = Walk(slots, geometry, from, backingSectors);
        List<ulong> unreachable = slots.Where(s => !s.IsEmpty && s.IdMatchesSlot && s.ChecksumValid && s.Id > through).Select(s => s.Id).Order().ToList();
        return new CacheReport(superblock.State, order, geometry.NrSegments, geometry.BlocksPerSegment,
            record.LastWritebackId, record.ChecksumValid, superblock.Header?.Flags ?? 0, slots)
        {
            ReplayFromId = from,
            RecordWarning = recordWarning,
            ReplayableThroughId = through,
            WalkEnd = walkEnd,
            UnreachableIds = unreachable,
            CacheUuid = superblock.Header?.CacheUuid ?? Guid.Empty,
        };
    }

    /// <summary>
    /// Reads a mode-1 pmem region against the cache it belongs to: its header, and the buffers recovery would
    /// rebuild after the cache replay ends (their records, torn and damaged ones). Nothing is written.
    /// </summary>
    public static PmemReport InspectPmem(PmemRegion region, CacheReport cache)
    {
        ArgumentNullException.ThrowIfNull(region);
        ArgumentNullException.ThrowIfNull(cache);
        byte[] header = new byte[Math.Min(PmemLayout.RegionHeaderBytes, region.LengthBytes)];
        region.Read(0, header);
        if (header.Length < PmemLayout.RegionHeaderBytes)
        {
            return new PmemReport(PmemHeaderState.Foreign, $"the region is {region.LengthBytes} bytes, smaller than its header", 0, [], null);
        }
        int poolSize = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(14));
        PmemLayout layout = new(cache.SegmentSizeOrder, Math.Max(1, poolSize), cache.BlocksPerSegment);
        PmemHeaderCheck check = layout.CheckHeader(header, cache.CacheUuid);
        if (check.State != PmemHeaderState.Ours)
        {
            return new PmemReport(check.State, check.Problem, poolSize, [], null);
        }
        if (region.LengthBytes < layout.RegionBytes)
        {
            return new PmemReport(PmemHeaderState.Foreign, $"the region is {region.LengthBytes} bytes; its header describes {layout.RegionBytes}", poolSize, [], null);
        }
        PmemBufferPool pool = PmemBufferPool.Open(region, layout, cache.CacheUuid, format: false, out _);
        List<RecoveredBuffer> buffers = pool.Recover(cache.ReplayableThroughId, out string? gap);
        return new PmemReport(check.State, null, poolSize,
            buffers.Select(b => new PmemBufferReport(b.SegmentId, b.Slots.Count, b.TornSlots, b.DamagedSlots)).ToList(), gap);
    }

    /// <summary>
    /// Recovery's walk, on the report: ids from + 1, from + 2, ... while each one's slot holds it intact and every
    /// metablock can be replayed (the same stops as <c>WriteboostDevice.Replay</c>).
    /// </summary>
    private static (ulong Through, string End) Walk(List<SlotReport> slots, CacheGeometry geometry, ulong from, long backingSectors)
    {
        ulong id = from + 1;
        while (true)
        {
            SlotReport slot = slots[(int)geometry.SlotOf(id)];
            if (slot.Id != id)
            {
                return (id - 1, slot.IsEmpty ? $"segment {id}: slot {slot.Slot} is empty" : $"segment {id}: slot {slot.Slot} holds segment {slot.Id}");
            }
            if (!slot.ChecksumValid)
            {
                return (id - 1, $"segment {id}: checksum mismatch");
            }
            for (int i = 0; i < slot.Metablocks.Count; i++)
            {
                if (slot.Metablocks[i].Problem(i, backingSectors) is { } problem)
                {
                    return (id - 1, $"segment {id}: {problem}");
                }
            }
            id++;
        }
    }
}
