using System.Diagnostics;
using Writeboost.Cache.Index;
using Writeboost.Cache.Ring;
using Writeboost.Cache.Workers;

namespace Writeboost.Cache.Core;

/// <summary>
/// The head of the log: which segment is open, and its life — acquired (a free RAM buffer and a free ring slot,
/// waited for), filled one slot at a time (<see cref="PlaceLocked"/>), sealed into a log segment
/// (<see cref="SealLocked"/>) and handed to the flush worker. It holds the mirror that keeps the buffers durable
/// (<see cref="BufferMirror.RamOnly"/> in mode 0, <see cref="PmemMirror"/> in mode 1, set when the pmem is opened).
/// Guarded by the device's lock; its one wait (the acquire) lets the lock go, and binds a pmem buffer with it let go.
/// Invariant: a segment is open (<see cref="SegmentRing.OpenId"/> ≠ 0) exactly between an acquire and its seal, and
/// only one thread acquires at a time.
/// </summary>
internal sealed class LogHead(DeviceParts parts, BufferPool buffers, CacheIndex index, PoisonSet poison, FlushWorker flushWorker, WritebackWorker writeback)
{
    private readonly DeviceMonitor _monitor = parts.Monitor;
    private readonly SegmentRing _ring = parts.Ring;
    private bool _acquiring;

    /// <summary>The open segment's slots, and the seals counted so far.</summary>
    public OpenSegment Open { get; } = new(parts.Geometry.BlocksPerSegment);

    /// <summary>What keeps the buffers durable: nothing in mode 0 (the cache device's flush does), pmem in mode 1.</summary>
    public BufferMirror Mirror { get; set; } = BufferMirror.RamOnly.Instance;

    /// <summary>The open segment's id, 0 when none is open.</summary>
    public ulong OpenId => _ring.OpenId;

    /// <summary>Slots placed in the open segment (0 when none is open).</summary>
    public int OpenLength => _ring.OpenId != 0 ? Open.Length : 0;

    /// <summary>
    /// Returns with an open segment that has room for one more block. Seals a full one and acquires the next;
    /// acquiring waits (the lock let go) for a free RAM buffer and a free ring slot, urging writeback when the ring
    /// is full: writers wait instead of overwriting dirty data.
    /// </summary>
    /// <param name="clearsPoison">The write rewrites lost sectors: it may take the ring slot kept for that (see <see cref="AcquireLocked"/>).</param>
    public void EnsureRoomLocked(bool clearsPoison = false)
    {
        while (true)
        {
            _monitor.ThrowIfFailedOrClosed(parts.DeviceName);
            if (_ring.OpenId != 0 && !Open.IsFull)
            {
                return;
            }
            if (_ring.OpenId != 0)
            {
                SealLocked(partial: false);
                continue;
            }
            if (_acquiring)
            {
                _monitor.WaitLocked();
                continue;
            }
            _acquiring = true;
            try
            {
                AcquireLocked(_ring.QueuedId + 1, clearsPoison);
            }
            finally
            {
                _acquiring = false;
                _monitor.PulseAllLocked();
            }
        }
    }

    /// <summary>
    /// The next slot of the open segment (the caller made room) now holds <paramref name="sectors"/> of
    /// <paramref name="block"/>: the one placement of writes and read-cache staging (whose data is already in the
    /// buffer). What the seal writes for the slot is kept too (see <see cref="OpenSegment"/>). Returns the slot.
    /// </summary>
    public int PlaceLocked(long block, byte sectors, bool dirty)
    {
        Debug.Assert(_ring.OpenId != 0, "a placement with no open segment");
        int slot = Open.Place(block, sectors, dirty);
        index.Place(index.GlobalOf(parts.Geometry.SlotOf(_ring.OpenId), slot), block, sectors, dirty);
        return slot;
    }

