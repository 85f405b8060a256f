using System.Diagnostics;
using Writeboost.Cache.Format;
using Writeboost.Devices;

namespace Writeboost.Cache.Core;

public sealed partial class WriteboostDevice
{
    private long _backingBusyTicks;
    private int _backingUtilPercent;
    private bool _allowWriteback;
    private long _writebackErrors;
    private Memory<byte> _writebackBuffer; // the writeback worker's alone; aligned, so O_DIRECT reads it without a bounce
    private readonly Lock _recordLock = new();
    private ulong _recordId;                // the last_writeback_id the superblock record holds (written by us)

    /// <summary>
    /// <c>drop_caches</c>: seals the open buffer, writes back every dirty block, and returns when none is left.
    /// </summary>
    public void DropCaches()
    {
        ThrowIfFailed();
        Flush();
        lock (_lock)
        {
            _forceDrop = true;
            _writebackSignal.Set();
            try
            {
                while (_lastWritebackId < _lastFlushedId || _openId != 0)
                {
                    ThrowIfFailed();
                    Monitor.Wait(_lock);
                }
            }
            finally
            {
                _forceDrop = false;
            }
        }
    }

    /// <summary>
    /// The writeback worker (dm-writeboost's writeback daemon). It runs when urged (a writer waits for a ring
    /// slot), when forced (drop_caches), or while the backing store is less busy than writeback_threshold.
    /// Each batch takes the oldest written segments, in id order:
    /// <list type="number">
    /// <item>read each segment's data blocks from the cache device (one read per segment);</item>
    /// <item>write its still-dirty blocks to the backing store, sorted by backing sector (a whole block in one
    /// write, a partial one as runs of dirty sectors);</item>
    /// <item>flush the backing store — only now is the data durable there;</item>
    /// <item>write the superblock record (FUA) with the new last written-back id;</item>
    /// <item>mark the blocks clean and advance last_writeback_id, freeing their ring slots.</item>
    /// </list>
    /// A failed write leaves everything dirty and is retried; a failed backing flush fails the device (the
    /// kernel may have dropped the pages: retrying would hide a loss).
    /// </summary>
    private void WritebackWorkerLoop()
    {
        while (true)
        {
            List<(ulong Id, long Slot, int Length, List<(int G, long Block, byte Bits)> Dirty)> batch = [];
            bool idle;
            lock (_lock)
            {
                idle = !_stopping && _failure is null && !WritebackWantedLocked();
            }
            if (idle)
            {
                _writebackSignal.WaitOne(1000);
                continue;
            }
            lock (_lock)
            {
                WaitWrittenSegmentsDurableLocked();
                if (!WritebackWantedLocked() && !_stopping && _failure is null)
                {
                    continue;
                }
                if (_stopping || _failure is not null)
                {
                    return;
                }
                ulong available = _lastFlushedId - _lastWritebackId;
                ulong n = Math.Min(available, (ulong)Tunables.NrMaxBatchedWriteback);
                for (ulong id = _lastWritebackId + 1; id <= _lastWritebackId + n; id++)
                {
                    long slot = Geometry.SlotOf(id);
                    List<(int, long, byte)> dirty = [];
                    for (int i = 0; i < _slotLength[slot]; i++)
                    {
                        int g = Global(slot, i);
                        if (_mbDirty[g])
                        {
                            dirty.Add((g, _mbBlock[g], _mbDataBits[g]));
                        }
                        else if (_mbSuperseded[g])
                        {
                            // Owed unless the newer copy is durable on the cache device by now.
                            bool newerDurable = _index.TryGetValue(_mbBlock[g], out int newer) && _slotId[SlotOfGlobal(newer)] <= _lastDurableId;
                            if (newerDurable)
                            {
                                _mbSuperseded[g] = false;
                            }
                            else
                            {
                                dirty.Add((g, _mbBlock[g], _mbDataBits[g]));
                            }
                        }
                    }
                    batch.Add((id, slot, _slotLength[slot], dirty));
                }
            }
            try
            {
                _options.Schedule.At(SchedulePoint.WritebackBeforeBatch);
                WriteBackBatch(batch);
            }
            catch (Exception error) when (error is IOException or ArgumentException)
            {
                Interlocked.Increment(ref _writebackErrors);
                if (error is WritebackFlushFailedException)
                {
                    Fail(error);
                    return;
                }
                // Nothing was marked clean: the same batch is tried again after a pause.
                _stopSignal.Wait(_options.WritebackRetryDelay);
            }
        }
    }

