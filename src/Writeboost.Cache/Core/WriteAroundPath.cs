using Writeboost.Cache.Format;
using Writeboost.Cache.Index;
using Writeboost.Cache.Workers;
using Writeboost.Devices;

namespace Writeboost.Cache.Core;

/// <summary>
/// write_around_mode (a static tunable): every write goes to the backing store, and any cached copy of its blocks
/// is forgotten first; reads may still be cached. A block being written around is kept out of the read cache until
/// its backing write lands (a read miss meanwhile would read, and stage, the old data).
/// </summary>
internal sealed class WriteAroundPath(DeviceParts parts, CacheIndex index, ReadCacheCells cells, HitStats stats, BackingStore backing)
{
    private readonly DeviceMonitor _monitor = parts.Monitor;

    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options)
    {
        using (_monitor.Enter(SchedulePoint.WriteAroundBeforeBackingWrite))
        {
            foreach (BlockPiece piece in new BlockPieces(offsetBytes, source.Length))
            {
                // Until the backing write lands, a read miss of the block would read the old data: no cell may
                // stage it (it would serve the old data, as clean, after this write was acknowledged).
                if (parts.Options.Faults.WriteAroundKeepsReadCacheOut)
                {
                    cells.BeginWriteAroundLocked(piece.Block);
                }
                else
                {
                    cells.CancelLocked(piece.Block);
                }
                bool hit = index.TryFind(piece.Block, out int g);
                stats.CountLocked(write: true, hit, onBuffer: false, fullsize: piece.SectorCount == Units.SectorsPerBlock);
                if (hit)
                {
                    index.Unmap(g);
                }
            }
        }
        try
        {
            backing.Write(offsetBytes, source, options);
        }
        finally
        {
            using (_monitor.Enter(SchedulePoint.WriteAroundAfterBackingWrite))
            {
                foreach (BlockPiece piece in new BlockPieces(offsetBytes, source.Length))
                {
                    if (parts.Options.Faults.WriteAroundKeepsReadCacheOut)
                    {
                        cells.EndWriteAroundLocked(piece.Block);
                    }
                }
            }
        }
    }
}
