using Writeboost.Cache.Format;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Recovery;
using Writeboost.Cache.Table;
using Writeboost.Devices;

namespace Writeboost.Cache.Core;

/// <summary>What opening a cache found and did.</summary>
public sealed record RecoveryReport(
    bool Formatted,
    ulong SuperblockRecordId,
    ulong FirstReplayedId,
    ulong LastReplayedId,
    int SegmentsReplayed,
    int SegmentsDiscarded,
    long DirtyBlocksRecovered,
    string? StopReason,
    IReadOnlyList<string> Warnings)
{
    /// <summary>Mode 1: the pmem buffer was blank (or reformatted) and got formatted.</summary>
    public bool PmemFormatted { get; init; }

    /// <summary>Opened with <c>write_around_mode 1</c>: what recovery found was written back, then the cache formatted (<see cref="Formatted"/>).</summary>
    public bool DrainedForWriteAround { get; init; }
    /// <summary>Mode 1: segments rebuilt from pmem buffers and written to the cache device.</summary>
    public int PmemSegmentsRebuilt { get; init; }
    /// <summary>Mode 1: records whose CRC failed that no later record vouches for (writes in flight at the crash, as far as pmem shows).</summary>
    public int PmemTornRecords { get; init; }

    /// <summary>Every segment id up to this was shown durable by the media (segment headers, the superblock record, pmem).</summary>
    public ulong ProvenDurableId { get; init; }
    /// <summary>The segments recovery did not simply replay: damage, a crash's torn tail, a loss accepted, a damaged pmem rebuild.</summary>
    public IReadOnlyList<SegmentRecovery> Segments { get; init; } = [];
    /// <summary>Blocks whose newest durable copy is lost: reads of them fail until they are rewritten or clear_poison.</summary>
    public int PoisonedBlocks { get; init; }
    /// <summary>A durable segment's blocks were unknown and the device was opened with the loss accepted.</summary>
    public bool LossAccepted { get; init; }

    public static RecoveryReport None { get; } = new(false, 0, 0, 0, 0, 0, 0, null, []);
}

/// <summary>One segment recovery did not simply replay.</summary>
/// <param name="Kind">"damage" (durable, good blocks replayed, damaged ones poisoned), "crash-tail" (nothing shows it
/// was durable: taken for a crash's torn write and dropped), "lost" (durable, its blocks unknown: given up, the loss
/// accepted), "pmem" (rebuilt from the pmem buffer, some acknowledged records damaged).</param>
public sealed record SegmentRecovery(ulong Id, long Slot, string Kind, int BlocksReplayed, int BlocksPoisoned, string Detail);

public sealed partial class WriteboostDevice
{
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
    private void Format(bool wasFormatted)
    {
        ReadOnlySpan<byte> zeros = SuperblockRegionZeros;
        byte[] formatting = new byte[SuperblockHeaderOnDisk.WriteBytes];
        (_superblock with { Flags = SuperblockHeaderOnDisk.FlagFormatting }).WriteTo(formatting);
        _cache.Write(0, formatting, WriteOptions.Fua);
        _cache.Write(SuperblockHeaderOnDisk.WriteBytes, zeros[SuperblockHeaderOnDisk.WriteBytes..]);
        for (long slot = 0; slot < Geometry.NrSegments; slot++)
        {
            _cache.Write(Geometry.SegmentStartBytes(slot), zeros[..Units.BlockBytes]);
        }
        _cache.Flush();
        byte[] header = new byte[SuperblockHeaderOnDisk.WriteBytes];
        _superblock = _superblock with { Flags = 0 };
        _superblock.WriteTo(header);
        _cache.Write(0, header, WriteOptions.Fua);
        _record.Found(0);
        _poison.ForgetAll();
        Recovery = RecoveryReport.None with
        {
            Formatted = true,
            Warnings = wasFormatted ? ["the cache device held a cache; it was reformatted (its contents are gone)"] : [],
        };
    }

    /// <summary>What a format writes over the superblock region and each slot's metadata block (shared, never written).</summary>
    private static readonly byte[] SuperblockRegionZeros = new byte[CacheGeometry.SuperblockRegionBytes];