    /// <summary>
    /// Before a batch: makes every segment written to the cache device durable there (one cache flush). A copy
    /// superseded by an overwrite is owed to writeback only until its newer copy is durable; with no flush from
    /// the clients (mode 0 requests none by itself) nothing else makes it so, and writeback would copy to the
    /// backing store nearly every block ever overwritten. Returns early when the device stops or fails.
    /// </summary>
    private void WaitWrittenSegmentsDurableLocked()
    {
        ulong target = _lastFlushedId;
        if (_lastDurableId >= target)
        {
            return;
        }
        if (_durableRequestedId < target)
        {
            _durableRequestedId = target;
            _flushSignal.Set();
        }
        while (_lastDurableId < target && !_stopping && !_abandoned && _failure is null)
        {
            Monitor.Wait(_lock);
        }
    }

    private bool WritebackWantedLocked() =>
        _lastFlushedId > _lastWritebackId && (_urgeWriteback || _forceDrop || _allowWriteback);

    private void WriteBackBatch(List<(ulong Id, long Slot, int Length, List<(int G, long Block, byte Bits)> Dirty)> batch)
    {
        // The batch's segments are read into one buffer the worker keeps (at most nr_max_batched_writeback
        // segments: 16 MiB at 32 × 512 KiB), and writes point into it: no per-segment or per-block garbage.
        long needBytes = batch.Sum(b => b.Dirty.Count == 0 ? 0 : Units.BlocksToBytes(b.Length));
        if (_writebackBuffer.Length < needBytes)
        {
            _writebackBuffer = AlignedMemory.Allocate(checked((int)needBytes));
        }
        List<(long Block, ulong Id, byte Bits, int BufferOffsetBytes)> writes = [];
        int segmentOffsetBytes = 0;
        foreach ((ulong id, long slot, int length, List<(int G, long Block, byte Bits)> dirty) in batch)
        {
            if (dirty.Count == 0)
            {
                continue;
            }
            int segmentBytes = (int)Units.BlocksToBytes(length);
            _cache.Read(Geometry.DataBlockBytes(slot, 0), _writebackBuffer.Span.Slice(segmentOffsetBytes, segmentBytes));
            Counters.CountCacheRead(segmentBytes);
            foreach ((int g, long block, byte bits) in dirty)
            {
                writes.Add((block, id, bits, segmentOffsetBytes + (int)Units.BlocksToBytes(IndexInSegment(g))));
            }
            segmentOffsetBytes += segmentBytes;
        }
        // Sorted by backing block, then by id: a superseded copy and its newer copy can share a batch, and the
        // newer one must land last.
        writes.Sort((a, b) => a.Block != b.Block ? a.Block.CompareTo(b.Block) : a.Id.CompareTo(b.Id));
        foreach ((long block, ulong _, byte bits, int bufferOffsetBytes) in writes)
        {
            ReadOnlySpan<byte> data = _writebackBuffer.Span.Slice(bufferOffsetBytes, Units.BlockBytes);
            long blockOffset = Units.BlocksToBytes(block);
            if (bits == Units.FullBlockBits)
            {
                WritebackWrite(blockOffset, data);
                continue;
            }
            int sector = 0;
            while (sector < Units.SectorsPerBlock)
            {
                if (!Units.HasSector(bits, sector))
                {
                    sector++;
                    continue;
                }
                int run = 1;
                while (sector + run < Units.SectorsPerBlock && Units.HasSector(bits, sector + run))
                {
                    run++;
                }
                WritebackWrite(blockOffset + sector * Units.SectorBytes, data.Slice(sector * Units.SectorBytes, run * Units.SectorBytes));
                sector += run;
            }
        }
        _options.Schedule.At(SchedulePoint.WritebackBeforeBackingFlush);
        try
        {
            if (Mutant != Mutant.ReuseSlotBeforeWritebackFlushed)
            {
                BackingFlush();
            }
        }
        catch (IOException error)
        {
            throw new WritebackFlushFailedException(error);
        }
        ulong newLastWriteback = batch[^1].Id;
        WriteSuperblockRecord(newLastWriteback);
        _options.Schedule.At(SchedulePoint.WritebackBeforeMarkClean);
        MarkWrittenBack(batch, newLastWriteback);
    }

