using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Index;
using Writeboost.Cache.Ring;
using Writeboost.Cache.Table;
using Writeboost.Devices;

namespace Writeboost.Cache.Workers;

/// <summary>
/// The writeback worker (dm-writeboost's writeback daemon). It runs when urged (a writer waits for a ring slot),
/// when forced (drop_caches), or while the modulator allows it (the backing store is less busy than
/// writeback_threshold). Each batch takes the oldest written segments, in id order:
/// <list type="number">
/// <item>read each segment's data blocks from the cache device (one read per segment);</item>
/// <item>write its still-dirty blocks to the backing store, sorted by backing sector (a whole block in one
/// write, a partial one as runs of dirty sectors);</item>
/// <item>flush the backing store — only now is the data durable there;</item>
/// <item>write the superblock record (FUA) with the new last written-back id;</item>
/// <item>mark the blocks clean and advance last_writeback_id, freeing their ring slots.</item>
/// </list>
/// A failed write leaves everything dirty and is retried; a failed backing flush fails the device (the
/// kernel may have dropped the pages: retrying would hide a loss). Writeback never passes a segment that still holds
/// a lost copy (see <see cref="PoisonSet"/>): it is held there (<see cref="HeldBy"/>) until the loss is rewritten or
/// acknowledged.
/// </summary>
internal sealed class WritebackWorker : ISegmentsWritten, IDisposable
{
    private readonly DeviceMonitor _monitor;
    private readonly SegmentRing _ring;
    private readonly CacheIndex _index;
    private readonly PoisonSet _poison;
    private readonly CacheGeometry _geometry;
    private readonly Tunables _tunables;
    private readonly IBlockDevice _cache;
    private readonly BackingStore _backing;
    private readonly SuperblockRecordWriter _record;
    private readonly IDurability _durability;
    private readonly WriteboostCounters _counters;
    private readonly WriteboostOptions _options;
    private readonly string _deviceName;
    private readonly AutoResetEvent _signal = new(false);
    private WorkerRun? _run;
    private Memory<byte> _buffer; // the worker's alone; aligned, so O_DIRECT reads it without a bounce

    // Why writeback runs (under the lock).
    private bool _urged;
    private bool _forced;
    private bool _allowed;
    private int _backingUtilPercent;
    private long _errors;

    /// <param name="durability">Asks for cache flushes before a batch, and makes a segment durable (sealing it first if it is the open one) when poison was cleared by a write not yet durable.</param>
    public WritebackWorker(DeviceParts parts, CacheIndex index, PoisonSet poison, BackingStore backing, SuperblockRecordWriter record, IDurability durability)
    {
        _monitor = parts.Monitor;
        _ring = parts.Ring;
        _index = index;
        _poison = poison;
        _geometry = parts.Geometry;
        _tunables = parts.Tunables;
        _cache = parts.Cache;
        _backing = backing;
        _record = record;
        _durability = durability;
        _counters = parts.Counters;
        _options = parts.Options;
        _deviceName = parts.DeviceName;
        _monitor.Register(Wake);
    }

    /// <summary>The segment writeback cannot pass: it holds lost copies of poisoned blocks (0: not held; under the lock).</summary>
    public ulong HeldBy { get; private set; }

    /// <summary>The backing store's utilisation the modulator last measured, in percent.</summary>
    public int BackingUtilPercent => Volatile.Read(ref _backingUtilPercent);

    /// <summary>Batches that failed (and were retried).</summary>
    public long Errors => Interlocked.Read(ref _errors);

    private FaultHooks Faults => _options.Faults;

    public void Start()
    {
        _run = WorkerThreads.Shared.Start("wb-writeback", RunThenReturnBuffer);
    }

    public void Join() => _run?.Join();

    /// <summary>Something writeback waits for may have changed (a tunable, a cleared hold).</summary>
    public void Wake() => _signal.Set();

    /// <summary>A writer needs a ring slot that is not written back yet: writeback runs until it is free.</summary>
    public void UrgeLocked()
    {
        if (!_urged)
        {
            _urged = true;
            Wake();
        }
    }

    /// <summary>The flush worker wrote a segment: a writeback that must go on may wait for it.</summary>
    public void SegmentWrittenLocked()
    {
        if (_urged || _forced)
        {
            Wake();
        }
    }

