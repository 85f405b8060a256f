using System.Diagnostics;
using Writeboost.Cache.Format;

namespace Writeboost.Cache.Core;

public sealed partial class WriteboostDevice
{
    /// <summary>
    /// REQ_PREFLUSH: every write completed before this call is durable when it returns. In mode 0 that means the
    /// open buffer is sealed as a partial log (after <c>barrier_deadline_ms</c>, so concurrent writers can fill
    /// it first), written, and the cache device flushed.
    /// </summary>
    public void Flush()
    {
        ThrowIfFailed();
        if (_options.ReadOnly)
        {
            return; // nothing was written: nothing to make durable
        }
        Counters.CountFlush();
        _options.Schedule.At(SchedulePoint.WriterBeforeBarrier);
        if (_writeAroundMode)
        {
            BackingFlush();
            return;
        }
        if (_pmem is not null)
        {
            PmemBarrier(); // mode 1: every write completed before is in pmem
            return;
        }
        FlushToCacheDevice();
    }

    /// <summary>Seals the open buffer (a partial log if it has data) and waits until every segment is durable on the cache device.</summary>
    private void FlushToCacheDevice()
    {
        ulong target;
        lock (_lock)
        {
            target = _ring.OpenId != 0 && _openLength > 0 ? _ring.OpenId : _ring.QueuedId;
        }
        MakeDurable(target);
    }

