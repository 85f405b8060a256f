using Writeboost.Pmem;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Format;
using Writeboost.Cache.Recovery;
using Writeboost.Cache.Table;
using Writeboost.Devices;

namespace Writeboost.Cache.Core;

/// <summary>
/// Sector 0 of a cache device: what it says (geometry, identity, which backing device and pmem buffer the cache is
/// bound to, whether the pmem buffer is live) and the checks an open makes of it before anything is written. The
/// one writer of sector 0 and of the format; <see cref="Header"/> is always what sector 0 holds.
/// </summary>
internal sealed class CacheSuperblock(IBlockDevice cache, SuperblockHeaderOnDisk header)
{
    public SuperblockHeaderOnDisk Header { get; private set; } = header;

    /// <summary>Mode 1 opened the cache and has not closed it cleanly: its pmem buffer may hold acknowledged writes.</summary>
    public bool PmemBufferLive => (Header.Flags & SuperblockHeaderOnDisk.FlagPmemBufferLive) != 0;

    public CacheBindings Bindings => Header.Bindings ?? CacheBindings.None;

    /// <summary>
    /// Formats the cache device, as dm-writeboost does, so that a crash at any point leaves either the old
    /// state or a device that says its format was interrupted, never a half-made cache that replays, nor old
    /// segments behind a blank sector 0 (which looks like a damaged cache, refused for its dirty data):
    /// 1. sector 0 without the magic, saying a format is under way (FUA): the old cache is given up from here;
    /// 2. zero the rest of the superblock region (the record) and the metadata block of every segment slot (no old
    ///    segment can replay);
    /// 3. flush the cache device;
    /// 4. write sector 0 — magic, geometry, identity — with FUA, last.
    /// </summary>
    public void Format(CacheGeometry geometry)
    {
        WriteSector0(Header with { Flags = SuperblockHeaderOnDisk.FlagFormatting });
        cache.WriteZeroes(SuperblockHeaderOnDisk.WriteBytes, CacheGeometry.SuperblockRegionBytes - SuperblockHeaderOnDisk.WriteBytes);
        for (long slot = 0; slot < geometry.NrSegments; slot++)
        {
            cache.WriteZeroes(geometry.SegmentStartBytes(slot), Units.BlockBytes);
        }
        cache.Flush();
        WriteSector0(Header with { Flags = 0 });
    }

    /// <summary>Rewrites sector 0 (one FUA write of the 4 KiB header block), when it changes.</summary>
    public void Write(SuperblockHeaderOnDisk changed)
    {
        if (changed != Header)
        {
            WriteSector0(changed);
        }
    }

    public void WriteFlags(byte flags) => Write(Header with { Flags = flags });

    /// <summary>Mode 1, last step of an open: the pmem buffer is live (mode 0 refuses the cache until a clean mode-1 close), and which buffer it is.</summary>
    public void MarkPmemLive(Guid pmemUuid) =>
        Write(Header with { Flags = SuperblockHeaderOnDisk.FlagPmemBufferLive, Bindings = Bindings with { PmemUuid = pmemUuid } });

    /// <summary>Names the backing device opened now, when sector 0 named another (or none): after a check passed or was overridden.</summary>
    public void RecordBacking(BackingDeviceIdentity? identity)
    {
        if (identity is null)
        {
            return;
        }
        string fitted = CacheBindings.Fit(identity.Identity);
        if (Bindings.BackingIdentity != fitted || Bindings.BackingPath != CacheBindings.Fit(identity.Path))
        {
            Write(Header with { Bindings = Bindings with { BackingIdentity = fitted, BackingPath = identity.Path } });
        }
    }

    private void WriteSector0(SuperblockHeaderOnDisk written)
    {
        byte[] block = new byte[SuperblockHeaderOnDisk.WriteBytes];
        written.WriteTo(block);
        cache.Write(0, block, WriteOptions.Fua);
        Header = written;
    }

    // ---- what an open checks before it writes anything ----

