using System.Diagnostics;
using Writeboost.Cache.Format;
using Writeboost.Cache.Workers;
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
    private ulong _recordWrittenId;        // the highest last_writeback_id the record has been written with (under _recordLock)

    /// <summary>
    /// <c>drop_caches</c>: seals the open buffer, writes back every dirty block, and returns when none is left.
    /// </summary>
    public void DropCaches()
    {
        ThrowIfFailed();
        if (_options.ReadOnly)
        {
            throw new IOException($"{Name} is open read-only (to look at it): drop_caches would write back");
        }
        Flush();
        lock (_lock)
        {
            _forceDrop = true;
            _writebackSignal.Set();
            try
            {
                while (_ring.WrittenBackId < _ring.FlushedId || _ring.OpenId != 0)
                {
                    ThrowIfFailed();
                    if (_writebackHeldBy != 0)
                    {
                        throw new IOException(PoisonHoldsWritebackMessage(_writebackHeldBy, "drop_caches cannot write everything back"));
                    }
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
            ulong durableNeeded = 0;
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
                ulong available = _ring.FlushedId - _ring.WrittenBackId;
                ulong n = Math.Min(available, (ulong)Tunables.NrMaxBatchedWriteback);
                if (!_poison.IsEmpty)
                {
                    n = PassableLocked(n, out durableNeeded);
                }
                if (n == 0 && durableNeeded == 0)
                {
                    continue; // held by poison: idle until a write clears it (_writebackHeldBy)
                }
                for (ulong id = _ring.WrittenBackId + 1; id <= _ring.WrittenBackId + n; id++)
                {
                    long slot = Geometry.SlotOf(id);
                    List<(int, long, byte)> dirty = [];
                    for (int i = 0; i < _ring.LengthOf(slot); i++)
                    {
                        int g = Global(slot, i);
                        if (_cacheIndex.IsDirty(g))
                        {
                            dirty.Add((g, _cacheIndex.BlockAt(g), _cacheIndex.SectorsAt(g)));
                        }
                        else if (_cacheIndex.IsSuperseded(g))
                        {
                            // Owed unless the newer copy is durable on the cache device by now.
                            bool newerDurable = _cacheIndex.TryFind(_cacheIndex.BlockAt(g), out int newer) && _ring.IdIn(SlotOfGlobal(newer)) <= _ring.DurableId;
                            if (newerDurable)
                            {
                                _cacheIndex.ForgetSuperseded(g);
                            }
                            else
                            {
                                dirty.Add((g, _cacheIndex.BlockAt(g), _cacheIndex.SectorsAt(g)));
                            }
                        }
                    }
                    batch.Add((id, slot, _ring.LengthOf(slot), dirty));
                }
            }
            if (batch.Count == 0)
            {
                // Every lost sector of the next segment was rewritten; once those writes are durable, go on.
                try
                {
                    MakeDurable(durableNeeded);
                }
                catch (Exception error) when (error is IOException or ObjectDisposedException)
                {
                    // The device failed or is closing: the loop sees it.
                }
                continue;
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
        ulong target = _ring.FlushedId;
        if (_ring.DurableId >= target)
        {
            return;
        }
        if (_ring.DurableRequestedId < target)
        {
            _ring.RequestDurable(target);
            _flushSignal.Set();
        }
        while (_ring.DurableId < target && !_stopping && !_abandoned && _failure is null)
        {
            Monitor.Wait(_lock);
        }
    }

    private bool WritebackWantedLocked() =>
        _ring.FlushedId > _ring.WrittenBackId && (_urgeWriteback || _forceDrop || _allowWriteback) && _writebackHeldBy == 0;

    /// <summary>
    /// How many of the next <paramref name="n"/> segments writeback may pass: it stops before one that still holds
    /// a lost copy — its damaged blocks cannot be written back, and once its slot is reused nothing would say they
    /// are lost (recovery derives poison from the damaged copy itself). When the very next one is held by poisoned
    /// sectors, <c>_writebackHeldBy</c> says so and waiting writers are woken to fail; when only the writes that
    /// cleared them are not durable yet, <paramref name="durableNeeded"/> says which segment to make durable.
    /// </summary>
    private ulong PassableLocked(ulong n, out ulong durableNeeded)
    {
        durableNeeded = 0;
        for (ulong k = 0; k < n; k++)
        {
            ulong id = _ring.WrittenBackId + 1 + k;
            WritebackHold hold = _poison.Blocking(Geometry.SlotOf(id), BlocksPerSegment, _ring.DurableId, out ulong needed);
            if (hold == WritebackHold.None)
            {
                continue;
            }
            if (k == 0)
            {
                if (hold == WritebackHold.ClearedNotDurable)
                {
                    durableNeeded = needed;
                }
                else
                {
                    _writebackHeldBy = id;
                    Monitor.PulseAll(_lock);
                }
            }
            return k;
        }
        return n;
    }

    /// <summary>Why writeback is stuck, for the writer or drop_caches that needs it to go on.</summary>
    private string PoisonHoldsWritebackMessage(ulong held, string who)
    {
        long slot = Geometry.SlotOf(held);
        return $"{Name}: {who}, but writeback cannot pass segment {held} (slot {slot}): it holds the lost copies of {_poison.CountInSlot(slot, BlocksPerSegment)} poisoned block(s) (damaged media). Rewrite those blocks, or acknowledge the loss with the message clear_poison (wb check lists them)";
    }

    /// <summary>The oldest segment not yet written back whose lost copies still poison something (writeback stops before it), or null.</summary>
    private ulong? OldestPoisonedSegmentLocked()
    {
        for (ulong id = _ring.WrittenBackId + 1; id <= _ring.QueuedId + 1 && id <= _ring.WrittenBackId + (ulong)Geometry.NrSegments; id++)
        {
            long slot = Geometry.SlotOf(id);
            if (_ring.IdIn(slot) == id && _poison.Blocking(slot, BlocksPerSegment, _ring.DurableId, out _) == WritebackHold.Poisoned)
            {
                return id;
            }
        }
        return null;
    }

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
            if (Faults.WritebackFlushesBackingBeforeClean)
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
                    if (_cacheIndex.BlockAt(g) == block)
                    {
                        _cacheIndex.MarkClean(g);
                    }
                }
            }
            _ring.MarkWrittenBack(newLastWriteback);
            ulong needed = _ring.OpenId != 0 ? _ring.OpenId : _ring.QueuedId + 1;
            if (needed <= (ulong)Geometry.NrSegments || _ring.WrittenBackId >= needed - (ulong)Geometry.NrSegments)
            {
                _urgeWriteback = false;
            }
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>A write of writeback's: an error fails the batch (nothing of it is marked clean).</summary>
    private void WritebackWrite(long offsetBytes, ReadOnlySpan<byte> data)
    {
        try
        {
            BackingWrite(offsetBytes, data, WriteOptions.None);
        }
        catch (IOException) when (!Faults.WritebackWriteErrorFailsBatch)
        {
        }
    }

    /// <summary>
    /// Writes the superblock record (FUA): the last written-back id and what is durable now. The writeback worker,
    /// the modulator and a clean close all write it; one at a time, and never a lower id than one already written
    /// (the modulator read the id before a batch moved it on, and then wrote it after the batch's record: the
    /// record went backwards while the writer already reused the slots it no longer covered).
    /// </summary>
    private void WriteSuperblockRecord(ulong lastWritebackId)
    {
        lock (_recordLock)
        {
            ulong id = Math.Max(lastWritebackId, _recordWrittenId);
            ulong durable;
            lock (_lock)
            {
                durable = Faults.DurableIdToClaim(_ring.DurableId);
            }
            byte[] block = new byte[Units.BlockBytes];
            SuperblockRecordOnDisk.WriteTo(block, id, durable);
            _cache.Write(SuperblockRecordOnDisk.WriteOffsetBytes, block, WriteOptions.Fua);
            _recordWrittenId = id;
            Counters.CountCacheWrite(block.Length);
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

    /// <summary>The device as the modulator sees it (<see cref="Modulator"/>).</summary>
    private sealed class ModulatedDevice(WriteboostDevice device) : IModulatedDevice
    {
        public bool Stopped
        {
            get
            {
                lock (device._lock)
                {
                    return device._stopping || device._failure is not null;
                }
            }
        }

        public bool Closing => Volatile.Read(ref device._stopping);

        public long TakeBackingBusyTicks() => Interlocked.Exchange(ref device._backingBusyTicks, 0);

        public void SetBackingUtilisation(int percent, bool allowWriteback)
        {
            lock (device._lock)
            {
                device._backingUtilPercent = percent;
                device._allowWriteback = allowWriteback;
                if (allowWriteback)
                {
                    device._writebackSignal.Set();
                }
            }
        }

        public void WriteSuperblockRecord()
        {
            ulong id;
            lock (device._lock)
            {
                id = device._ring.WrittenBackId;
            }
            device.WriteSuperblockRecord(id);
        }

        public void SyncData() => device.Flush();

        public void Fail(Exception error) => device.Fail(error);
    }

    /// <summary>The backing store's flush failed after writeback: fatal, never retried.</summary>
    private sealed class WritebackFlushFailedException(IOException inner)
        : IOException($"flush of the backing store failed after writeback: {inner.Message}", inner);
}