    /// <summary>A write rewrote lost sectors: writeback may try to pass the damaged segment again.</summary>
    public void ReleaseHoldLocked()
    {
        HeldBy = 0;
        Wake();
    }

    /// <summary>What the modulator measured, and whether background writeback may run (it is woken if so).</summary>
    public void SetBackingUtilisation(int percent, bool allowWriteback)
    {
        using (_monitor.Enter(SchedulePoint.WritebackAfterUtilisation))
        {
            Volatile.Write(ref _backingUtilPercent, percent);
            _allowed = allowWriteback;
            if (allowWriteback)
            {
                Wake();
            }
        }
    }

    /// <summary>
    /// <c>drop_caches</c>, once the open buffer is sealed and written: writes back every dirty block and returns
    /// when none is left.
    /// </summary>
    /// <param name="throwIfFailed">Throws the device's failure (checked at each wake-up).</param>
    /// <exception cref="IOException">writeback is held by poisoned blocks, or the device failed.</exception>
    /// <param name="throughId">The last segment to write back (drop_caches: the newest one sealed when it was sent;
    /// segments writers open afterwards are theirs, and a stream of writes must not keep drop_caches waiting forever).</param>
    public void WriteBackEverything(Action throwIfFailed, ulong throughId)
    {
        using (_monitor.Enter(SchedulePoint.WritebackAfterDropCachesWait))
        {
            _forced = true;
            Wake();
            try
            {
                while (_ring.WrittenBackId < throughId)
                {
                    throwIfFailed();
                    if (HeldBy != 0)
                    {
                        throw new IOException(HeldMessage(HeldBy, "drop_caches cannot write everything back"));
                    }
                    _monitor.WaitLocked();
                }
            }
            finally
            {
                _forced = false;
            }
        }
    }

    /// <summary>Why writeback is stuck, for the writer or drop_caches that needs it to go on.</summary>
    public string HeldMessage(ulong held, string who)
    {
        long slot = _geometry.SlotOf(held);
        return $"{_deviceName}: {who}, but writeback cannot pass segment {held} (slot {slot}): it holds the lost copies of {_poison.CountInSlot(slot, _geometry.BlocksPerSegment)} poisoned block(s) (damaged media). Rewrite those blocks, or acknowledge the loss with the message clear_poison (wb check lists them)";
    }

    /// <summary>The oldest segment not yet written back whose lost copies still poison something (writeback stops before it), or null.</summary>
    public ulong? OldestPoisonedSegmentLocked()
    {
        for (ulong id = _ring.WrittenBackId + 1; id <= _ring.QueuedId + 1 && id <= _ring.WrittenBackId + (ulong)_geometry.NrSegments; id++)
        {
            long slot = _geometry.SlotOf(id);
            if (_ring.IdIn(slot) == id && _poison.Blocking(slot, _geometry.BlocksPerSegment, _ring.DurableId, out _) == WritebackHold.Poisoned)
            {
                return id;
            }
        }
        return null;
    }

    public void Dispose() => _signal.Dispose();

    private void RunThenReturnBuffer()
    {
        try
        {
            Run();
        }
        finally
        {
            AlignedMemory.Return(_buffer); // the thread is the buffer's only user
            _buffer = Memory<byte>.Empty;
        }
    }