    /// <summary>
    /// Decides, from sector 0 and the options, whether an open formats the cache or recovers it, with what
    /// geometry and header, and refuses what must not be opened — all before anything is written: backing and
    /// cache swapped, a damaged superblock over a cache that may hold dirty data, a device that is not a cache (unless
    /// formatting it was asked for), a table's segment size that is not the cache's, devices of other sizes, a pmem
    /// too small for the buffers, and a cache whose pmem buffer is live opened in mode 0.
    /// </summary>
    public static OpenPlan PlanOpen(IBlockDevice backing, IBlockDevice cache, Tunables tunables, WriteboostOptions options, PmemRegion? pmem)
    {
        RefuseBackingThatIsACache(backing, cache);
        SuperblockReadResult superblock = Read(cache);
        if (superblock.State == SuperblockState.Unformatted && !options.Reformat && HoldsCacheEvidence(cache) is { } evidence)
        {
            throw new InvalidDataException(
                $"cache device {cache.Name}: sector 0 is blank, but {evidence}: a damaged superblock; refusing to format over a cache that may hold dirty data (wb check --segment-size-order N to inspect it, wb create --reformat to start over)");
        }
        bool blank = superblock.State is SuperblockState.Unformatted or SuperblockState.FormatInterrupted;
        if (blank && !options.Reformat && !options.FormatUnformatted)
        {
            throw new TableException(superblock.State == SuperblockState.FormatInterrupted
                ? $"cache device {cache.Name} holds a format that was interrupted (a crash while it was formatted): it is not a cache yet; `wb create` formats it"
                : $"cache device {cache.Name} is not a writeboost cache (sector 0 holds no superblock): `wb create` formats it");
        }
        bool format = options.Reformat || blank;
        int order = ChooseSegmentSizeOrder(superblock, tunables, format, cache.Name);
        CacheGeometry geometry = CacheGeometry.For(cache.SizeBytes, order, cache.Name);
        if (pmem is not null)
        {
            PmemBufferPool.CheckFits(pmem, options.PmemLayoutFor(geometry));
        }
        if (!format)
        {
            CheckSizes(superblock.Header!, backing, cache);
            if (pmem is null && (superblock.Header!.Flags & SuperblockHeaderOnDisk.FlagPmemBufferLive) != 0 && !options.DiscardPmem)
            {
                throw new TableException(
                    $"cache device {cache.Name} was last used in mode 1 and its pmem buffer may hold acknowledged writes: open it in mode 1 with its pmem device (which writes the buffer to the cache) and close it cleanly before using mode 0 (--discard-pmem opens it without them: they are lost)");
            }
            return new OpenPlan(Format: false, WasFormatted: true, geometry, superblock.Header!);
        }
        // An interrupted format is finished under the cache's own uuid: its pmem buffer (cleared or half formatted
        // for it) is still its own, not another cache's.
        Guid cacheUuid = superblock.State == SuperblockState.FormatInterrupted && !options.Reformat ? superblock.Header!.CacheUuid : Guid.NewGuid();
        SuperblockHeaderOnDisk header = new(order, cacheUuid, backing.SizeBytes, cache.SizeBytes)
        {
            Bindings = CacheBindings.None with { BackingIdentity = CacheBindings.Fit(options.BackingIdentity?.Identity ?? ""), BackingPath = options.BackingIdentity?.Path ?? "" },
        };
        return new OpenPlan(Format: true, WasFormatted: !blank, geometry, header);
    }

    /// <summary>Sector 0 as it is; a cache device smaller than the superblock region is refused.</summary>
    public static SuperblockReadResult Read(IBlockDevice cache)
    {
        if (cache.SizeBytes < CacheGeometry.SuperblockRegionBytes)
        {
            throw new ArgumentException($"cache device {cache.Name} is {cache.SizeBytes} bytes: smaller than the 1 MiB superblock region");
        }
        byte[] block = new byte[SuperblockHeaderOnDisk.WriteBytes];
        cache.Read(0, block);
        return SuperblockHeaderOnDisk.Read(block);
    }

    /// <summary>
    /// A backing device whose sector 0 is a writeboost superblock is a cache device given in the wrong place:
    /// most likely backing and cache are swapped, and going on would format the backing store as a cache.
    /// </summary>
    private static void RefuseBackingThatIsACache(IBlockDevice backing, IBlockDevice cache)
    {
        byte[] sector = new byte[SuperblockHeaderOnDisk.WriteBytes];
        backing.Read(0, sector);
        if (SuperblockHeaderOnDisk.Read(sector).State is SuperblockState.Formatted or SuperblockState.CorruptMagic or SuperblockState.FormatInterrupted)
        {
            throw new TableException(
                $"the backing device {backing.Name} holds a writeboost cache superblock: are the backing and cache devices ({backing.Name}, {cache.Name}) swapped? Refusing to go on, which would format the backing store as a cache");
        }
    }

