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
///   71    1 flags                bit 0: a pmem buffer (mode 1) may hold acknowledged writes;
///                                bit 1: a format is in progress (written without the magic, first in a format)
///   72   16 cache uuid           random at format; a pmem buffer names the cache it belongs to by it
///   88    8 backing size bytes   at format; a different backing device is refused
///   96    8 cache size bytes     at format
///  104    4 crc32c of bytes 64..104
///  128  384 the bindings (<see cref="CacheBindings"/>): which pmem buffer and which backing device the cache's
///           data belongs with, with a magic and a checksum of their own (absent in caches made before them)
/// </code>
/// Written as one 4 KiB FUA write of sectors 0..7, last in a format, so a half-made format has no magic. Every
/// field is in sector 0, which a crash writes whole or not at all.
/// </summary>
public sealed record SuperblockHeaderOnDisk(int SegmentSizeOrder, Guid CacheUuid, long BackingSizeBytes, long CacheSizeBytes, byte Flags = 0)
{
    /// <summary>Which pmem buffer and backing device the cache belongs with; null when sector 0 has none (an older or a kernel-made cache).</summary>
    public CacheBindings? Bindings { get; init; }

    public const uint Magic = 0x57427374;
    public const uint ExtensionMagic = 0x58454257;
    public const ushort ExtensionVersion = 1;
    public const int WriteBytes = Units.BlockBytes;
    /// <summary>Set while the cache runs in mode 1: its pmem buffer may hold acknowledged writes, so mode 0 must refuse it.</summary>
    public const byte FlagPmemBufferLive = 0x1;
    /// <summary>
    /// Sector 0 written first in a format, without the magic: a crash before the format's last write leaves a device
    /// that says so (<see cref="SuperblockState.FormatInterrupted"/>), not one that looks like a cache whose sector 0
    /// was damaged (old segments still intact after a blank sector 0), which is refused for the dirty data it may hold.
    /// </summary>
    public const byte FlagFormatting = 0x2;
    private const int ExtensionOffset = 64;
    private const int ExtensionChecksumOffset = 104;

    public void WriteTo(Span<byte> sector)
    {
        sector[..WriteBytes].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(sector, (Flags & FlagFormatting) != 0 ? 0u : Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[ExtensionOffset..], ExtensionMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(sector[68..], ExtensionVersion);
        sector[70] = (byte)SegmentSizeOrder;
        sector[71] = Flags;
        CacheUuid.TryWriteBytes(sector.Slice(72, 16));
        BinaryPrimitives.WriteInt64LittleEndian(sector[88..], BackingSizeBytes);
        BinaryPrimitives.WriteInt64LittleEndian(sector[96..], CacheSizeBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[ExtensionChecksumOffset..], Crc32C.Compute(sector[ExtensionOffset..ExtensionChecksumOffset]));
        Bindings?.WriteTo(sector[CacheBindings.OffsetBytes..]);
    }

    /// <summary>What sector 0 holds.</summary>
    public static SuperblockReadResult Read(ReadOnlySpan<byte> sector)
    {
        SuperblockHeaderOnDisk? extension = ReadExtension(sector);
        if (BinaryPrimitives.ReadUInt32LittleEndian(sector) != Magic)
        {
            // A device that never held a cache has no extension either; an intact extension without the magic is
            // a damaged cache, and formatting it would throw its dirty data away — unless it says a format was under
            // way: then what the device held was given up when the format began.
            return new SuperblockReadResult(
                extension is null ? SuperblockState.Unformatted
                : (extension.Flags & FlagFormatting) != 0 ? SuperblockState.FormatInterrupted
                : SuperblockState.CorruptMagic,
                extension);
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
            sector[71])
        {
            Bindings = CacheBindings.Read(sector[CacheBindings.OffsetBytes..]),
        };
    }
}

/// <summary>
/// What a cache's data belongs with, kept in sector 0 after our extension (bytes the kernel module ignores):
/// the pmem buffer it was last given in mode 1 (by the uuid that buffer's header carries) and the backing device
/// its dirty data is for (by <see cref="Devices.DeviceProbe.StableIdentity"/>; the path is only for messages).
/// <code>
///  off size field (from byte 128 of sector 0)
///    0    4 magic                 0x44494257 "WBID"
///    4    2 version               1
///    6    1 backing identity length (bytes, ≤ 176)
///    7    1 backing path length (bytes, ≤ 176)
///    8   16 pmem buffer uuid      zero: none given yet
///   24  176 backing identity      UTF-8; empty: not recorded (a cache opened without paths)
///  200  176 backing path          UTF-8, where it was when recorded
///  376    4 crc32c of bytes 0..376
/// </code>
/// </summary>
public sealed record CacheBindings(Guid PmemUuid, string BackingIdentity, string BackingPath)
{
    public const int OffsetBytes = 128;
    public const uint Magic = 0x44494257;
    public const ushort Version = 1;
    public const int TextBytes = 176;
    private const int ChecksumOffset = 376;

