using Writeboost.Cache.Format;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Recovery;
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
    /// state or an unformatted device, never a half-made cache that replays:
    /// 1. zero the superblock region (magic and record gone first);
    /// 2. zero the metadata block of every segment slot (no old segment can replay);
    /// 3. flush the cache device;
    /// 4. write sector 0 — magic, geometry, identity — with FUA, last.
    /// </summary>
    private void Format(bool wasFormatted)
    {
        byte[] zeros = new byte[CacheGeometry.SuperblockRegionBytes];
        _cache.Write(0, zeros);
        for (long slot = 0; slot < Geometry.NrSegments; slot++)
        {
            _cache.Write(Geometry.SegmentStartBytes(slot), zeros.AsSpan(0, Units.BlockBytes));
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
        PmemRecovery? fromPmem = null;
        bool pmemFormatted = false;
        if (_pmemRegion is not null)
        {
            PmemLayout layout = new(Geometry.SegmentSizeOrder, _buffers.Length, BlocksPerSegment);
            _pmem = PmemBufferPool.Open(_pmemRegion, layout, CacheUuid, _options.Reformat, out pmemFormatted);
            _pmem.Faults = Faults;
            fromPmem = pmemFormatted ? null : _pmem.Recover(0);
        }
        RingWalkResult walk = Faults.WalkRing(new RingWalk.Input(_cache, Geometry, stored, ours, Units.BytesToSectors(SizeBytes), fromPmem, _options.AcceptDataLoss, Faults));
        if (walk.Refusal is not null)
        {
            throw new InvalidDataException(
                $"cache device {_cache.Name}: {walk.Refusal}. Refusing to open it: wb check {_cache.Name} shows the damage; open it with --accept-loss to give that segment up (its blocks then read their older data) and keep the rest");
        }
        _record.Found(walk.RecordId);
        Recovery = new LogRecovery(_cache, Geometry, _ring, _cacheIndex, _poison, Faults).Apply(walk, fromPmem);
        FinishPmemOpen(pmemFormatted);
    }

    /// <summary>Mode 1, last step of an open: sector 0 says the pmem buffer is live (mode 0 refuses the cache until a clean mode-1 close).</summary>
    private void FinishPmemOpen(bool pmemFormatted)
    {
        if (_pmem is null)
        {
            return;
        }
        WriteSuperblockFlags(SuperblockHeaderOnDisk.FlagPmemBufferLive);
        Recovery = Recovery with { PmemFormatted = pmemFormatted, DirtyBlocksRecovered = _cacheIndex.DirtyCount };
    }

    /// <summary>Rewrites sector 0 with new flags (one FUA write of the 4 KiB header block).</summary>
    private void WriteSuperblockFlags(byte flags)
    {
        if (_superblock.Flags == flags)
        {
            return;
        }
        _superblock = _superblock with { Flags = flags };
        byte[] header = new byte[SuperblockHeaderOnDisk.WriteBytes];
        _superblock.WriteTo(header);
        _cache.Write(0, header, WriteOptions.Fua);
    }

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
        Format(wasFormatted: true);
        Recovery = Recovery with { Warnings = [$"write_around_mode: dirty data up to segment {lastId} was written back, then the cache was formatted"] };
    }
}