    /// <summary>
    /// Opens a formatted cache: reads the superblock record and (mode 1) opens the pmem buffers and reads their
    /// records; <see cref="RingWalk"/> (or the planted walk of a seeded bug) reads the ring and decides, and
    /// <see cref="LogRecovery"/> applies the decisions to the index, the ring and the media. A walk that finds a
    /// durable segment's blocks unknown refuses the cache, unless the loss is accepted.
    /// </summary>
    private void Recover()
    {
        byte[] recordBlock = new byte[Units.BlockBytes];
        _cache.Read(SuperblockRecordOnDisk.WriteOffsetBytes, recordBlock);
        SuperblockRecordOnDisk.Record stored = SuperblockRecordOnDisk.Read(recordBlock);
        bool ours = _superblock.CacheUuid != Guid.Empty;
        bool pmemLive = (_superblock.Flags & SuperblockHeaderOnDisk.FlagPmemBufferLive) != 0;
        // Before anything is written (the pmem claimed, the log repaired): the dirty data is for this backing device.
        CheckBackingBinding(stored, ours, pmemLive);
        PmemRecovery? fromPmem = null;
        PmemOpened? pmemOpened = null;
        if (_pmemRegion is not null)
        {
            PmemClaim claim = new(CacheUuid, _cache.Name, _superblock.Bindings?.PmemUuid ?? Guid.Empty, pmemLive, _options.Reformat, _options.DiscardPmem);
            _pmem = PmemBufferPool.Open(_pmemRegion, PmemLayoutFor(Geometry, _options), claim, out PmemOpened opened);
            _pmem.Faults = Faults;
            pmemOpened = opened;
            fromPmem = opened.Formatted ? null : _pmem.Recover(0);
        }
        RingWalkResult walk = Faults.WalkRing(new RingWalk.Input(_cache, Geometry, stored, ours, Units.BytesToSectors(SizeBytes), fromPmem, _options.AcceptDataLoss, Faults));
        if (walk.Refusal is not null)
        {
            throw new InvalidDataException(
                $"cache device {_cache.Name}: {walk.Refusal}. Refusing to open it: wb check {_cache.Name} shows the damage; open it with --accept-loss to give that segment up (its blocks then read their older data) and keep the rest");
        }
        _record.Found(walk.RecordId);
        Recovery = new LogRecovery(_cache, Geometry, _ring, _cacheIndex, _poison, Faults).Apply(walk, fromPmem);
        if (pmemOpened is not null)
        {
            FinishPmemOpen(pmemOpened);
        }
        else if (pmemLive && _options.DiscardPmem)
        {
            // Mode 0 given --discard-pmem: the pmem buffer's writes are given up, and the cache is mode 0's now.
            WriteSuperblock(_superblock with { Flags = 0 });
            Recovery = Recovery with { Warnings = [.. Recovery.Warnings, "--discard-pmem: opened in mode 0 without the pmem buffer; the acknowledged writes only it held are lost"] };
        }
        RecordBackingIdentity();
    }

    /// <summary>
    /// The backing device must be the one the cache's dirty data is for: a cache that may hold dirty data (its pmem
    /// buffer live, or dirty blocks in its log) refuses a backing device whose identity differs from the one it
    /// recorded, unless <see cref="WriteboostOptions.OverwriteBacking"/>. A cache with nothing dirty takes any
    /// backing device (what it caches of the old one is never replayed: only dirty blocks are). Caches without a
    /// recorded identity (older, kernel-made, or opened without paths) are not checked.
    /// </summary>
    private void CheckBackingBinding(SuperblockRecordOnDisk.Record stored, bool ours, bool pmemLive)
    {
        string recorded = _superblock.Bindings?.BackingIdentity ?? "";
        string? given = _options.BackingIdentity is { } identity ? CacheBindings.Fit(identity.Identity) : null;
        if (recorded.Length == 0 || given is null || given == recorded || _options.OverwriteBacking)
        {
            return;
        }
        string? holds = null;
        if (pmemLive)
        {
            holds = "its pmem buffer may hold acknowledged writes";
        }
        else
        {
            // Read only: the walk decides, nothing is applied.
            RingWalkResult look = RingWalk.Run(new RingWalk.Input(_cache, Geometry, stored, ours, Units.BytesToSectors(SizeBytes), null, AcceptLoss: true, Faults));
            int dirty = look.Segments.Sum(s => s.Entries.Count);
            holds = dirty > 0 ? $"it holds {dirty} dirty block(s) not yet written back" : null;
        }
        if (holds is not null)
        {
            throw new TableException(
                $"backing device {_options.BackingIdentity!.Path} is not the one cache {_cache.Name} belongs to: {holds} for {_superblock.Bindings!.BackingPath} ({recorded}), and this is {given}. Refusing to open, which would write them onto the wrong device (--overwrite-backing writes them onto this one: for the same device moved or copied)");
        }
    }