    /// <summary>
    /// Seals the open segment into a log segment: metablocks for its blocks and the header (id, length); the
    /// checksum over metablocks + data is the buffer's, computed outside the lock (a sealed buffer never changes
    /// again). The segment is queued for the flush worker; the next write opens a new one.
    /// </summary>
    /// <param name="partial">A barrier seals it before it is full.</param>
    /// <param name="wakeFlushWorker">False when the caller computes the checksum itself after leaving the lock and
    /// wakes the flush worker then: woken now, it would find the checksum to do while the sealing writer (mode 1:
    /// and others) still copy their data in, and wait for them.</param>
    public void SealLocked(bool partial, bool wakeFlushWorker = true)
    {
        ulong id = _ring.OpenId;
        if (id == 0)
        {
            return;
        }
        Debug.Assert(!_acquiring, "a segment open while the next one is acquired");
        SegmentBuffer buffer = buffers.Of(id);
        int length = Open.Seal(id, buffer.Image.Span, index, index.GlobalOf(parts.Geometry.SlotOf(id), 0), parts.Geometry.MetablockBytes, partial, parts.Options.Faults);
        buffer.MarkSealed(id);
        _ring.Seal(id, length);
        if (wakeFlushWorker)
        {
            flushWorker.Wake();
        }
    }

    /// <summary>
    /// Seals the open segment (a partial log if it has data; in mode 1 too) and waits until every segment is durable on
    /// the cache device. Returns the newest segment that holds data written before the call (0: none).
    /// </summary>
    public ulong MakeAllDurable()
    {
        ulong target;
        using (_monitor.Enter(SchedulePoint.BarrierAfterChoosingTarget))
        {
            target = _ring.OpenId != 0 && Open.Length > 0 ? _ring.OpenId : _ring.QueuedId;
        }
        MakeDurable(target);
        return target;
    }

