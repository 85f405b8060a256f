using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Ring;
using Writeboost.Devices;

namespace Writeboost.Cache.Workers;

/// <summary>
/// Writes the superblock record (one FUA write): the last written-back id and what is durable now. The writeback
/// worker, the modulator and a clean close all write it; one at a time, and never with a lower id than one already
/// written (the modulator once read the id before a batch moved it on and wrote it after the batch's record: the
/// record went backwards while a writer already reused the slots it no longer covered).
/// </summary>
internal sealed class SuperblockRecordWriter(IBlockDevice cache, DeviceMonitor monitor, SegmentRing ring, WriteboostCounters counters, FaultHooks faults)
{
    private readonly Lock _writing = new();
    private ulong _writtenId; // the highest last_writeback_id the record carries (under _writing)
    private readonly byte[] _block = new byte[Units.BlockBytes]; // the record's 4 KiB write (under _writing)

    /// <summary>What the record on the cache device says now (a format: 0; a recovery: what it read).</summary>
    public void Found(ulong lastWritebackId)
    {
        lock (_writing)
        {
            _writtenId = lastWritebackId;
        }
    }

    public void Write(ulong lastWritebackId)
    {
        lock (_writing)
        {
            ulong id = Math.Max(lastWritebackId, _writtenId);
            ulong durable;
            using (monitor.Enter(Core.SchedulePoint.RecordAfterReadingDurable))
            {
                durable = faults.DurableIdToClaim(ring.DurableId);
            }
            SuperblockRecordOnDisk.WriteTo(_block, id, durable);
            cache.Write(SuperblockRecordOnDisk.WriteOffsetBytes, _block, WriteOptions.Fua);
            _writtenId = id;
            counters.CountCacheWrite(_block.Length);
        }
    }

    /// <summary>Writes the record with the last written-back id as it is now.</summary>
    public void WriteCurrent()
    {
        ulong id;
        using (monitor.Enter(Core.SchedulePoint.RecordAfterReadingWrittenBack))
        {
            id = ring.WrittenBackId;
        }
        Write(id);
    }
}
