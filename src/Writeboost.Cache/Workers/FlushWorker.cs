using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Ring;
using Writeboost.Devices;

namespace Writeboost.Cache.Workers;

/// <summary>
/// The flush worker (dm-writeboost's flush daemon): writes the sealed segments to the cache device strictly in id
/// order, one write of (length + 1) blocks each, and flushes the cache device when someone waits for a segment it
/// has written to be durable — once for all the segments written before it (group commit). It moves the ring's
/// flushed and durable ids, and nothing else; whoever seals a segment or asks for durability wakes it.
/// An I/O error fails the device: nothing after the segment could be ordered behind it.
/// </summary>
internal sealed class FlushWorker : IDisposable
{
    private readonly DeviceMonitor _monitor;
    private readonly SegmentRing _ring;
    private readonly BufferPool _buffers;
    private readonly CacheGeometry _geometry;
    private readonly IBlockDevice _cache;
    private readonly WriteboostCounters _counters;
    private readonly FaultHooks _faults;
    private readonly ScheduleHooks _schedule;
    private readonly ISegmentsWritten _written;
    private readonly AutoResetEvent _signal = new(false);
    private WorkerRun? _run;

    /// <param name="buffers">The RAM buffers the segments are sealed in.</param>
    /// <param name="written">Told (with the lock held) after each segment is written: writeback may wait for it.</param>
    public FlushWorker(DeviceParts parts, BufferPool buffers, ISegmentsWritten written)
    {
        _monitor = parts.Monitor;
        _ring = parts.Ring;
        _buffers = buffers;
        _geometry = parts.Geometry;
        _cache = parts.Cache;
        _counters = parts.Counters;
        _faults = parts.Options.Faults;
        _schedule = parts.Options.Schedule;
        _written = written;
        _monitor.Register(Wake);
    }

    public void Start()
    {
        _run = WorkerThreads.Shared.Start("wb-flush", Run);
    }

    /// <summary>Waits for the worker to end (after a stop, abandon or failure of the monitor).</summary>
    public void Join() => _run?.Join();

    /// <summary>A segment was sealed, or durability asked for.</summary>
    public void Wake() => _signal.Set();

    /// <summary>Asks for segment <paramref name="id"/> (and every older one) to be made durable on the cache device.</summary>
    public void RequestDurableLocked(ulong id)
    {
        if (_ring.DurableRequestedId < id)
        {
            _ring.RequestDurable(id);
            Wake();
        }
    }

    public void Dispose() => _signal.Dispose();

    private void Run()
    {
        while (true)
        {
            ulong id;
            int length;
            bool flushOnly;
            bool idle;
            ulong durable;
            using (_monitor.Enter(SchedulePoint.FlushWorkerAfterIdleCheck))
            {
                idle = _monitor.Running
                       && _ring.FlushedId >= _ring.QueuedId
                       && !(_ring.DurableRequestedId > _ring.DurableId && _ring.DurableRequestedId <= _ring.FlushedId);
            }
            if (idle)
            {
                _signal.WaitOne();
                continue;
            }
            using (_monitor.Enter(SchedulePoint.FlushWorkerAfterTakingSegment))
            {
                if (_monitor.Failure is not null || _monitor.Abandoned || (_monitor.Stopping && _ring.FlushedId >= _ring.QueuedId && _ring.DurableRequestedId <= _ring.DurableId))
                {
                    return;
                }
                flushOnly = _ring.FlushedId >= _ring.QueuedId;
                id = flushOnly ? _ring.FlushedId : _ring.FlushedId + 1;
                length = flushOnly ? 0 : _ring.LengthOf(_geometry.SlotOf(id));
                // What a completed cache flush covers now: this worker sets it itself after each flush, so the
                // value a header carries is never behind a flush that completed before the header was written.
                durable = _faults.DurableIdToClaim(_ring.DurableId);
            }
            try
            {
                if (!flushOnly)
                {
                    WriteSegment(id, length, durable);
                }
                bool flush;
                using (_monitor.Enter(SchedulePoint.FlushWorkerAfterFlushDecision))
                {
                    // Read after the write: a request made meanwhile joins this flush.
                    flush = _ring.DurableRequestedId > _ring.DurableId && _ring.DurableRequestedId <= id;
                }
                if (flush && _faults.FlushesCacheBeforeAck)
                {
                    _schedule.At(SchedulePoint.FlushBeforeCacheFlush);
                    try
                    {
                        _cache.Flush();
                    }
                    catch (IOException) when (!_faults.CacheFlushErrorFails)
                    {
                    }
                    _counters.CountCacheFlush();
                }
                using (_monitor.Enter(SchedulePoint.FlushWorkerAfterPublishing))
                {
                    _ring.MarkFlushed(id);
                    if (flush)
                    {
                        _ring.MarkDurable(id);
                    }
                    _monitor.PulseAllLocked();
                    _written.SegmentWrittenLocked();
                }
            }
            catch (Exception error) when (error is IOException or ArgumentException)
            {
                // The segment stays in its RAM buffer, but nothing after it can be ordered behind it: the device
                // fails, and every waiting FUA/flush gets the error instead of an acknowledgement.
                _monitor.Fail(error);
                return;
            }
        }
    }

    /// <summary>Writes sealed segment <paramref name="id"/> (its checksum, and the durable id its header claims, stamped first).</summary>
    private void WriteSegment(ulong id, int length, ulong durable)
    {
        long writeBytes = CacheGeometry.WrittenBytes(length);
        SegmentBuffer buffer = _buffers.Of(id);
        buffer.EnsureChecksum(id, length, _geometry.MetablockBytes);
        Span<byte> image = buffer.Image.Span;
        // The header says what was durable when this segment was written: recovery then knows that a bad checksum
        // at an id up to that is damage to acknowledged data, not a crash's torn write.
        SegmentHeaderExtension.Restamp(image, durable);
        if (!_faults.FlushWorkerPublishesAfterWrite)
        {
            using (_monitor.Enter(SchedulePoint.FlushWorkerAfterPublishingEarly))
            {
                _ring.MarkFlushed(id); // "written" before the write (the waiters are woken after it)
            }
        }
        _schedule.At(SchedulePoint.FlushBeforeSegmentWrite);
        _cache.Write(_geometry.SegmentStartBytes(_geometry.SlotOf(id)), image[..(int)writeBytes]);
        _counters.CountCacheWrite(writeBytes);
        _schedule.At(SchedulePoint.FlushAfterSegmentWrite);
    }
}