    public static CacheBindings None { get; } = new(Guid.Empty, "", "");

    public void WriteTo(Span<byte> area)
    {
        area[..(ChecksumOffset + 4)].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(area, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(area[4..], Version);
        int identityBytes = WriteText(BackingIdentity, area.Slice(24, TextBytes));
        int pathBytes = WriteText(BackingPath, area.Slice(200, TextBytes));
        area[6] = (byte)identityBytes;
        area[7] = (byte)pathBytes;
        PmemUuid.TryWriteBytes(area.Slice(8, 16));
        BinaryPrimitives.WriteUInt32LittleEndian(area[ChecksumOffset..], Crc32C.Compute(area[..ChecksumOffset]));
    }

    /// <summary>The bindings, or null when the area has none whose magic, version and checksum hold.</summary>
    public static CacheBindings? Read(ReadOnlySpan<byte> area)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(area) != Magic
            || BinaryPrimitives.ReadUInt16LittleEndian(area[4..]) != Version
            || BinaryPrimitives.ReadUInt32LittleEndian(area[ChecksumOffset..]) != Crc32C.Compute(area[..ChecksumOffset])
            || area[6] > TextBytes || area[7] > TextBytes)
        {
            return null;
        }
        return new CacheBindings(
            new Guid(area.Slice(8, 16)),
            System.Text.Encoding.UTF8.GetString(area.Slice(24, area[6])),
            System.Text.Encoding.UTF8.GetString(area.Slice(200, area[7])));
    }

    /// <summary>The text as it is stored (cut to fit), so a fresh identity compares equal to a recorded one.</summary>
    public static string Fit(string text)
    {
        byte[] stored = new byte[TextBytes];
        return System.Text.Encoding.UTF8.GetString(stored, 0, WriteText(text, stored));
    }

    /// <summary>UTF-8, cut at a character boundary to fit.</summary>
    private static int WriteText(string text, Span<byte> destination)
    {
        System.Text.Encoder encoder = System.Text.Encoding.UTF8.GetEncoder();
        encoder.Convert(text.AsSpan(), destination, flush: true, out _, out int bytesUsed, out _);
        return bytesUsed;
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
    /// <summary>A format began and did not finish (a crash): nothing on the device is a cache any more; a format may start over.</summary>
    FormatInterrupted,
}

public readonly record struct SuperblockReadResult(SuperblockState State, SuperblockHeaderOnDisk? Header);

/// <summary>
/// The superblock record: sector 2047, u64 last_writeback_segment_id at offset 0. Written as the kernel does,
/// one 4 KiB FUA write of sectors 2040..2047 with the record in the last sector (the others zero). The kernel
/// reads only the first 8 bytes; we add, in bytes it ignores:
/// <code>
///  off size field
///    0    8 last_writeback_segment_id     (the kernel's)
///    8    4 ~crc32c of bytes 0..8         a corrupt record is recognised
///   16    8 durable id                    every segment id ≤ this was durable on the cache device when written
///   24    4 ~crc32c of bytes 16..24       (0 with the id: no claim, e.g. written by the kernel)
/// </code>
/// The durable id lets recovery tell a damaged segment from a crash's torn tail even for the newest segments,
/// which no later segment header vouches for (a clean close writes the record last).
/// </summary>
public static class SuperblockRecordOnDisk
{
    /// <summary>
    /// What the record sector holds: the id, whether its checksum holds (null: none was written, as by the kernel),
    /// and the durable id it vouches for (0 when it makes no claim or the claim's checksum fails).
    /// </summary>
    public readonly record struct Record(ulong LastWritebackId, bool? ChecksumValid, ulong DurableId = 0);

    public const long WriteOffsetBytes = CacheGeometry.SuperblockRegionBytes - Units.BlockBytes;
    public const int RecordOffsetInWrite = Units.BlockBytes - Units.SectorBytes;
    private const int DurableOffset = 16;

