using Writeboost.Cache.Format;
using Writeboost.Devices;

namespace Writeboost.Cache.Inspect;

/// <summary>One slot of the ring as it is on the media.</summary>
public sealed record SlotReport(long Slot, ulong Id, int Length, uint StoredChecksum, uint ComputedChecksum, bool IdMatchesSlot, IReadOnlyList<MetablockOnDisk> Metablocks)
{
    public bool IsEmpty => Id == 0;
    public bool ChecksumValid => StoredChecksum == ComputedChecksum;
}

/// <summary>What a cache device holds, read without opening (or changing) it.</summary>
public sealed record CacheReport(SuperblockState Superblock, int SegmentSizeOrder, long NrSegments, int BlocksPerSegment, ulong LastWritebackId, bool? RecordChecksumValid, byte Flags, IReadOnlyList<SlotReport> Slots);

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
        if (superblock.State is SuperblockState.Unformatted)
        {
            throw new InvalidDataException($"{cache.Name} holds no writeboost cache (no magic in sector 0)");
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
        return new CacheReport(superblock.State, order, geometry.NrSegments, geometry.BlocksPerSegment,
            record.LastWritebackId, record.ChecksumValid, superblock.Header?.Flags ?? 0, slots);
    }
}