    /// <summary>
    /// A barrier: returns once segment <paramref name="id"/> (and so every older one) is durable on the cache device.
    /// The open segment is sealed for it as a partial log, after <c>barrier_deadline_ms</c> (concurrent writers may
    /// fill it first: a full log costs nothing extra); then the flush worker is asked for the cache flush.
    /// </summary>
    public void MakeDurable(ulong id)
    {
        if (id == 0)
        {
            return;
        }
        using (_monitor.Enter(SchedulePoint.BarrierAfterDurable))
        {
            if (id == _ring.OpenId)
            {
                int deadlineMs = parts.Tunables.BarrierDeadlineMs;
                if (deadlineMs > 0)
                {
                    // Give concurrent writers until the deadline to fill the buffer: a full log costs nothing extra.
                    long deadline = Stopwatch.GetTimestamp() + deadlineMs * Stopwatch.Frequency / 1000;
                    while (_ring.OpenId == id && _monitor.Failure is null)
                    {
                        long remainingMs = (deadline - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency;
                        if (remainingMs <= 0)
                        {
                            break;
                        }
                        _monitor.WaitLocked((int)remainingMs);
                    }
                }
                if (_ring.OpenId == id)
                {
                    SealLocked(partial: true);
                }
            }
            flushWorker.RequestDurableLocked(id);
            while (_ring.DurableId < id)
            {
                _monitor.ThrowIfFailedOrClosed(parts.DeviceName);
                _monitor.WaitLocked();
            }
        }
    }

    /// <summary>
    /// Without the lock: a write filled segment <paramref name="id"/> (<paramref name="length"/> blocks), sealed it
    /// and left the lock: it computes the checksum here, while the flush worker writes the previous segment; then
    /// the flush worker may take it.
    /// </summary>
    public void ChecksumAndHandOver(ulong id, int length)
    {
        buffers.Of(id).EnsureChecksum(id, length, parts.Geometry.MetablockBytes);
        flushWorker.Wake();
    }

    /// <summary>
    /// An overwrite moved block g's data to a newer copy: a dirty copy in a sealed segment stays owed to writeback
    /// (see <see cref="CacheIndex.Supersede"/>); anything else is cleared.
    /// </summary>
    public void SupersedeLocked(int g) => index.Supersede(g, inOpenSegment: _ring.IdIn(index.SlotOf(g)) == _ring.OpenId);

    /// <summary>
    /// A slot is taken for a new segment: whatever its old segment still maps goes. That segment was written back
    /// (the writer waits for it; in recovery, a pmem buffer bound to the new id proves it), so the backing store
    /// has its data and only the mappings go.
    /// </summary>
    public void UnmapSlotLocked(long slot)
    {
        index.UnmapSlot(slot);
        poison.ForgetSlot(slot, parts.Geometry.BlocksPerSegment);
    }

    /// <summary>
    /// Makes segment <paramref name="id"/> the open one. Its RAM buffer must have been written (id - pool size
    /// flushed) and its ring slot's previous segment (id - nr_segments) written back — and recorded as such in
    /// the superblock record, so a crash while this slot is being overwritten can never lose the old segment's
    /// data (recovery starts after the record). Then the old segment's clean mappings are dropped.
    /// </summary>
    private void AcquireLocked(ulong id, bool clearsPoison)
    {
        Debug.Assert(_acquiring && _ring.OpenId == 0, "one acquirer at a time, and only with no segment open");
        long slot = parts.Geometry.SlotOf(id);
        ulong nrSegments = (ulong)parts.Geometry.NrSegments;
        if (!poison.IsEmpty && !clearsPoison && writeback.OldestPoisonedSegmentLocked() is { } held && id + 1 >= held + nrSegments)
        {
            // Writeback cannot pass a segment that holds lost blocks, so the ring fills up behind it. The last free
            // slot is kept for the writes that rewrite them (or clear_poison's zeros): without it nothing could.
            throw new IOException(writeback.HeldMessage(held, $"segment {id} would take the last free ring slot"));
        }
        ulong bufferFreeAfter = buffers.FreeAfter(id);
        ulong slotFreeAfter = id > nrSegments ? id - nrSegments : 0;
        // Mode 1: a pmem buffer is the only durable copy of its segment until the cache device has it durably, and
        // it is not rebound while a writer of its old segment is still placing into it (pinned).
        int bufferIndex = buffers.IndexOf(id);
        bool pmemBound = !Mirror.BindsBuffers;
        buffers.StartWaiting();
        try
        {
            while (true)
            {
                bool ready = Mirror.ReusableThrough(_ring) >= bufferFreeAfter && _ring.WrittenBackId >= slotFreeAfter && !_ring.IsPinned(slot)
                    && !buffers.IsPinned(bufferIndex);
                if (ready && pmemBound)
                {
                    break;
                }
                if (ready)
                {
                    // The pmem buffer is free (its segment durable on the cache device, no placement into it in flight)
                    // and nothing can place into it before this segment opens (_acquiring): bind it with the lock let go —
                    // a persist, on the block backend a read-modify-write, a write and a flush — then check again.
                    Mirror.BindUnlocked(id);
                    pmemBound = true;
                    continue;
                }
                _monitor.ThrowIfFailedOrClosed(parts.DeviceName);
                if (writeback.HeldBy != 0 && writeback.HeldBy <= slotFreeAfter)
                {
                    throw new IOException(writeback.HeldMessage(writeback.HeldBy, $"segment {id} needs ring slot {slot}"));
                }
                if (Mirror.IsPersistent && _ring.DurableId < bufferFreeAfter)
                {
                    // Ask for the cache flush only now, when a buffer is needed back: one flush for many segments.
                    flushWorker.RequestDurableLocked(bufferFreeAfter);
                }
                if (_ring.WrittenBackId < slotFreeAfter)
                {
                    writeback.UrgeLocked();
                }
                _monitor.WaitLocked();
            }
        }
        finally
        {
            buffers.StopWaiting();
        }
        UnmapSlotLocked(slot);
        SegmentBuffer buffer = buffers.Of(id);
        buffer.ClearMetadata();
        buffer.SegmentId = id;
        _ring.Bind(slot, id, 0);
        Open.Begin();
        ulong halfPool = (ulong)Math.Max(1, buffers.Count / 2);
        if (Mirror.IsPersistent && id > halfPool)
        {
            // Half the pmem buffers are in use: ask for a cache flush now, so that by the time a writer needs a
            // buffer back it is already durable — one flush per half pool, overlapped with filling the other half.
            flushWorker.RequestDurableLocked(id - halfPool);
        }
        _ring.Open(id);
        Debug.Assert(_ring.OpenId == id && Open.Length == 0, "the acquired segment is open and empty");
    }
}
