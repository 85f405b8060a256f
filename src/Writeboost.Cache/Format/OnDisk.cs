using System.Buffers.Binary;

namespace Writeboost.Cache.Format;

/// <summary>
/// Sector 0 of the cache device. dm-writeboost v2 stores only the magic (offset 0, u32 0x57427374 "WBst") and
/// ignores the rest of the sector; we keep our extension there, so a cache made here is one the kernel module
/// could replay (at the default segment_size_order 10, which the kernel has compiled in).
/// <code>
///  off size field
///    0    4 magic                0x57427374
///   64    4 extension magic      0x58454257 "WBEX"
///   68    2 extension version    1
///   70    1 segment_size_order   4..11
///   71    1 flags                bit 0: a pmem buffer (mode 1) may hold acknowledged writes
///   72   16 cache uuid           random at format; a pmem buffer names the cache it belongs to by it
///   88    8 backing size bytes   at format; a different backing device is refused
///   96    8 cache size bytes     at format
///  104    4 crc32c of bytes 64..104
/// </code>
/// Written as one 4 KiB FUA write of sectors 0..7, last in a format, so a half-made format has no magic.
/// </summary>
public sealed record SuperblockHeaderOnDisk(int SegmentSizeOrder, Guid CacheUuid, long BackingSizeBytes, long CacheSizeBytes, byte Flags = 0)
{
    public const uint Magic = 0x57427374;
    public const uint ExtensionMagic = 0x58454257;
    public const ushort ExtensionVersion = 1;
    public const int WriteBytes = Units.BlockBytes;
    /// <summary>Set while the cache runs in mode 1: its pmem buffer may hold acknowledged writes, so mode 0 must refuse it.</summary>
    public const byte FlagPmemBufferLive = 0x1;
    private const int ExtensionOffset = 64;
    private const int ExtensionChecksumOffset = 104;

    public void WriteTo(Span<byte> sector)
    {
        sector[..WriteBytes].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(sector, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[ExtensionOffset..], ExtensionMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(sector[68..], ExtensionVersion);
        sector[70] = (byte)SegmentSizeOrder;
        sector[71] = Flags;
        CacheUuid.TryWriteBytes(sector.Slice(72, 16));
        BinaryPrimitives.WriteInt64LittleEndian(sector[88..], BackingSizeBytes);
        BinaryPrimitives.WriteInt64LittleEndian(sector[96..], CacheSizeBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[ExtensionChecksumOffset..], Crc32C.Compute(sector[ExtensionOffset..ExtensionChecksumOffset]));
    }

    /// <summary>What sector 0 holds.</summary>
    public static SuperblockReadResult Read(ReadOnlySpan<byte> sector)
    {
        SuperblockHeaderOnDisk? extension = ReadExtension(sector);
        if (BinaryPrimitives.ReadUInt32LittleEndian(sector) != Magic)
        {
            // A device that never held a cache has no extension either; an intact extension without the magic is
            // a damaged cache, and formatting it would throw its dirty data away.
            return new SuperblockReadResult(extension is null ? SuperblockState.Unformatted : SuperblockState.CorruptMagic, extension);
        }
        if (extension is not null)
        {
            return new SuperblockReadResult(SuperblockState.Formatted, extension);
        }
        // The kernel module writes the magic alone (the rest of its superblock region is zero): its compiled-in
        // order, no identity to check. Anything else where our extension goes is a damaged extension.
        return sector[ExtensionOffset..(ExtensionChecksumOffset + sizeof(uint))].ContainsAnyExcept((byte)0)
            ? new SuperblockReadResult(SuperblockState.CorruptExtension, null)
            : new SuperblockReadResult(SuperblockState.KernelFormat, new SuperblockHeaderOnDisk(CacheGeometry.DefaultSegmentSizeOrder, Guid.Empty, 0, 0));
    }

    /// <summary>Our extension, if its magic, version and checksum hold.</summary>
    private static SuperblockHeaderOnDisk? ReadExtension(ReadOnlySpan<byte> sector)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(sector[ExtensionOffset..]) != ExtensionMagic
            || BinaryPrimitives.ReadUInt16LittleEndian(sector[68..]) != ExtensionVersion
            || BinaryPrimitives.ReadUInt32LittleEndian(sector[ExtensionChecksumOffset..]) != Crc32C.Compute(sector[ExtensionOffset..ExtensionChecksumOffset]))
        {
            return null;
        }
        return new SuperblockHeaderOnDisk(
            sector[70],
            new Guid(sector.Slice(72, 16)),
            BinaryPrimitives.ReadInt64LittleEndian(sector[88..]),
            BinaryPrimitives.ReadInt64LittleEndian(sector[96..]),
            sector[71]);
    }
}

