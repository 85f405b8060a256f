using Writeboost.Cache.Format;
using Writeboost.Cache.Index;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Recovery;
using Writeboost.Cache.Table;
using Writeboost.Cache.Workers;
using Writeboost.Pmem;

namespace Writeboost.Cache.Core;

/// <summary>What the recovery of a formatted cache opened (mode 1: its pmem buffers) besides what it rebuilt.</summary>
internal sealed record Recovered(RecoveryReport Report, PmemBufferPool? Pool, PmemOpened? PmemOpened);

/// <summary>
/// The open of a formatted cache: reads the superblock record, checks the backing device is the one the cache's
/// dirty data is for, (mode 1) claims the pmem buffers and reads their records; <see cref="RingWalk"/> (or the
/// planted walk of a seeded bug) reads the ring and decides, and <see cref="LogRecovery"/> applies the decisions to
/// the index, the ring and the media. A walk that finds a durable segment's blocks unknown refuses the cache,
/// unless the loss is accepted. Runs once, before the workers start.
/// </summary>
internal sealed class OpenRecovery(DeviceParts parts, CacheSuperblock superblock, CacheIndex index, PoisonSet poison, SuperblockRecordWriter record, long sizeBytes)
{
    private readonly WriteboostOptions _options = parts.Options;

    private string CacheName => parts.Cache.Name;

    public Recovered Run(PmemRegion? pmemRegion)
    {
        byte[] recordBlock = new byte[Units.BlockBytes];
        parts.Cache.Read(SuperblockRecordOnDisk.WriteOffsetBytes, recordBlock);
        SuperblockRecordOnDisk.Record stored = SuperblockRecordOnDisk.Read(recordBlock);
        bool ours = superblock.Header.CacheUuid != Guid.Empty;
        bool pmemLive = superblock.PmemBufferLive;
        // Before anything is written (the pmem claimed, the log repaired): the dirty data is for this backing device.
        CheckBackingBinding(stored, ours, pmemLive);
        PmemRecovery? fromPmem = null;
        PmemBufferPool? pool = null;
        PmemOpened? pmemOpened = null;
        if (pmemRegion is not null)
        {
            PmemClaim claim = new(superblock.Header.CacheUuid, CacheName, superblock.Bindings.PmemUuid, pmemLive, _options.Reformat, _options.DiscardPmem);
            pool = PmemBufferPool.Open(pmemRegion, _options.PmemLayoutFor(parts.Geometry), claim, _options.Faults, out PmemOpened opened);
            pmemOpened = opened;
            fromPmem = opened.Formatted ? null : pool.Recover(0, _options.RecoveryMemo?.Pmem);
        }
        RecoveryReport report;
        using (fromPmem)
        {
            RingWalkResult walk = _options.Faults.WalkRing(Input(stored, ours, fromPmem, _options.AcceptDataLoss));
            if (walk.Refusal is not null)
            {
                throw new InvalidDataException(
                    $"cache device {CacheName}: {walk.Refusal}. Refusing to open it: wb check {CacheName} shows the damage; open it with --accept-loss to give that segment up (its blocks then read their older data) and keep the rest");
            }
            record.Found(walk.RecordId);
            report = new LogRecovery(parts.Cache, parts.Geometry, parts.Ring, index, poison, _options.Faults).Apply(walk, fromPmem);
        }
        if (pmemOpened is not null)
        {
            // Mode 1, last write of the open: sector 0 says the pmem buffer is live, and which buffer it is.
            superblock.MarkPmemLive(pmemOpened.PmemUuid);
        }
        else if (pmemLive && _options.DiscardPmem)
        {
            // Mode 0 given --discard-pmem: the pmem buffer's writes are given up, and the cache is mode 0's now.
            superblock.WriteFlags(0);
            report = report with { Warnings = [.. report.Warnings, "--discard-pmem: opened in mode 0 without the pmem buffer; the acknowledged writes only it held are lost"] };
        }
        superblock.RecordBacking(_options.BackingIdentity);
        return new Recovered(report, pool, pmemOpened);
    }

    private RingWalk.Input Input(SuperblockRecordOnDisk.Record stored, bool ours, PmemRecovery? fromPmem, bool acceptLoss) =>
        new(parts.Cache, parts.Geometry, stored, ours, Units.BytesToSectors(sizeBytes), fromPmem, acceptLoss, _options.Faults)
        {
            Checksums = _options.RecoveryMemo?.Segments,
        };

    /// <summary>
    /// The backing device must be the one the cache's dirty data is for: a cache that may hold dirty data (its pmem
    /// buffer live, or dirty blocks in its log) refuses a backing device whose identity differs from the one it
    /// recorded, unless <see cref="WriteboostOptions.OverwriteBacking"/>. A cache with nothing dirty takes any
    /// backing device (what it caches of the old one is never replayed: only dirty blocks are). Caches without a
    /// recorded identity (older, kernel-made, or opened without paths) are not checked.
    /// </summary>
    private void CheckBackingBinding(SuperblockRecordOnDisk.Record stored, bool ours, bool pmemLive)
    {
        string recorded = superblock.Bindings.BackingIdentity;
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
            RingWalkResult look = RingWalk.Run(Input(stored, ours, fromPmem: null, acceptLoss: true));
            int dirty = look.Segments.Sum(s => s.Entries.Count);
            holds = dirty > 0 ? $"it holds {dirty} dirty block(s) not yet written back" : null;
        }
        if (holds is not null)
        {
            throw new TableException(
                $"backing device {_options.BackingIdentity!.Path} is not the one cache {CacheName} belongs to: {holds} for {superblock.Bindings.BackingPath} ({recorded}), and this is {given}. Refusing to open, which would write them onto the wrong device (--overwrite-backing writes them onto this one: for the same device moved or copied)");
        }
    }
}