    private void Run()
    {
        while (true)
        {
            List<BatchSegment> batch = [];
            bool idle;
            ulong durableNeeded = 0;
            using (_monitor.Enter(SchedulePoint.WritebackAfterIdleCheck))
            {
                idle = !_monitor.Stopping && _monitor.Failure is null && !WantedLocked();
            }
            if (idle)
            {
                _signal.WaitOne(1000);
                continue;
            }
            using (_monitor.Enter(SchedulePoint.WritebackAfterChoosingBatch))
            {
                WaitWrittenSegmentsDurableLocked();
                if (!WantedLocked() && !_monitor.Stopping && _monitor.Failure is null)
                {
                    continue;
                }
                if (_monitor.Stopping || _monitor.Failure is not null)
                {
                    return;
                }
                ulong available = _ring.FlushedId - _ring.WrittenBackId;
                ulong n = Math.Min(available, (ulong)_tunables.NrMaxBatchedWriteback);
                if (!_poison.IsEmpty)
                {
                    n = PassableLocked(n, out durableNeeded);
                }
                if (n == 0 && durableNeeded == 0)
                {
                    continue; // held by poison: idle until a write clears it (HeldBy)
                }
                for (ulong id = _ring.WrittenBackId + 1; id <= _ring.WrittenBackId + n; id++)
                {
                    batch.Add(SnapshotLocked(id));
                }
            }
            if (batch.Count == 0)
            {
                // Every lost sector of the next segment was rewritten; once those writes are durable, go on.
                try
                {
                    _durability.MakeDurable(durableNeeded);
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
                Interlocked.Increment(ref _errors);
                if (error is WritebackFlushFailedException)
                {
                    _monitor.Fail(error);
                    return;
                }
                // Nothing was marked clean: the same batch is tried again after a pause.
                _monitor.StopSignal.Wait(Faults.WritebackRetriesAfterError ? _options.WritebackRetryDelay : Timeout.InfiniteTimeSpan);
            }
        }
    }

    private bool WantedLocked() => _ring.FlushedId > _ring.WrittenBackId && (_urged || _forced || _allowed) && HeldBy == 0;

    /// <summary>A segment of a batch and what of it is owed to the backing store: its dirty blocks, and superseded copies whose newer copy is not durable yet.</summary>
    private BatchSegment SnapshotLocked(ulong id)
    {
        long slot = _geometry.SlotOf(id);
        List<OwedBlock> owed = [];
        for (int i = 0; i < _ring.LengthOf(slot); i++)
        {
            int g = _index.GlobalOf(slot, i);
            if (_index.IsDirty(g))
            {
                owed.Add(new OwedBlock(g, _index.BlockAt(g), _index.SectorsAt(g)));
            }
            else if (_index.IsSuperseded(g))
            {
                // Owed unless the newer copy is durable on the cache device by now.
                bool newerDurable = _index.TryFind(_index.BlockAt(g), out int newer) && _ring.IdIn(_index.SlotOf(newer)) <= _ring.DurableId;
                if (newerDurable)
                {
                    _index.ForgetSuperseded(g);
                }
                else
                {
                    owed.Add(new OwedBlock(g, _index.BlockAt(g), _index.SectorsAt(g)));
                }
            }
        }
        return new BatchSegment(id, slot, _ring.LengthOf(slot), owed);
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
        _durability.RequestDurableLocked(target);
        while (_ring.DurableId < target && _monitor.Running)
        {
            _monitor.WaitLocked();
        }
    }

    /// <summary>
    /// How many of the next <paramref name="n"/> segments writeback may pass: it stops before one that still holds
    /// a lost copy — its damaged blocks cannot be written back, and once its slot is reused nothing would say they
    /// are lost (recovery derives poison from the damaged copy itself). When the very next one is held by poisoned
    /// sectors, <see cref="HeldBy"/> says so and waiting writers are woken to fail; when only the writes that
    /// cleared them are not durable yet, <paramref name="durableNeeded"/> says which segment to make durable.
    /// </summary>
    private ulong PassableLocked(ulong n, out ulong durableNeeded)
    {
        durableNeeded = 0;
        for (ulong k = 0; k < n; k++)
        {
            ulong id = _ring.WrittenBackId + 1 + k;
            WritebackHold hold = _poison.Blocking(_geometry.SlotOf(id), _geometry.BlocksPerSegment, _ring.DurableId, out ulong needed);
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
                    HeldBy = id;
                    _monitor.PulseAllLocked();
                }
            }
            return k;
        }
        return n;
    }

    private void WriteBackBatch(List<BatchSegment> batch)
    {
        // The batch's segments are read into one buffer the worker keeps (at most nr_max_batched_writeback
        // segments: 16 MiB at 32 × 512 KiB), and writes point into it: no per-segment or per-block garbage.
        long needBytes = batch.Sum(b => b.Owed.Count == 0 ? 0 : Units.BlocksToBytes(b.Length));
        if (_buffer.Length < needBytes)
        {
            AlignedMemory.Return(_buffer);
            _buffer = AlignedMemory.Rent(checked((int)needBytes));
        }
        List<(long Block, ulong Id, byte Bits, int BufferOffsetBytes)> writes = [];
        int segmentOffsetBytes = 0;
        foreach (BatchSegment segment in batch)
        {
            if (segment.Owed.Count == 0)
            {
                continue;
            }
            int segmentBytes = (int)Units.BlocksToBytes(segment.Length);
            _cache.Read(_geometry.DataBlockBytes(segment.Slot, 0), _buffer.Span.Slice(segmentOffsetBytes, segmentBytes));
            _counters.CountCacheRead(segmentBytes);
            foreach (OwedBlock owed in segment.Owed)
            {
                writes.Add((owed.Block, segment.Id, owed.Bits, segmentOffsetBytes + (int)Units.BlocksToBytes(_index.IndexInSegment(owed.G))));
            }
            segmentOffsetBytes += segmentBytes;
        }
        // Sorted by backing block, then by id: a superseded copy and its newer copy can share a batch, and the
        // newer one must land last.
        writes.Sort((a, b) => a.Block != b.Block ? a.Block.CompareTo(b.Block) : a.Id.CompareTo(b.Id));
        foreach ((long block, ulong _, byte bits, int bufferOffsetBytes) in writes)
        {
            WriteBlock(Units.BlocksToBytes(block), bits, _buffer.Span.Slice(bufferOffsetBytes, Units.BlockBytes));
        }
        _options.Schedule.At(SchedulePoint.WritebackBeforeBackingFlush);
        try
        {
            if (Faults.WritebackFlushesBackingBeforeClean)
            {
                _backing.Flush();
            }
        }
        catch (IOException error)
        {
            throw new WritebackFlushFailedException(error);
        }
        ulong newLastWriteback = batch[^1].Id;
        _record.Write(newLastWriteback);
        _options.Schedule.At(SchedulePoint.WritebackBeforeMarkClean);
        MarkWrittenBack(batch, newLastWriteback);
    }

    /// <summary>A block's dirty sectors to the backing store: a whole block in one write, a partial one as runs of dirty sectors.</summary>
    private void WriteBlock(long blockOffsetBytes, byte bits, ReadOnlySpan<byte> data)
    {
        if (bits == Units.FullBlockBits)
        {
            WriteToBacking(blockOffsetBytes, data);
            return;
        }
        foreach ((int first, int count) in Units.SectorRuns(bits))
        {
            WriteToBacking(blockOffsetBytes + first * Units.SectorBytes, data.Slice(first * Units.SectorBytes, count * Units.SectorBytes));
        }
    }

    /// <summary>The batch's blocks are clean and its segments' slots free: only once the record says so.</summary>
    private void MarkWrittenBack(List<BatchSegment> batch, ulong newLastWriteback)
    {
        using (_monitor.Enter(SchedulePoint.WritebackAfterMarkingClean))
        {
            foreach (BatchSegment segment in batch)
            {
                foreach (OwedBlock owed in segment.Owed)
                {
                    // An overwrite since the snapshot already made this copy clean and moved the mapping on.
                    if (_index.BlockAt(owed.G) == owed.Block)
                    {
                        _index.MarkClean(owed.G);
                    }
                }
            }
            _ring.MarkWrittenBack(newLastWriteback);
            ulong needed = _ring.OpenId != 0 ? _ring.OpenId : _ring.QueuedId + 1;
            if (needed <= (ulong)_geometry.NrSegments || _ring.WrittenBackId >= needed - (ulong)_geometry.NrSegments)
            {
                _urged = false;
            }
            _monitor.PulseAllLocked();
        }
    }

    /// <summary>A write of writeback's: an error fails the batch (nothing of it is marked clean).</summary>
    private void WriteToBacking(long offsetBytes, ReadOnlySpan<byte> data)
    {
        try
        {
            _backing.Write(offsetBytes, data, WriteOptions.None);
        }
        catch (IOException) when (!Faults.WritebackWriteErrorFailsBatch)
        {
        }
    }

    /// <summary>A block owed to the backing store: metablock g, the backing block it caches, the sectors to write.</summary>
    private readonly record struct OwedBlock(int G, long Block, byte Bits);

    private sealed record BatchSegment(ulong Id, long Slot, int Length, List<OwedBlock> Owed);

    /// <summary>The backing store's flush failed after writeback: fatal, never retried.</summary>
    private sealed class WritebackFlushFailedException(IOException inner)
        : IOException($"flush of the backing store failed after writeback: {inner.Message}", inner);
}