    /// <summary>Sector 0 names the backing device opened now, when it named another (or none): after a check passed or was overridden.</summary>
    private void RecordBackingIdentity()
    {
        if (_options.BackingIdentity is not { } identity)
        {
            return;
        }
        CacheBindings bindings = _superblock.Bindings ?? CacheBindings.None;
        string fitted = CacheBindings.Fit(identity.Identity);
        if (bindings.BackingIdentity == fitted && bindings.BackingPath == CacheBindings.Fit(identity.Path))
        {
            return;
        }
        WriteSuperblock(_superblock with { Bindings = bindings with { BackingIdentity = fitted, BackingPath = identity.Path } });
    }

    /// <summary>Mode 1, last step of an open: sector 0 says the pmem buffer is live (mode 0 refuses the cache until a clean mode-1 close), and which buffer it is.</summary>
    private void FinishPmemOpen(PmemOpened opened)
    {
        CacheBindings bindings = _superblock.Bindings ?? CacheBindings.None;
        WriteSuperblock(_superblock with { Flags = SuperblockHeaderOnDisk.FlagPmemBufferLive, Bindings = bindings with { PmemUuid = opened.PmemUuid } });
        Recovery = Recovery with
        {
            PmemFormatted = opened.Formatted,
            DirtyBlocksRecovered = _cacheIndex.DirtyCount,
            Warnings = opened.Warning is null ? Recovery.Warnings : [.. Recovery.Warnings, opened.Warning],
        };
    }

    /// <summary>Rewrites sector 0 (one FUA write of the 4 KiB header block), when it changes.</summary>
    private void WriteSuperblock(SuperblockHeaderOnDisk header)
    {
        if (header == _superblock)
        {
            return;
        }
        _superblock = header;
        byte[] block = new byte[SuperblockHeaderOnDisk.WriteBytes];
        _superblock.WriteTo(block);
        _cache.Write(0, block, WriteOptions.Fua);
    }

    private void WriteSuperblockFlags(byte flags) => WriteSuperblock(_superblock with { Flags = flags });

    /// <summary>write_around_mode on a cache that holds dirty data: write it all back, then format.</summary>
    private void DrainAndReformat()
    {
        if (!_poison.IsEmpty)
        {
            throw new InvalidDataException(
                $"write_around_mode: {_poison.BlockCount} block(s) of {_cache.Name} are poisoned (their newest durable copy is lost to damaged media); formatting for write-around would make them read older data silently. Rewrite them or send clear_poison in write-back mode first");
        }
        if (_cacheIndex.DirtyCount > 0)
        {
            StartWorkers();
            DropCaches();
            StopWorkers();
            _monitor.Resume();
        }
        ulong lastId = _ring.QueuedId;
        _cacheIndex.Reset();
        _ring.Clear();
        // Mode 1: the pmem buffers' records go before the cache is formatted. Left behind under the same cache id,
        // the next open would rebuild their segments from pmem as dirty data — older than what write-around writes
        // to the backing store from now on. Everything they hold was just written back; the buffer keeps its uuid,
        // so a crash between the two steps leaves this cache with its own (empty) buffer.
        if (Faults.WriteAroundSwitchClearsPmem)
        {
            _pmem?.Clear(CacheUuid, _superblock.Bindings?.PmemUuid ?? Guid.Empty);
        }
        Format(wasFormatted: true);
        Recovery = Recovery with { DrainedForWriteAround = true, Warnings = [$"write_around_mode: dirty data up to segment {lastId} was written back, then the cache was formatted"] };
    }
}