    public static void WriteTo(Span<byte> block, ulong lastWritebackSegmentId, ulong durableId = 0)
    {
        block[..Units.BlockBytes].Clear();
        Span<byte> record = block[RecordOffsetInWrite..];
        BinaryPrimitives.WriteUInt64LittleEndian(record, lastWritebackSegmentId);
        BinaryPrimitives.WriteUInt32LittleEndian(record[8..], ~Crc32C.Compute(record[..8]));
        if (durableId > 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(record[DurableOffset..], durableId);
            BinaryPrimitives.WriteUInt32LittleEndian(record[(DurableOffset + 8)..], ~Crc32C.Compute(record.Slice(DurableOffset, 8)));
        }
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
        if (ours && stored.ChecksumValid == true)
        {
            return stored.LastWritebackId;
        }
        ulong lap = (ulong)geometry.NrSegments;
        HashSet<ulong> inSlot = [.. slotIds.Where((id, slot) => id != 0 && geometry.SlotOf(id) == slot)];
        ulong newest = inSlot.Where(id => id == 1 || inSlot.Any(other => other < id && id - other <= lap)).DefaultIfEmpty(0ul).Max();
        ulong bound = newest > lap ? newest - lap : 0;
        if (!ours)
        {
            // A kernel-made cache: the module writes its record only every update_sb_record_interval (by default
            // never), but it writes a segment back before it reuses the segment's slot, so the newest segment in
            // the ring says every one a lap older is written back (found by the lab: a log that had wrapped was
            // walked from segment 1 and discarded whole).
            return Math.Max(stored.LastWritebackId, bound);
        }
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
        ReadOnlySpan<byte> record = block[RecordOffsetInWrite..];
        ulong durable = BinaryPrimitives.ReadUInt64LittleEndian(record[DurableOffset..]);
        if (BinaryPrimitives.ReadUInt32LittleEndian(record[(DurableOffset + 8)..]) != ~Crc32C.Compute(record.Slice(DurableOffset, 8)))
        {
            durable = 0; // no claim, or a damaged one: a claim is only ever trusted whole
        }
        ulong id = BinaryPrimitives.ReadUInt64LittleEndian(record);
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(record[8..]);
        if (id == 0 && stored == 0)
        {
            return new Record(0, null, durable);
        }
        // Complemented so that an all-zero sector never passes as a record of 0 with a valid checksum.
        return new Record(id, stored == ~Crc32C.Compute(record[..8]), durable);
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
/// Our bytes in a segment header's padding, which dm-writeboost ignores (it reads id, checksum and length; the
/// header sector is not under the segment checksum). They say what was durable when the segment was written,
/// how to verify its block list, and which of its blocks recovery knows to be lost:
/// <code>
///  off size field
///   16    4 magic 0x58534257 "WBSX"
///   20    1 version 1
///   21    1 flags           0x1 each wide metablock carries its entry checksum (bytes 12..16, see MetablockOnDisk)
///                           0x2 a tombstone: recovery wrote this empty segment in place of a crash's torn one
///                           0x4 rebuilt by recovery from the pmem buffer (mode 1)
///                           0x8 loss accepted: entries failing their checksum were given up (--accept-loss)
///   24    8 durable id      every segment id ≤ this was durable on the cache device when this one was written
///   32    4 metablocks crc  ~crc32c(~0, bytes 512 .. 512 + length × entry size): the block list, verified alone
///   36   32 lost bitmap     bit i: data block i holds no data — its acknowledged write was lost (mode 1 rebuild)
///   68    4 header crc      ~crc32c(~0, bytes 0..68): id, checksum, length and all of the above
/// </code>
/// A crash writes the header sector whole or not at all (sector-atomic), so a header whose magic is there but
/// whose header crc fails is damage, never a crash. No magic: a header written by the kernel (or an older version):
/// it vouches for nothing and its entries carry no checksums.
/// </summary>
public readonly record struct SegmentHeaderExtension(byte Flags, ulong DurableId, uint MetablocksChecksum, byte[]? LostBitmap = null)
{
    public const uint Magic = 0x58534257;
    public const byte Version = 1;
    public const byte FlagEntryChecksums = 0x1;
    public const byte FlagTombstone = 0x2;
    public const byte FlagRebuiltFromPmem = 0x4;
    public const byte FlagLossAccepted = 0x8;
    public const int LostBitmapBytes = 32;
    private const int MagicOffset = 16;
    private const int LostOffset = 36;
    private const int HeaderChecksumOffset = 68;

    public bool HasEntryChecksums => (Flags & FlagEntryChecksums) != 0;

    /// <summary>Whether data block <paramref name="index"/> is marked lost.</summary>
    public bool IsLost(int index) => LostBitmap is { } bits && (bits[index >> 3] & (1 << (index & 7))) != 0;

    /// <summary>Writes the extension and the header crc (over the id, checksum and length already in <paramref name="header"/>).</summary>
    public void WriteTo(Span<byte> header)
    {
        header[MagicOffset..(HeaderChecksumOffset + sizeof(uint))].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(header[MagicOffset..], Magic);
        header[20] = Version;
        header[21] = Flags;
        BinaryPrimitives.WriteUInt64LittleEndian(header[24..], DurableId);
        BinaryPrimitives.WriteUInt32LittleEndian(header[32..], MetablocksChecksum);
        LostBitmap?.CopyTo(header[LostOffset..]);
        Restamp(header, DurableId);
    }

    /// <summary>Sets the durable id and recomputes the header crc: the flush worker's last step before the write.</summary>
    public static void Restamp(Span<byte> header, ulong durableId)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(header[24..], durableId);
        BinaryPrimitives.WriteUInt32LittleEndian(header[HeaderChecksumOffset..], Crc32C.Compute(header[..HeaderChecksumOffset]));
    }

    /// <summary>The extension of a header sector: absent (kernel-made), intact, or damaged.</summary>
    public static (HeaderExtensionState State, SegmentHeaderExtension Extension) Read(ReadOnlySpan<byte> header)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(header[MagicOffset..]) != Magic)
        {
            return (HeaderExtensionState.Absent, default);
        }
        if (header[20] != Version || BinaryPrimitives.ReadUInt32LittleEndian(header[HeaderChecksumOffset..]) != Crc32C.Compute(header[..HeaderChecksumOffset]))
        {
            return (HeaderExtensionState.Damaged, default);
        }
        byte[] lost = header.Slice(LostOffset, LostBitmapBytes).ToArray();
        return (HeaderExtensionState.Intact, new SegmentHeaderExtension(
            header[21], BinaryPrimitives.ReadUInt64LittleEndian(header[24..]), BinaryPrimitives.ReadUInt32LittleEndian(header[32..]),
            lost.AsSpan().ContainsAnyExcept((byte)0) ? lost : null));
    }

