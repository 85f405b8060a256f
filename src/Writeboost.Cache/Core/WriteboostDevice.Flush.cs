using System.Diagnostics;
using Writeboost.Cache.Format;
using Writeboost.Cache.Workers;

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
            _backingStore.Flush();
            return;
        }
        if (!_mirror.Barrier()) // mode 1: every write completed before is in pmem
        {
            FlushToCacheDevice();
        }
    }

    /// <summary>
    /// Seals the open buffer (a partial log if it has data; in mode 1 too) and waits until every segment is durable on
    /// the cache device. Returns the newest segment that holds data written before the call (0: none).
    /// </summary>
    private ulong FlushToCacheDevice()
    {
        ulong target;
        using (_monitor.Enter(SchedulePoint.BarrierAfterChoosingTarget))
        {
            target = _ring.OpenId != 0 && _open.Length > 0 ? _ring.OpenId : _ring.QueuedId;
        }
        MakeDurable(target);
        return target;
    }

    /// <summary>Returns once segment <paramref name="id"/> (and so every older one) is durable on the cache device.</summary>
    private void MakeDurable(ulong id)
    {
        if (id == 0)
        {
            return;
        }
        using (_monitor.Enter(SchedulePoint.BarrierAfterDurable))
        {
            if (id == _ring.OpenId)
            {
                int deadlineMs = Tunables.BarrierDeadlineMs;
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
                    SealOpenLocked(partial: true);
                }
            }
            _flushWorker.RequestDurableLocked(id);
            while (_ring.DurableId < id)
            {
                ThrowIfFailed();
                _monitor.WaitLocked();
            }
        }
    }

    /// <summary>
    /// Seals the open buffer into a log segment: metablocks for its blocks and the header (id, length); the
    /// flush worker (<see cref="FlushWorker"/>) adds the checksum over metablocks + data just before writing it. The segment is queued for
    /// the flush worker; the next write opens a new one.
    /// </summary>
    /// <param name="wakeFlushWorker">False when the caller computes the checksum itself after leaving the lock and
    /// wakes the flush worker then: woken now, it would find the checksum to do while the sealing writer (mode 1:
    /// and others) still copy their data in, and wait for them.</param>
    private void SealOpenLocked(bool partial, bool wakeFlushWorker = true)
    {
        ulong id = _ring.OpenId;
        if (id == 0)
        {
            return;
        }
        SegmentBuffer buffer = BufferOf(id);
        int length = _open.Seal(id, buffer.Image.Span, _cacheIndex, Global(Geometry.SlotOf(id), 0), Geometry.MetablockBytes, partial, Faults);
        // The checksum is computed outside the lock (SegmentBuffer.EnsureChecksum): a sealed buffer never changes again.
        buffer.MarkSealed(id);
        _ring.Seal(id, length);
        if (wakeFlushWorker)
        {
            _flushWorker.Wake();
        }
    }

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
        // The cache device, not only the barrier: in mode 1 too, the open buffer is sealed and written, so that
        // everything written before the message can be written back (a mode-1 barrier leaves it open in pmem).
        if (_writeAroundMode)
        {
            _backingStore.Flush(); // what write-around wrote straight to it
        }
        ulong through = FlushToCacheDevice();
        _writeback.WriteBackEverything(ThrowIfFailed, through);
    }
}
