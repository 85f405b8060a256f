using Writeboost.Cache.Format;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Recovery;
using Writeboost.Cache.Table;
using Writeboost.Devices;

namespace Writeboost.Cache.Core;

public sealed partial class WriteboostDevice
{
    /// <summary>Formats the cache device (see <see cref="CacheSuperblock.Format"/>): what it held is gone, nothing is poisoned.</summary>
    private void Format(bool wasFormatted)
    {
        _superblock.Format(Geometry);
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
        bool ours = _superblock.Header.CacheUuid != Guid.Empty;
        bool pmemLive = _superblock.PmemBufferLive;
        // Before anything is written (the pmem claimed, the log repaired): the dirty data is for this backing device.
        CheckBackingBinding(stored, ours, pmemLive);
        PmemRecovery? fromPmem = null;
        PmemOpened? pmemOpened = null;
        if (_pmemRegion is not null)
        {
            PmemClaim claim = new(CacheUuid, _cache.Name, _superblock.Bindings.PmemUuid, pmemLive, _options.Reformat, _options.DiscardPmem);
            PmemBufferPool pool = PmemBufferPool.Open(_pmemRegion, PmemLayoutFor(Geometry, _options), claim, Faults, out PmemOpened opened);
            _mirror = MirrorIn(pool);
            pmemOpened = opened;
            fromPmem = opened.Formatted ? null : pool.Recover(0);
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
            _superblock.WriteFlags(0);
            Recovery = Recovery with { Warnings = [.. Recovery.Warnings, "--discard-pmem: opened in mode 0 without the pmem buffer; the acknowledged writes only it held are lost"] };
        }
        _superblock.RecordBacking(_options.BackingIdentity);
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
        string recorded = _superblock.Bindings.BackingIdentity;
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
                $"backing device {_options.BackingIdentity!.Path} is not the one cache {_cache.Name} belongs to: {holds} for {_superblock.Bindings.BackingPath} ({recorded}), and this is {given}. Refusing to open, which would write them onto the wrong device (--overwrite-backing writes them onto this one: for the same device moved or copied)");
        }
    }

    /// <summary>Mode 1, last step of an open: sector 0 says the pmem buffer is live (mode 0 refuses the cache until a clean mode-1 close), and which buffer it is.</summary>
    private void FinishPmemOpen(PmemOpened opened)
    {
        _superblock.MarkPmemLive(opened.PmemUuid);
        Recovery = Recovery with
        {
            PmemFormatted = opened.Formatted,
            DirtyBlocksRecovered = _cacheIndex.DirtyCount,
            Warnings = opened.Warning is null ? Recovery.Warnings : [.. Recovery.Warnings, opened.Warning],
        };
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
        // Mode 1: the pmem buffers' records go before the cache is formatted. Left behind under the same cache id,
        // the next open would rebuild their segments from pmem as dirty data — older than what write-around writes
        // to the backing store from now on. Everything they hold was just written back; the buffer keeps its uuid,
        // so a crash between the two steps leaves this cache with its own (empty) buffer.
        if (Faults.WriteAroundSwitchClearsPmem)
        {
            _mirror.Clear(CacheUuid, _superblock.Bindings.PmemUuid);
        }
        Format(wasFormatted: true);
        Recovery = Recovery with { DrainedForWriteAround = true, Warnings = [$"write_around_mode: dirty data up to segment {lastId} was written back, then the cache was formatted"] };
    }
}
