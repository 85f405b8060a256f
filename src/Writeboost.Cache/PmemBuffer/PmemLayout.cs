using System.Buffers.Binary;
using Writeboost.Cache.Format;

namespace Writeboost.Cache.PmemBuffer;

/// <summary>
/// The layout of a mode-1 write buffer in persistent memory.
/// <code>
///  0                4 KiB
///  ┌────────────────┬───────────────────────────────┬───────────────────────────────┬─────
///  │ region header  │ buffer 0                      │ buffer 1                      │ ... (pool size P)
///  └────────────────┴───────────────────────────────┴───────────────────────────────┴─────
///  buffer k:
///  ┌──────────────┬──────────────────────────────┬──────────────────────────────────────┐
///  │ 4 KiB header │ records: B × 32 bytes, 4 KiB │ data: B × 4 KiB slots                │
///  │ u64 seg id @0│ aligned                      │                                      │
///  └──────────────┴──────────────────────────────┴──────────────────────────────────────┘
/// </code>
/// Region header (all little-endian): magic u64 "WBPMEM01" @0, version u32 @8, segment_size_order u8 @12,
/// pool size u16 @14, blocks per segment u16 @16, cache uuid 16 bytes @24, region bytes u64 @40,
/// CRC-32C of bytes 0..48 @48; this buffer's own uuid 16 bytes @56 (random at each format, recorded by its cache:
/// an earlier buffer of the same cache is told from the current one) with its CRC-32C @72 (a header written before
/// the uuid existed has none: its uuid reads as unknown).
/// Buffer header: the segment id the buffer holds, an aligned 8-byte word (written with one atomic store and
/// persisted before any record of that segment is acknowledged). 0 = never used.
/// Record of slot i (32 bytes, never straddling a cache line): segment id u64 @0, backing block u64 @8, dirty
/// bits u8 @16, slot u8 @17 (low byte of i), durable slots u8 @18 (slots 0 .. this - 1 of the buffer were
/// durable in pmem when this record was written), CRC-32C @20 of bytes 0..20 followed by the slot's 4 KiB of
/// data, and ~CRC-32C @24 of bytes 0..20 alone (the record's fields, so a record whose data is damaged still
/// names its block).
/// A record is valid when its segment id equals the buffer's, its slot byte matches, and its CRC holds: a
/// record or data torn by a crash fails the CRC, and such a write was never acknowledged — unless a later
/// valid record of the buffer says the slot was durable: then it is damage to an acknowledged write.
/// </summary>
public sealed record PmemLayout(int SegmentSizeOrder, int PoolSize, int BlocksPerSegment)
{
    public const ulong Magic = 0x31304D454D504257; // "WBPMEM01"

    /// <summary>
    /// The magic while a format is under way ("WBPMEM..."): stored and persisted alone, as an 8-byte store, before the
    /// format writes anything else, and replaced by <see cref="Magic"/> last. A region that shows it is an interrupted
    /// format, never a file given by mistake whose first bytes happen to be zero.
    /// </summary>
    public const ulong FormatPendingMagic = 0x2E2E4D454D504257;
    public const uint Version = 1;
    public const int RegionHeaderBytes = Units.BlockBytes;
    public const int BufferHeaderBytes = Units.BlockBytes;
    public const int RecordBytes = 32;

    public int RecordsAreaBytes => (BlocksPerSegment * RecordBytes + Units.BlockBytes - 1) / Units.BlockBytes * Units.BlockBytes;
    public long BufferBytes => BufferHeaderBytes + RecordsAreaBytes + (long)BlocksPerSegment * Units.BlockBytes;
    public long RegionBytes => RegionHeaderBytes + PoolSize * BufferBytes;

    public long BufferHeaderOffset(int buffer) => RegionHeaderBytes + buffer * BufferBytes;
    public long RecordOffset(int buffer, int slot) => BufferHeaderOffset(buffer) + BufferHeaderBytes + slot * RecordBytes;
    public long DataOffset(int buffer, int slot) => BufferHeaderOffset(buffer) + BufferHeaderBytes + RecordsAreaBytes + (long)slot * Units.BlockBytes;

