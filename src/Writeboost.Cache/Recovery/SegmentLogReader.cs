using System.Diagnostics;
using Writeboost.Cache.Format;
using Writeboost.Devices;

namespace Writeboost.Cache.Recovery;

/// <summary>
/// One slot of the cache device's segment log as read: its header and what holds of it. The rules for "this
/// slot holds a valid segment" are written here once, for every reader of the log — recovery's replay, the
/// kernel-style replay, <c>wb check</c>/<c>wb dump</c>, the probe for a damaged superblock, the harness:
/// <list type="number">
/// <item>the id is not 0 and belongs to the slot (segment X lives in slot (X - 1) mod nr_segments);</item>
/// <item>the length fits a segment (at most the blocks per segment);</item>
/// <item>the checksum (metablocks and the length data blocks, see <see cref="SegmentHeaderOnDisk"/>) holds.</item>
/// </list>
/// </summary>
/// <param name="ComputedChecksum">The checksum of what was read; only meaningful when <see cref="LengthFits"/>.</param>
public readonly record struct SegmentSlotRead(SegmentHeaderOnDisk Header, bool IdFitsSlot, bool LengthFits, uint ComputedChecksum)
{
    public bool IsEmpty => Header.Id == 0;

    public bool ChecksumHolds => LengthFits && ComputedChecksum == Header.Checksum;

    /// <summary>Rules 1–3: the slot holds an intact segment (its id is <see cref="SegmentHeaderOnDisk.Id"/>).</summary>
    public bool IsValid => !IsEmpty && IdFitsSlot && ChecksumHolds;

    /// <summary>The data blocks read (and checksummed): the header's length when it fits, else none.</summary>
    public int LengthRead => LengthFits ? Header.Length : 0;

    /// <summary>The checksum was computed from the header block and a kept CRC of the data, which was not read into the image.</summary>
    internal bool DataSkipped { get; init; }
}

/// <summary>Reads and validates slots of the segment log (see <see cref="SegmentSlotRead"/>).</summary>
public static class SegmentLogReader
{
    /// <summary>
    /// Reads slot <paramref name="slot"/> into <paramref name="segment"/> (at least a segment's bytes): its
    /// metadata block, then the data blocks its header names when their count fits. Then validates it.
    /// </summary>
    public static SegmentSlotRead Read(IBlockDevice cache, CacheGeometry geometry, long slot, Span<byte> segment) =>
        Read(cache, geometry, slot, segment, checksums: null);

    /// <summary>
    /// The same read, taking the data's CRC from <paramref name="checksums"/> where every data page is unchanged since
    /// it was kept (then only the header block is read: <see cref="SegmentSlotRead.DataSkipped"/>), and keeping it there
    /// after reading the data otherwise.
    /// </summary>
    internal static SegmentSlotRead Read(IBlockDevice cache, CacheGeometry geometry, long slot, Span<byte> segment, SegmentChecksumMemo? checksums)
    {
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(geometry);
        return ReadAt(cache, geometry.SegmentStartBytes(slot), geometry.BlocksPerSegment, segment, id => geometry.SlotOf(id) == slot, checksums);
    }

    /// <summary>
    /// The same read at <paramref name="startBytes"/> when the geometry is not known (a device whose superblock is
    /// blank): lengths up to <paramref name="maxLength"/> fit, and any id fits.
    /// </summary>
    public static SegmentSlotRead ReadAt(IBlockDevice cache, long startBytes, int maxLength, Span<byte> segment, Func<ulong, bool>? idFitsSlot = null) =>
        ReadAt(cache, startBytes, maxLength, segment, idFitsSlot, checksums: null);

    private static SegmentSlotRead ReadAt(IBlockDevice cache, long startBytes, int maxLength, Span<byte> segment, Func<ulong, bool>? idFitsSlot, SegmentChecksumMemo? checksums)
    {
        ArgumentNullException.ThrowIfNull(cache);
        cache.Read(startBytes, segment[..Units.BlockBytes]);
        int length = SegmentHeaderOnDisk.Read(segment).Length;
        if (length > maxLength || length == 0)
        {
            return Validate(segment, maxLength, idFitsSlot);
        }
        long dataStart = startBytes + Units.BlockBytes;
        int dataBytes = (int)Units.BlocksToBytes(length);
        if (checksums is null)
        {
            cache.Read(dataStart, segment.Slice(Units.BlockBytes, dataBytes));
            return Validate(segment, maxLength, idFitsSlot);
        }
        bool kept = checksums.TryDataCrc(cache, dataStart, length, out uint dataCrc);
        if (!kept)
        {
            Span<byte> data = segment.Slice(Units.BlockBytes, dataBytes);
            cache.Read(dataStart, data);
            dataCrc = Crc32C.Append(0, data);
            checksums.Remember(cache, dataStart, length, dataCrc);
        }
        // The segment checksum is over the header block past its first sector, then the data (see ComputeChecksum).
        uint computed = ~Crc32C.Concat(Crc32C.Append(~0u, segment[SegmentHeaderOnDisk.SizeBytes..Units.BlockBytes]), dataCrc, dataBytes);
        Debug.Assert(kept || computed == SegmentHeaderOnDisk.ComputeChecksum(segment, length), "the checksum by parts is the checksum");
        return Validate(segment, maxLength, idFitsSlot, computed) with { DataSkipped = kept };
    }

    /// <summary>Validates a segment image already in memory (a whole cache image's slot, as the harness holds them).</summary>
    public static SegmentSlotRead Validate(ReadOnlySpan<byte> segment, CacheGeometry geometry, long slot)
    {
        ArgumentNullException.ThrowIfNull(geometry);
        return Validate(segment, geometry.BlocksPerSegment, id => geometry.SlotOf(id) == slot);
    }

    /// <param name="knownChecksum">The segment checksum, computed by the caller (null: computed here from the image).</param>
    private static SegmentSlotRead Validate(ReadOnlySpan<byte> segment, int maxLength, Func<ulong, bool>? idFitsSlot, uint? knownChecksum = null)
    {
        SegmentHeaderOnDisk header = SegmentHeaderOnDisk.Read(segment);
        bool lengthFits = header.Length <= maxLength;
        uint computed = knownChecksum ?? (lengthFits ? SegmentHeaderOnDisk.ComputeChecksum(segment, header.Length) : 0);
        bool idFits = header.Id != 0 && (idFitsSlot?.Invoke(header.Id) ?? true);
        return new SegmentSlotRead(header, idFits, lengthFits, computed);
    }
}
