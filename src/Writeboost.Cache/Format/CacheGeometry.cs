namespace Writeboost.Cache.Format;

/// <summary>
/// Where everything is on the cache device. The first 1 MiB (sectors 0..2047) is the superblock region:
/// the header in sector 0, the record in sector 2047. Segment slot k starts at sector 2048 + k * 2^order.
/// A segment id maps to slot (id - 1) % NrSegments; ids start at 1 and never wrap.
/// </summary>
public sealed record CacheGeometry
{
    public const int MinSegmentSizeOrder = 4;      // 8 KiB segments: 1 data block (tiny rings, for tests)
    public const int DefaultSegmentSizeOrder = 10; // 512 KiB, 127 blocks: dm-writeboost v2
    public const int MaxSegmentSizeOrder = 11;     // 1 MiB, 255 blocks: the RFC's segment; length is a u8
    public const long SuperblockRegionBytes = 1 << 20;
    public const int MinSegments = 2;

    private CacheGeometry(int segmentSizeOrder, long nrSegments)
    {
        SegmentSizeOrder = segmentSizeOrder;
        NrSegments = nrSegments;
    }

    public int SegmentSizeOrder { get; }
    public long NrSegments { get; }

    public long SegmentSizeBytes => Units.SectorsToBytes(1L << SegmentSizeOrder);
    /// <summary>Data blocks per segment: the segment less its 4 KiB metadata block.</summary>
    public int BlocksPerSegment => (int)(SegmentSizeBytes / Units.BlockBytes) - 1;
    public long NrCaches => NrSegments * BlocksPerSegment;
    /// <summary>Metablocks are 16 bytes (the kernel's) while they fit in the metadata block, 8 bytes beyond.</summary>
    public int MetablockBytes => SegmentHeaderOnDisk.SizeBytes + BlocksPerSegment * MetablockOnDisk.WideSizeBytes <= Units.BlockBytes
        ? MetablockOnDisk.WideSizeBytes
        : MetablockOnDisk.CompactSizeBytes;

    /// <summary>The geometry a cache device of <paramref name="cacheSizeBytes"/> bytes has.</summary>
    /// <exception cref="ArgumentOutOfRangeException">the order is out of range or the device holds fewer than two segments.</exception>
    public static CacheGeometry For(long cacheSizeBytes, int segmentSizeOrder, string cacheName = "cache device")
    {
        if (segmentSizeOrder is < MinSegmentSizeOrder or > MaxSegmentSizeOrder)
        {
            throw new ArgumentOutOfRangeException(nameof(segmentSizeOrder),
                $"segment_size_order {segmentSizeOrder} is out of range {MinSegmentSizeOrder}..{MaxSegmentSizeOrder}");
        }
        long segmentBytes = Units.SectorsToBytes(1L << segmentSizeOrder);
        long segments = cacheSizeBytes > SuperblockRegionBytes ? (cacheSizeBytes - SuperblockRegionBytes) / segmentBytes : 0;
        if (segments < MinSegments)
        {
            long needed = SuperblockRegionBytes + MinSegments * segmentBytes;
            throw new ArgumentOutOfRangeException(nameof(cacheSizeBytes),
                $"{cacheName} is {cacheSizeBytes} bytes: too small for the 1 MiB superblock region and {MinSegments} segments of {segmentBytes} bytes (needs at least {needed} bytes)");
        }
        return new CacheGeometry(segmentSizeOrder, segments);
    }

    public long SlotOf(ulong segmentId) => (long)((segmentId - 1) % (ulong)NrSegments);

    public long SegmentStartBytes(long slot) => SuperblockRegionBytes + slot * SegmentSizeBytes;

    /// <summary>Byte offset on the cache device of data block <paramref name="indexInSegment"/> of a slot.</summary>
    public long DataBlockBytes(long slot, int indexInSegment) => SegmentStartBytes(slot) + Units.BlocksToBytes(1 + indexInSegment);

    /// <summary>How many bytes a segment with <paramref name="length"/> blocks occupies when written (metadata + data).</summary>
    public static long WrittenBytes(int length) => Units.BlocksToBytes(1 + length);
}