    /// <summary>
    /// What shows that a device with a blank sector 0 held a cache: a superblock record whose checksum holds, or
    /// an intact segment in the first slot (its checksum does not depend on the segment size). Null: none.
    /// </summary>
    private static string? HoldsCacheEvidence(IBlockDevice cache)
    {
        byte[] block = new byte[Units.BlockBytes];
        cache.Read(SuperblockRecordOnDisk.WriteOffsetBytes, block);
        if (SuperblockRecordOnDisk.Read(block).ChecksumValid == true)
        {
            return "its superblock record is intact";
        }
        if (cache.SizeBytes < CacheGeometry.SuperblockRegionBytes + Units.BlockBytes)
        {
            return null;
        }
        // The segment size is unknown here: any length that fits the device and a u8 is tried.
        int maxLength = (int)Math.Min(byte.MaxValue, (cache.SizeBytes - CacheGeometry.SuperblockRegionBytes) / Units.BlockBytes - 1);
        byte[] segment = new byte[CacheGeometry.WrittenBytes(byte.MaxValue)];
        SegmentSlotRead read = SegmentLogReader.ReadAt(cache, CacheGeometry.SuperblockRegionBytes, maxLength, segment);
        return read.IsValid && read.Header.Length > 0
            ? $"its first slot holds an intact segment ({read.Header.Id})"
            : null;
    }

    /// <summary>The segment size of the cache being opened: the table's for a format, else sector 0's (which a table may repeat, not change).</summary>
    private static int ChooseSegmentSizeOrder(SuperblockReadResult superblock, Tunables tunables, bool format, string cacheName)
    {
        if (format)
        {
            return tunables.SegmentSizeOrder;
        }
        if (superblock.State == SuperblockState.CorruptMagic)
        {
            throw new InvalidDataException(
                $"cache device {cacheName}: the magic in sector 0 is damaged but the rest of the superblock is intact; refusing to format over a cache that may hold dirty data (wb check to inspect it, wb create --reformat to start over)");
        }
        if (superblock.State == SuperblockState.CorruptExtension)
        {
            throw new InvalidDataException(
                $"cache device {cacheName}: the superblock extension (geometry, identity) is corrupt; refusing to guess the geometry (reformat to start over)");
        }
        int onDisk = superblock.Header!.SegmentSizeOrder;
        if (tunables.IsGiven(TunableSpecs.SegmentSizeOrder) && tunables.SegmentSizeOrder != onDisk)
        {
            throw new TableException(
                $"cache device {cacheName} was formatted with segment_size_order {onDisk}, the table says {tunables.SegmentSizeOrder} (reformat to change it)");
        }
        return onDisk;
    }

    /// <summary>The devices are the sizes sector 0 recorded: another backing device, or a resized cache, is refused.</summary>
    private static void CheckSizes(SuperblockHeaderOnDisk header, IBlockDevice backing, IBlockDevice cache)
    {
        if (header.BackingSizeBytes != 0 && header.BackingSizeBytes != backing.SizeBytes)
        {
            throw new TableException(
                $"cache device {cache.Name} belongs to a backing device of {header.BackingSizeBytes} bytes, but {backing.Name} is {backing.SizeBytes} bytes: wrong backing/cache pair?");
        }
        if (header.CacheSizeBytes != 0 && header.CacheSizeBytes != cache.SizeBytes)
        {
            throw new TableException(
                $"cache device {cache.Name} was formatted at {header.CacheSizeBytes} bytes and is now {cache.SizeBytes} bytes (reformat to use the new size)");
        }
    }
}

/// <summary>What an open does with a cache device (<see cref="CacheSuperblock.PlanOpen"/>): format it (<paramref name="WasFormatted"/>: over a cache) or recover it, with this geometry and header.</summary>
internal sealed record OpenPlan(bool Format, bool WasFormatted, CacheGeometry Geometry, SuperblockHeaderOnDisk Header);