    /// <summary>Returns once segment <paramref name="id"/> (and so every older one) is durable on the cache device.</summary>
    private void MakeDurable(ulong id)
    {
        if (id == 0)
        {
            return;
        }
        lock (_lock)
        {
            if (id == _ring.OpenId)
            {
                int deadlineMs = Tunables.BarrierDeadlineMs;
                if (deadlineMs > 0)
                {
                    // Give concurrent writers until the deadline to fill the buffer: a full log costs nothing extra.
                    long deadline = Stopwatch.GetTimestamp() + deadlineMs * Stopwatch.Frequency / 1000;
                    while (_ring.OpenId == id && _failure is null)
                    {
                        long remainingMs = (deadline - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency;
                        if (remainingMs <= 0)
                        {
                            break;
                        }
                        Monitor.Wait(_lock, (int)remainingMs);
                    }
                }
                if (_ring.OpenId == id)
                {
                    SealOpenLocked(partial: true);
                }
            }
            if (_ring.DurableRequestedId < id)
            {
                _ring.RequestDurable(id);
                _flushSignal.Set();
            }
            while (_ring.DurableId < id)
            {
                ThrowIfFailed();
                Monitor.Wait(_lock);
            }
        }
    }

    /// <summary>
    /// Seals the open buffer into a log segment: metablocks for its blocks and the header (id, length); the
    /// flush worker adds the checksum over metablocks + data just before writing it. The segment is queued for
    /// the flush worker; the next write opens a new one.
    /// </summary>
    private void SealOpenLocked(bool partial)
    {
        ulong id = _ring.OpenId;
        if (id == 0)
        {
            return;
        }
        int length = _openLength;
        long slot = Geometry.SlotOf(id);
        SegmentBuffer buffer = BufferOf(id);
        Span<byte> image = buffer.Image.Span;
        int entryBytes = Geometry.MetablockBytes;
        for (int i = 0; i < length; i++)
        {
            int g = Global(slot, i);
            // A slot still mapped is written as it is now; one superseded in the open buffer (mode 1 copy-on-write)
            // as it was placed — a later entry for the same block replaces it at replay; one dropped by
            // write-around as placed too, clean, which replay ignores.
            MetablockOnDisk entry = _cacheIndex.BlockAt(g) >= 0
                ? new MetablockOnDisk(_cacheIndex.BlockAt(g) * Units.SectorsPerBlock, _cacheIndex.IsDirty(g) ? _cacheIndex.SectorsAt(g) : (byte)0)
                : new MetablockOnDisk(Math.Max(0, _openPlacedBlock[i]) * Units.SectorsPerBlock, _openPlacedBits[i]);
            (entry with { DirtyBits = Faults.DirtyBitsToSeal(entry.DirtyBits, entryBytes) }).WriteTo(image, i, entryBytes);
        }
        // The checksum is computed outside the lock (SegmentBuffer.EnsureChecksum): a sealed buffer never changes again.
        new SegmentHeaderOnDisk(id, 0, (byte)length).WriteTo(image);
        buffer.MarkSealed(id);
        _ring.Seal(id, length);
        _openLength = 0;
        if (partial && length < BlocksPerSegment)
        {
            _nrPartialFlushed++;
            _partialSegments++;
        }
        else
        {
            _fullSegments++;
        }
        _flushSignal.Set();
    }

    /// <summary>
    /// The flush worker (dm-writeboost's flush daemon): writes queued segments to the cache device strictly in
    /// id order, one write of (length + 1) blocks each, and flushes the cache device when a barrier waits for a
    /// segment it has written — once for all the segments written before it (group commit).
    /// </summary>
    private void FlushWorkerLoop()
    {
        while (true)
        {
            ulong id;
            int length;
            bool flushOnly;
            bool idle;
            ulong durable;
            lock (_lock)
            {
                idle = !_stopping && _failure is null && !_abandoned
                       && _ring.FlushedId >= _ring.QueuedId
                       && !(_ring.DurableRequestedId > _ring.DurableId && _ring.DurableRequestedId <= _ring.FlushedId);
            }
            if (idle)
            {
                _flushSignal.WaitOne();
                continue;
            }
            lock (_lock)
            {
                if (_failure is not null || _abandoned || (_stopping && _ring.FlushedId >= _ring.QueuedId && _ring.DurableRequestedId <= _ring.DurableId))
                {
                    return;
                }
                flushOnly = _ring.FlushedId >= _ring.QueuedId;
                id = flushOnly ? _ring.FlushedId : _ring.FlushedId + 1;
                length = flushOnly ? 0 : _ring.LengthOf(Geometry.SlotOf(id));
                // What a completed cache flush covers now: this worker sets it itself after each flush, so the
                // value a header carries is never behind a flush that completed before the header was written.
                durable = Faults.DurableIdToClaim(_ring.DurableId);
            }
            try
            {
                if (!flushOnly)
                {
                    long writeBytes = CacheGeometry.WrittenBytes(length);
                    SegmentBuffer buffer = BufferOf(id);
                    buffer.EnsureChecksum(id, length, Geometry.MetablockBytes);
                    Span<byte> image = buffer.Image.Span;
                    // The header says what was durable when this segment was written: recovery then knows that a
                    // bad checksum at an id up to that is damage to acknowledged data, not a crash's torn write.
                    SegmentHeaderExtension.Restamp(image, durable);
                    if (!Faults.FlushWorkerPublishesAfterWrite)
                    {
                        lock (_lock)
                        {
                            _ring.MarkFlushed(id); // "written" before the write (the waiters are woken after it)
                        }
                    }
                    _options.Schedule.At(SchedulePoint.FlushBeforeSegmentWrite);
                    _cache.Write(Geometry.SegmentStartBytes(Geometry.SlotOf(id)), image[..(int)writeBytes]);
                    Counters.CountCacheWrite(writeBytes);
                    _options.Schedule.At(SchedulePoint.FlushAfterSegmentWrite);
                }
                bool flush;
                lock (_lock)
                {
                    // Mode 1 asks for durability when it needs a pmem buffer back (AcquireSegmentLocked).
                    flush = _ring.DurableRequestedId > _ring.DurableId && _ring.DurableRequestedId <= id;
                }
                if (flush && Faults.FlushesCacheBeforeAck)
                {
                    _options.Schedule.At(SchedulePoint.FlushBeforeCacheFlush);
                    try
                    {
                        _cache.Flush();
                    }
                    catch (IOException) when (!Faults.CacheFlushErrorFails)
                    {
                    }
                    Counters.CountCacheFlush();
                }
                lock (_lock)
                {
                    _ring.MarkFlushed(id);
                    if (flush)
                    {
                        _ring.MarkDurable(id);
                    }
                    Monitor.PulseAll(_lock);
                    if (_urgeWriteback || _forceDrop)
                    {
                        _writebackSignal.Set(); // a newly written segment may be what the writeback waits for
                    }
                }
            }
            catch (Exception error) when (error is IOException or ArgumentException)
            {
                // The segment stays in its RAM buffer, but nothing after it can be ordered behind it: the device
                // fails, and every waiting FUA/flush gets the error instead of an acknowledgement.
                Fail(error);
                return;
            }
        }
    }
}
