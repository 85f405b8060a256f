using Writeboost.Cache.Format;

namespace Writeboost.Cache.Core;

/// <summary>One full-block read miss waiting to be staged into the cache as a clean block.</summary>
internal sealed class ReadCacheCell(long block)
{
    public long Block { get; } = block;
    public byte[] Data { get; } = new byte[Units.BlockBytes];
    public bool Filled { get; private set; }
    /// <summary>A write to the block, or a sequential run over the threshold, cancelled it.</summary>
    public bool Cancelled { get; set; }

    public void Fill(ReadOnlySpan<byte> block)
    {
        block.CopyTo(Data);
        Filled = true;
    }
}

/// <summary>
/// dm-writeboost's read cache cells: up to <c>nr_read_cache_cells</c> full-block read misses are reserved (the
/// cell is reserved before the backing read, so a write to the block in the meantime cancels it), and once all
/// are used and every read has completed, the uncancelled ones are staged together. Sequential detection: a run
/// of consecutive blocks longer than <c>read_cache_threshold</c> cancels its cells (large sequential reads are
/// not worth caching). Guarded by the device's lock.
/// </summary>
internal sealed class ReadCacheCells(int capacity)
{
    private readonly Dictionary<long, ReadCacheCell> _cells = new();
    private readonly List<ReadCacheCell> _order = [];
    // Cells being staged, by block: a write to their block while their stager waits for a buffer slot still cancels
    // them. Several stagers can wait at once (each completed its own set), even with cells of one block: each takes
    // out only its own cells when it is done.
    private readonly Dictionary<long, List<ReadCacheCell>> _staging = new();
    // Blocks a write-around write is on its way to the backing store for (a count per block): a read miss then would
    // read the old data and stage it as clean after the write is acknowledged, so no cell is reserved for them.
    private readonly Dictionary<long, int> _writesAround = new();
    private int _completed;
    private long _lastBlock = long.MinValue;
    private int _sequentialCount;
    private bool _overThreshold;

    public ReadCacheCell? ReserveLocked(long block, int threshold)
    {
        if (_order.Count == capacity || _cells.ContainsKey(block) || _writesAround.ContainsKey(block))
        {
            return null;
        }
        if (_lastBlock != long.MinValue && block == _lastBlock + 1)
        {
            _sequentialCount++;
        }
        else
        {
            _sequentialCount = 1;
            _overThreshold = false;
        }
        _lastBlock = block;
        ReadCacheCell cell = new(block);
        _cells[block] = cell;
        _order.Add(cell);
        if (_sequentialCount > threshold)
        {
            if (!_overThreshold)
            {
                // Cancel the whole run so far: it is sequential, not worth caching.
                for (int i = Math.Max(0, _order.Count - _sequentialCount); i < _order.Count; i++)
                {
                    _order[i].Cancelled = true;
                }
                _overThreshold = true;
            }
            cell.Cancelled = true;
        }
        return cell;
    }

    public void CancelLocked(long block)
    {
        if (_cells.Count == 0 && _staging.Count == 0)
        {
            return; // read caching off, or nothing reserved: every write skips the two lookups
        }
        // Both: a block can have a cell being staged (its set completed, the stager waiting for a slot) and a newer
        // cell reserved by a read that missed meanwhile. Cancelling only the first found let the staged one place
        // the old data after a write-around write had unmapped the block (found by the crash campaign, seed 3).
        if (_cells.TryGetValue(block, out ReadCacheCell? reserved))
        {
            reserved.Cancelled = true;
        }
        if (_staging.TryGetValue(block, out List<ReadCacheCell>? staging))
        {
            foreach (ReadCacheCell cell in staging)
            {
                cell.Cancelled = true;
            }
        }
    }

    /// <summary>
    /// A write-around write of <paramref name="block"/> starts (before the device lock is left for the backing write):
    /// any cell of the block is cancelled, and none is reserved until <see cref="EndWriteAroundLocked"/>.
    /// </summary>
    public void BeginWriteAroundLocked(long block)
    {
        CancelLocked(block);
        _writesAround[block] = _writesAround.GetValueOrDefault(block) + 1;
    }

    /// <summary>The backing write of <paramref name="block"/> is done (or failed): reads may cache it again, from the new data.</summary>
    public void EndWriteAroundLocked(long block)
    {
        int left = _writesAround[block] - 1;
        if (left == 0)
        {
            _writesAround.Remove(block);
        }
        else
        {
            _writesAround[block] = left;
        }
    }

    /// <summary>Marks one reserved cell's read done; true (with the cells to stage) when the whole set is done.</summary>
    public bool CompleteLocked(ReadCacheCell cell, out List<ReadCacheCell> ready)
    {
        _completed++;
        if (_order.Count < capacity || _completed < _order.Count)
        {
            ready = [];
            return false;
        }
        ready = _order.Where(c => c.Filled && !c.Cancelled).ToList();
        foreach (ReadCacheCell staged in ready)
        {
            if (!_staging.TryGetValue(staged.Block, out List<ReadCacheCell>? ofBlock))
            {
                _staging[staged.Block] = ofBlock = [];
            }
            ofBlock.Add(staged);
        }
        _cells.Clear();
        _order.Clear();
        _completed = 0;
        return true;
    }

    /// <summary>
    /// The stager of <paramref name="staged"/> (what <see cref="CompleteLocked"/> gave it) is done: those cells, and
    /// only those, are no longer being staged. (Forgetting every stager's cells let a write-around write miss a
    /// cell another stager was still waiting to place: the old data was served as clean after the write was
    /// acknowledged. Found by the showcase's 200,000-state campaign, seed 1.)
    /// </summary>
    public void FinishStagingLocked(List<ReadCacheCell> staged)
    {
        foreach (ReadCacheCell cell in staged)
        {
            List<ReadCacheCell> ofBlock = _staging[cell.Block];
            ofBlock.Remove(cell);
            if (ofBlock.Count == 0)
            {
                _staging.Remove(cell.Block);
            }
        }
    }
}