public enum SuperblockState
{
    Unformatted,
    Formatted,
    /// <summary>The magic without our extension: made by the kernel module (order 10).</summary>
    KernelFormat,
    /// <summary>The magic with an extension whose checksum fails.</summary>
    CorruptExtension,
    /// <summary>An intact extension without the magic: a damaged sector 0 of a cache.</summary>
    CorruptMagic,
}

public readonly record struct SuperblockReadResult(SuperblockState State, SuperblockHeaderOnDisk? Header);

/// <summary>
/// The superblock record: sector 2047, u64 last_writeback_segment_id at offset 0. Written as the kernel does,
/// one 4 KiB FUA write of sectors 2040..2047 with the record in the last sector (the others zero). We add a
/// CRC-32C of the 8 bytes at offset 8 (the kernel ignores it), so a corrupt record is recognised.
/// </summary>
public static class SuperblockRecordOnDisk
{
    /// <summary>What the record sector holds: the id, and whether its checksum holds (null: none was written, as by the kernel).</summary>
    public readonly record struct Record(ulong LastWritebackId, bool? ChecksumValid);

    public const long WriteOffsetBytes = CacheGeometry.SuperblockRegionBytes - Units.BlockBytes;
    public const int RecordOffsetInWrite = Units.BlockBytes - Units.SectorBytes;

    public static void WriteTo(Span<byte> block, ulong lastWritebackSegmentId)
    {
        block[..Units.BlockBytes].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(block[RecordOffsetInWrite..], lastWritebackSegmentId);
        BinaryPrimitives.WriteUInt32LittleEndian(block[(RecordOffsetInWrite + 8)..], ~Crc32C.Compute(block.Slice(RecordOffsetInWrite, 8)));
    }

    /// <summary>
    /// The last written-back id recovery can rely on, given the stored record and the id in each slot's header.
    /// A record whose checksum holds is used as it is. One that fails it, or none at all (a zeroed sector) while
    /// the ring shows the slots were reused, is damaged: the writer puts segment X in its slot only after the
    /// record durably covers X - nr_segments, so the newest segment in its own slot gives a lower bound, used
    /// instead (<paramref name="warning"/> says so). Segments between the true record and the bound are replayed
    /// again; their data is on the backing store too, so that costs a rewrite, never data. The id is not covered
    /// by a segment's checksum, so only an id with a neighbour (another slot holding one of the nr_segments ids
    /// before it) counts: one damaged id must not make every segment look written back.
    /// </summary>
    public static ulong Infer(Record stored, IReadOnlyList<ulong> slotIds, CacheGeometry geometry, bool ours, out string? warning)
    {
        warning = null;
        if (!ours || stored.ChecksumValid == true)
        {
            return stored.LastWritebackId;
        }
        ulong lap = (ulong)geometry.NrSegments;
        HashSet<ulong> inSlot = [.. slotIds.Where((id, slot) => id != 0 && geometry.SlotOf(id) == slot)];
        ulong newest = inSlot.Where(id => id == 1 || inSlot.Any(other => other < id && id - other <= lap)).DefaultIfEmpty(0ul).Max();
        ulong bound = newest > lap ? newest - lap : 0;
        if (stored.ChecksumValid == false)
        {
            warning = $"the superblock record is corrupt (checksum fails); inferred last written-back segment {bound} from the ring instead";
            return bound;
        }
        if (bound > 0)
        {
            warning = $"the superblock record is missing (a zeroed sector), but segment {newest} already reused a slot: inferred last written-back segment {bound} from the ring instead";
            return bound;
        }
        return stored.LastWritebackId;
    }