    public void WriteHeader(Span<byte> header, Guid cacheUuid, Guid pmemUuid)
    {
        header[..RegionHeaderBytes].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(header, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Version);
        header[12] = (byte)SegmentSizeOrder;
        BinaryPrimitives.WriteUInt16LittleEndian(header[14..], (ushort)PoolSize);
        BinaryPrimitives.WriteUInt16LittleEndian(header[16..], (ushort)BlocksPerSegment);
        cacheUuid.TryWriteBytes(header.Slice(24, 16));
        BinaryPrimitives.WriteInt64LittleEndian(header[40..], RegionBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(header[48..], Crc32C.Compute(header[..48]));
        pmemUuid.TryWriteBytes(header.Slice(56, 16));
        BinaryPrimitives.WriteUInt32LittleEndian(header[72..], Crc32C.Compute(header.Slice(56, 16)));
    }

    /// <summary>The buffer's own uuid, or <see cref="Guid.Empty"/> when its header has none (written before it existed, or damaged).</summary>
    public static Guid ReadPmemUuid(ReadOnlySpan<byte> header) =>
        BinaryPrimitives.ReadUInt32LittleEndian(header[72..]) == Crc32C.Compute(header.Slice(56, 16)) ? new Guid(header.Slice(56, 16)) : Guid.Empty;

    /// <summary>What the region header says, or why it cannot be used by the cache <paramref name="cacheUuid"/>.</summary>
    public PmemHeaderCheck CheckHeader(ReadOnlySpan<byte> header, Guid cacheUuid)
    {
        ulong magic = BinaryPrimitives.ReadUInt64LittleEndian(header);
        if (magic == 0 && header[..RegionHeaderBytes].IndexOfAnyExcept((byte)0) < 0)
        {
            return new PmemHeaderCheck(PmemHeaderState.Blank, null);
        }
        if (magic == FormatPendingMagic)
        {
            return new PmemHeaderCheck(PmemHeaderState.FormatInterrupted, "a format of it was interrupted");
        }
        if (magic != Magic)
        {
            return new PmemHeaderCheck(PmemHeaderState.Foreign, $"it is not a writeboost pmem buffer (magic 0x{magic:x16})");
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(header[48..]) != Crc32C.Compute(header[..48]))
        {
            return new PmemHeaderCheck(PmemHeaderState.Foreign, "its header checksum fails (torn or corrupt)");
        }
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        int order = header[12];
        int pool = BinaryPrimitives.ReadUInt16LittleEndian(header[14..]);
        int blocks = BinaryPrimitives.ReadUInt16LittleEndian(header[16..]);
        Guid uuid = new(header.Slice(24, 16));
        if (version != Version || order != SegmentSizeOrder || pool != PoolSize || blocks != BlocksPerSegment)
        {
            return new PmemHeaderCheck(PmemHeaderState.Foreign,
                $"its geometry (version {version}, segment_size_order {order}, {pool} buffers of {blocks} blocks) differs from this cache's (version {Version}, segment_size_order {SegmentSizeOrder}, {PoolSize} buffers of {BlocksPerSegment} blocks)");
        }
        if (uuid != cacheUuid)
        {
            return new PmemHeaderCheck(PmemHeaderState.Foreign, $"it belongs to another cache (uuid {uuid}, this cache is {cacheUuid})", ReadPmemUuid(header));
        }
        return new PmemHeaderCheck(PmemHeaderState.Ours, null, ReadPmemUuid(header));
    }
}

public enum PmemHeaderState
{
    Blank,
    Ours,
    Foreign,
    /// <summary>A format of the region began and did not finish: nothing in it can be recovered, and it is formatted again.</summary>
    FormatInterrupted,
}

/// <param name="PmemUuid">The buffer's own uuid, when its header is a writeboost pmem buffer's and carries one.</param>
public readonly record struct PmemHeaderCheck(PmemHeaderState State, string? Problem, Guid PmemUuid = default);

/// <summary>One slot's commit record (see <see cref="PmemLayout"/>).</summary>
/// <param name="DurableSlots">Slots of the buffer below this one that were durable when it was written.</param>
public readonly record struct PmemRecord(ulong SegmentId, long Block, byte DirtyBits, byte SlotByte, byte DurableSlots = 0)
{
    private const int FieldsBytes = 20;

    /// <param name="slotDataCrcFromZero">The slot data's raw CRC from state 0 (<c>Crc32C.Append(0, data)</c>): the
    /// record's checksum is made of it, so the writer, which needs it for the segment's checksums too, reads the data once.</param>
    public void WriteTo(Span<byte> record, uint slotDataCrcFromZero)
    {
        record[..PmemLayout.RecordBytes].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(record, SegmentId);
        BinaryPrimitives.WriteInt64LittleEndian(record[8..], Block);
        record[16] = DirtyBits;
        record[17] = SlotByte;
        record[18] = DurableSlots;
        BinaryPrimitives.WriteUInt32LittleEndian(record[20..], Checksum(record, slotDataCrcFromZero));
        BinaryPrimitives.WriteUInt32LittleEndian(record[24..], ~Crc32C.Compute(record[..FieldsBytes]));
    }

    public static PmemRecord? ReadValid(ReadOnlySpan<byte> record, ReadOnlySpan<byte> slotData, ulong expectedSegmentId, int slot) =>
        ReadValid(record, Crc32C.Append(0, slotData[..Units.BlockBytes]), expectedSegmentId, slot);

    /// <inheritdoc cref="ReadValid(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ulong, int)"/>
    /// <param name="slotDataCrcFromZero">The raw CRC-32C of the slot's 4 KiB, computed by the caller.</param>
    public static PmemRecord? ReadValid(ReadOnlySpan<byte> record, uint slotDataCrcFromZero, ulong expectedSegmentId, int slot)
    {
        PmemRecord candidate = Fields(record);
        if (candidate.SegmentId != expectedSegmentId || candidate.SlotByte != (byte)slot || candidate.DirtyBits == 0)
        {
            return null;
        }
        return BinaryPrimitives.ReadUInt32LittleEndian(record[20..]) == Checksum(record, slotDataCrcFromZero) ? candidate : null;
    }

    /// <summary>The record's fields if their own checksum holds (whatever the data), else null.</summary>
    public static PmemRecord? ReadFields(ReadOnlySpan<byte> record) =>
        BinaryPrimitives.ReadUInt32LittleEndian(record[24..]) == ~Crc32C.Compute(record[..FieldsBytes]) ? Fields(record) : null;

    private static PmemRecord Fields(ReadOnlySpan<byte> record) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(record),
        BinaryPrimitives.ReadInt64LittleEndian(record[8..]),
        record[16],
        record[17],
        record[18]);

    /// <summary>The record's data checksum, <c>~crc32c(~0, fields ‖ the slot's 4 KiB)</c>, from the data's raw CRC.</summary>
    private static uint Checksum(ReadOnlySpan<byte> record, uint slotDataCrcFromZero) =>
        ~Crc32C.Concat(Crc32C.Append(~0u, record[..FieldsBytes]), slotDataCrcFromZero, Units.BlockBytes);
}
