using System.Buffers.Binary;
using System.Diagnostics;

namespace Writeboost.Cache.Format;

/// <summary>
/// Finishes a segment image whose metablocks and data are in place: the entry checksums (wide metablocks), the
/// metablocks crc, the kernel's segment checksum and the header with our extension. One pass over each data
/// block: its raw CRC from state 0 feeds both its entry checksum and the segment checksum
/// (<see cref="Crc32C.Concat"/>), so the segment checksum is the kernel's <c>~crc32c(~0, bytes 512 ..)</c>
/// computed without reading the data twice.
/// </summary>
public static class SegmentImage
{
    /// <param name="image">The segment: header sector, metablocks (entry checksums are overwritten), data blocks.</param>
    /// <param name="flags">Flags beyond <see cref="SegmentHeaderExtension.FlagEntryChecksums"/>, which is set for wide metablocks.</param>
    /// <param name="lostBitmap">Data blocks whose write is lost (null: none).</param>
    /// <param name="durableId">What is durable now; the flush worker restamps it just before the write.</param>
    /// <param name="knownDataCrc">Data block i's raw CRC from state 0 where the caller has it already (null: read the block).</param>
    public static void Finish(Span<byte> image, ulong id, int length, int entryBytes, byte flags = 0, byte[]? lostBitmap = null, ulong durableId = 0,
        Func<int, uint?>? knownDataCrc = null)
    {
        bool wide = entryBytes == MetablockOnDisk.WideSizeBytes;
        Span<uint> dataCrcs = stackalloc uint[length]; // length is a u8: at most 255
        for (int i = 0; i < length; i++)
        {
            ReadOnlySpan<byte> block = image.Slice((int)Units.BlocksToBytes(1 + i), Units.BlockBytes);
            uint? known = knownDataCrc?.Invoke(i);
            Debug.Assert(known is null || known == Crc32C.Append(0, block), $"segment {id} block {i}: the known CRC is not the block's");
            dataCrcs[i] = known ?? Crc32C.Append(0, block);
            if (wide)
            {
                Span<byte> entry = image.Slice(SegmentHeaderOnDisk.SizeBytes + i * MetablockOnDisk.WideSizeBytes, MetablockOnDisk.WideSizeBytes);
                uint state = Crc32C.Append(~0u, entry[..MetablockOnDisk.EntryChecksumCoversBytes]);
                uint checksum = ~Crc32C.Concat(state, dataCrcs[i], Units.BlockBytes);
                // A lost block's entry holds no data: its checksum is made to fail, so it never passes for data.
                bool lost = lostBitmap is not null && (lostBitmap[i >> 3] & (1 << (i & 7))) != 0;
                BinaryPrimitives.WriteUInt32LittleEndian(entry[MetablockOnDisk.EntryChecksumOffset..], lost ? ~checksum : checksum);
            }
        }
        uint metablocks = SegmentHeaderExtension.ComputeMetablocksChecksum(image, length, entryBytes);
        uint segment = Crc32C.Append(~0u, image[SegmentHeaderOnDisk.SizeBytes..Units.BlockBytes]);
        for (int i = 0; i < length; i++)
        {
            segment = Crc32C.Concat(segment, dataCrcs[i], Units.BlockBytes);
        }
        new SegmentHeaderOnDisk(id, ~segment, (byte)length).WriteTo(image);
        new SegmentHeaderExtension((byte)(flags | (wide ? SegmentHeaderExtension.FlagEntryChecksums : 0)), durableId, metablocks, lostBitmap).WriteTo(image);
    }
}