    /// <summary>The batch's blocks are clean and its segments' slots free: only once the record says so.</summary>
    private void MarkWrittenBack(List<(ulong Id, long Slot, int Length, List<(int G, long Block, byte Bits)> Dirty)> batch, ulong newLastWriteback)
    {
        lock (_lock)
        {
            foreach ((ulong _, long _, int _, List<(int G, long Block, byte Bits)> dirty) in batch)
            {
                foreach ((int g, long block, byte _) in dirty)
                {
                    // An overwrite since the snapshot already made this copy clean and moved the mapping on.
                    if (_mbBlock[g] == block)
                    {
                        SetClean(g);
                        _mbSuperseded[g] = false;
                    }
                }
            }
            _lastWritebackId = newLastWriteback;
            ulong needed = _openId != 0 ? _openId : _lastQueuedId + 1;
            if (needed <= (ulong)Geometry.NrSegments || _lastWritebackId >= needed - (ulong)Geometry.NrSegments)
            {
                _urgeWriteback = false;
            }
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>A write of writeback's: an error fails the batch (nothing of it is marked clean), unless mutated.</summary>
    private void WritebackWrite(long offsetBytes, ReadOnlySpan<byte> data)
    {
        try
        {
            BackingWrite(offsetBytes, data, WriteOptions.None);
        }
        catch (IOException) when (Mutant == Mutant.WritebackIgnoresWriteError)
        {
        }
    }

    /// <summary>
    /// Writes the superblock record (FUA). It never moves back: the periodic update (update_sb_record_interval)
    /// may have read last_writeback_id just before a writeback batch wrote a newer one, and writing its value
    /// after would let recovery start before segments whose slots were already reused (found by the crash
    /// harness: a record going from 8 back to 5 lost four durable segments). Record writes are serialised here.
    /// </summary>
    private void WriteSuperblockRecord(ulong lastWritebackId)
    {
        lock (_recordLock)
        {
            if (lastWritebackId < _recordId)
            {
                return;
            }
            byte[] block = new byte[Units.BlockBytes];
            SuperblockRecordOnDisk.WriteTo(block, lastWritebackId);
            _cache.Write(SuperblockRecordOnDisk.WriteOffsetBytes, block, WriteOptions.Fua);
            Counters.CountCacheWrite(block.Length);
            _recordId = lastWritebackId;
        }
    }

    private void BackingWrite(long offsetBytes, ReadOnlySpan<byte> data, WriteOptions options)
    {
        long start = Stopwatch.GetTimestamp();
        _backing.Write(offsetBytes, data, options);
        Interlocked.Add(ref _backingBusyTicks, Stopwatch.GetTimestamp() - start);
        Counters.CountBackingWrite(data.Length);
    }

    private void BackingRead(long offsetBytes, Span<byte> destination)
    {
        long start = Stopwatch.GetTimestamp();
        _backing.Read(offsetBytes, destination);
        Interlocked.Add(ref _backingBusyTicks, Stopwatch.GetTimestamp() - start);
    }

    private void BackingFlush()
    {
        long start = Stopwatch.GetTimestamp();
        _backing.Flush();
        Interlocked.Add(ref _backingBusyTicks, Stopwatch.GetTimestamp() - start);
    }

    /// <summary>
    /// Once a second: the backing store's utilisation (the share of the last second our own I/O to it was in
    /// flight — dm-writeboost reads the disk's io_ticks), which allows background writeback below
    /// writeback_threshold; the periodic superblock record; and the periodic data sync (sync_data_interval).
    /// </summary>
    private void ModulatorLoop()
    {
        long second = (long)(_options.ModulatorSecond.TotalSeconds * Stopwatch.Frequency);
        long lastTick = Stopwatch.GetTimestamp();
        long lastSbRecord = lastTick;
        long lastSync = lastTick;
        while (true)
        {
            _stopSignal.Wait(_options.ModulatorSecond);
            lock (_lock)
            {
                if (_stopping || _failure is not null)
                {
                    return;
                }
            }
            long now = Stopwatch.GetTimestamp();
            if (now - lastTick < second)
            {
                continue;
            }
            long busy = Interlocked.Exchange(ref _backingBusyTicks, 0);
            int util = (int)Math.Clamp(100 * busy / Math.Max(1, now - lastTick), 0, 100);
            lastTick = now;
            int threshold = Tunables.WritebackThreshold;
            lock (_lock)
            {
                _backingUtilPercent = util;
                _allowWriteback = threshold > 0 && util < threshold;
                if (_allowWriteback)
                {
                    _writebackSignal.Set();
                }
            }
            try
            {
                int sbInterval = Tunables.UpdateSbRecordInterval;
                if (sbInterval > 0 && now - lastSbRecord >= sbInterval * second)
                {
                    lastSbRecord = now;
                    ulong id;
                    lock (_lock)
                    {
                        id = _lastWritebackId;
                    }
                    WriteSuperblockRecord(id);
                }
                int syncInterval = Tunables.SyncDataInterval;
                if (syncInterval > 0 && now - lastSync >= syncInterval * second)
                {
                    lastSync = now;
                    Flush();
                }
            }
            catch (IOException error)
            {
                Fail(error);
                return;
            }
            catch (ObjectDisposedException) when (Volatile.Read(ref _stopping))
            {
                // The device closed while the periodic sync waited on the flush worker (found by the crash
                // harness: this thread's exception ended the process): the close flushes, or it was a crash.
                return;
            }
        }
    }

    /// <summary>The backing store's flush failed after writeback: fatal, never retried.</summary>
    private sealed class WritebackFlushFailedException(IOException inner)
        : IOException($"flush of the backing store failed after writeback: {inner.Message}", inner);
}