    public static Record Read(ReadOnlySpan<byte> block)
    {
        ulong id = BinaryPrimitives.ReadUInt64LittleEndian(block[RecordOffsetInWrite..]);
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(block[(RecordOffsetInWrite + 8)..]);
        if (id == 0 && stored == 0)
        {
            return new Record(0, null);
        }
        // Complemented so that an all-zero sector never passes as a record of 0 with a valid checksum.
        return new Record(id, stored == ~Crc32C.Compute(block.Slice(RecordOffsetInWrite, 8)));
    }
}

/// <summary>
/// The first 512 bytes of a segment: id u64 @0, checksum u32 @8, length u8 @12, zero padding to 512.
/// The metablock array follows at byte 512; data block i is at byte 4096 * (1 + i).
/// checksum = ~crc32c(~0, segment bytes 512 .. 4096 + 4096 * length): metablocks and data, not id or length.
/// </summary>
public readonly record struct SegmentHeaderOnDisk(ulong Id, uint Checksum, byte Length)
{
    public const int SizeBytes = 512;

    public static SegmentHeaderOnDisk Read(ReadOnlySpan<byte> segment) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(segment),
        BinaryPrimitives.ReadUInt32LittleEndian(segment[8..]),
        segment[12]);

    public void WriteTo(Span<byte> segment)
    {
        segment[..SizeBytes].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(segment, Id);
        BinaryPrimitives.WriteUInt32LittleEndian(segment[8..], Checksum);
        segment[12] = Length;
    }

    /// <summary>The checksum of a segment image holding <paramref name="length"/> data blocks.</summary>
    public static uint ComputeChecksum(ReadOnlySpan<byte> segment, int length) =>
        Crc32C.Compute(segment[SizeBytes..(int)CacheGeometry.WrittenBytes(length)]);
}

/// <summary>
/// One entry of the metablock array: the backing sector (4 KiB aligned) and the dirty bits of a data block.
/// dirty_bits 0 means clean (a read-cached block, all 8 sectors valid).
/// Wide (the kernel's, 16 bytes): sector u64 @0, dirty_bits u8 @8, 7 bytes zero.
/// Compact (order 11 only, where 255 wide entries would overflow the 4 KiB metadata block; 8 bytes):
/// u64 = backing block index &lt;&lt; 8 | dirty_bits.
/// </summary>
public readonly record struct MetablockOnDisk(long BackingSector, byte DirtyBits)
{
    public const int WideSizeBytes = 16;
    public const int CompactSizeBytes = 8;

    public static MetablockOnDisk Read(ReadOnlySpan<byte> segment, int index, int entryBytes)
    {
        ReadOnlySpan<byte> entry = segment.Slice(SegmentHeaderOnDisk.SizeBytes + index * entryBytes, entryBytes);
        if (entryBytes == WideSizeBytes)
        {
            return new MetablockOnDisk(BinaryPrimitives.ReadInt64LittleEndian(entry), entry[8]);
        }
        ulong packed = BinaryPrimitives.ReadUInt64LittleEndian(entry);
        return new MetablockOnDisk((long)(packed >> 8) * Units.SectorsPerBlock, (byte)packed);
    }

    /// <summary>
    /// Why entry <paramref name="index"/> cannot be replayed onto a backing device of
    /// <paramref name="backingSectors"/> sectors (a dirty entry outside it or not 4 KiB aligned), or null.
    /// Recovery and <c>wb check</c> both stop a segment on it.
    /// </summary>
    public string? Problem(int index, long backingSectors) =>
        DirtyBits != 0 && (BackingSector % Units.SectorsPerBlock != 0 || BackingSector < 0 || BackingSector >= backingSectors)
            ? $"metablock {index} names backing sector {BackingSector}, outside the {backingSectors}-sector backing device or not 4 KiB aligned"
            : null;

    public void WriteTo(Span<byte> segment, int index, int entryBytes)
    {
        Span<byte> entry = segment.Slice(SegmentHeaderOnDisk.SizeBytes + index * entryBytes, entryBytes);
        entry.Clear();
        if (entryBytes == WideSizeBytes)
        {
            BinaryPrimitives.WriteInt64LittleEndian(entry, BackingSector);
            entry[8] = DirtyBits;
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(entry, ((ulong)(BackingSector / Units.SectorsPerBlock) << 8) | DirtyBits);
        }
    }
}