    /// <summary>The checksum of the used metablocks of a segment image.</summary>
    public static uint ComputeMetablocksChecksum(ReadOnlySpan<byte> segment, int length, int entryBytes) =>
        Crc32C.Compute(segment.Slice(SegmentHeaderOnDisk.SizeBytes, length * entryBytes));
}

public enum HeaderExtensionState
{
    /// <summary>No magic: a header the kernel (or a version before the extension) wrote.</summary>
    Absent,
    Intact,
    /// <summary>The magic, but the header crc fails: damage (a crash writes the sector whole or not at all).</summary>
    Damaged,
}

/// <summary>
/// One entry of the metablock array: the backing sector (4 KiB aligned) and the dirty bits of a data block.
/// dirty_bits 0 means clean (a read-cached block, all 8 sectors valid).
/// Wide (the kernel's, 16 bytes): sector u64 @0, dirty_bits u8 @8, then the kernel's 7 padding bytes, which it
/// ignores (but the segment checksum covers): bytes 9..12 zero, and at 12 the entry checksum
/// <c>~crc32c(~0, entry bytes 0..9 ‖ the 4 KiB data block)</c> when the header's flag says so. With the
/// metablocks crc of the header it tells which block of a damaged segment is damaged.
/// Compact (order 11 only, where 255 wide entries would overflow the 4 KiB metadata block; 8 bytes):
/// u64 = backing block index &lt;&lt; 8 | dirty_bits; no room for an entry checksum.
/// </summary>
public readonly record struct MetablockOnDisk(long BackingSector, byte DirtyBits)
{
    public const int WideSizeBytes = 16;
    public const int CompactSizeBytes = 8;
    public const int EntryChecksumOffset = 12;
    /// <summary>The bytes of a wide entry its checksum covers (sector and dirty bits).</summary>
    public const int EntryChecksumCoversBytes = 9;

    /// <summary>The entry checksum stored in wide entry <paramref name="index"/>.</summary>
    public static uint StoredEntryChecksum(ReadOnlySpan<byte> segment, int index) =>
        BinaryPrimitives.ReadUInt32LittleEndian(segment[(SegmentHeaderOnDisk.SizeBytes + index * WideSizeBytes + EntryChecksumOffset)..]);

    /// <summary>The entry checksum wide entry <paramref name="index"/> should hold, from the entry and its data block.</summary>
    public static uint ComputeEntryChecksum(ReadOnlySpan<byte> segment, int index) =>
        ~Crc32C.Append(
            Crc32C.Append(~0u, segment.Slice(SegmentHeaderOnDisk.SizeBytes + index * WideSizeBytes, EntryChecksumCoversBytes)),
            segment.Slice((int)Units.BlocksToBytes(1 + index), Units.BlockBytes));

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
