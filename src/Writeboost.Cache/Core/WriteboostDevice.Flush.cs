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
        if (_writeAround is not null)
        {
            _backingStore.Flush();
            return;
        }
        if (!_head.Mirror.Barrier()) // mode 1: every write completed before is in pmem
        {
            _head.MakeAllDurable();
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
        if (_writeAround is not null)
        {
            _backingStore.Flush(); // what write-around wrote straight to it
        }
        ulong through = _head.MakeAllDurable();
        _writeback.WriteBackEverything(ThrowIfFailed, through);
    }
}
