using Writeboost.Cache.PmemBuffer;

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

    /// <summary>Opens a formatted cache (see <see cref="OpenRecovery"/>): the index, the ring and (mode 1) the pmem mirror rebuilt.</summary>
    private void Recover()
    {
        Recovered recovered = new OpenRecovery(_parts, _superblock, _cacheIndex, _poison, _record, SizeBytes).Run(_pmemRegion);
        Recovery = recovered.Report;
        if (recovered.Pool is not null)
        {
            _head.Mirror = MirrorIn(recovered.Pool);
            ReportPmemOpen(recovered.PmemOpened!);
        }
    }

    /// <summary>Mode 1, last step of a format: sector 0 says the pmem buffer is live (mode 0 refuses the cache until a clean mode-1 close), and which buffer it is.</summary>
    private void FinishPmemOpen(PmemOpened opened)
    {
        _superblock.MarkPmemLive(opened.PmemUuid);
        ReportPmemOpen(opened);
    }

    private void ReportPmemOpen(PmemOpened opened) =>
        Recovery = Recovery with
        {
            PmemFormatted = opened.Formatted,
            DirtyBlocksRecovered = _cacheIndex.DirtyCount,
            Warnings = opened.Warning is null ? Recovery.Warnings : [.. Recovery.Warnings, opened.Warning],
        };

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
            _head.Mirror.Clear(CacheUuid, _superblock.Bindings.PmemUuid);
        }
        Format(wasFormatted: true);
        Recovery = Recovery with { DrainedForWriteAround = true, Warnings = [$"write_around_mode: dirty data up to segment {lastId} was written back, then the cache was formatted"] };
    }
}
