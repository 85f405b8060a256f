using System.Diagnostics;

namespace Writeboost.Cache.Ring;

/// <summary>
/// The ring of segment slots on the cache device, and where each segment id stands in its life. It owns, per slot,
/// the id it holds, its length and the reads pinned to it; and the ids that mark the stages every segment passes
/// through, in this order:
/// <list type="bullet">
/// <item>open: the segment writes go into now (0: none; the next one is <see cref="QueuedId"/> + 1);</item>
/// <item>queued: sealed in a RAM buffer, waiting for the flush worker;</item>
/// <item>flushed: written to the cache device, not yet durable;</item>
/// <item>durable: written, and a cache-device flush completed after;</item>
/// <item>written back: its dirty blocks are durable on the backing store and the superblock record says so.</item>
/// </list>
/// Each id only grows, and <c>durable ≤ flushed ≤ queued &lt; open</c> (when a segment is open),
/// <c>written back ≤ flushed</c>. Written back may pass durable: writeback makes the written segments durable before
/// each batch, but a segment the flush worker writes meanwhile can join the batch; once its blocks are on the
/// backing store and the record says so, its copy on the cache device is no longer needed, durable or not.
/// Every move goes through a method here, which checks the order in Debug builds. The device's lock guards it all
/// once the device is open (checked in Debug builds; recovery and a format run before anyone else sees the ring):
/// the ring does not lock.
/// </summary>
internal sealed class SegmentRing
{
    private readonly object _guard;
    private readonly ulong[] _slotId;
    private readonly int[] _slotLength;
    private readonly int[] _slotReaders; // reads in flight from this slot on the cache device: no reuse until 0

    public SegmentRing(long nrSegments, object guard)
    {
        _guard = guard;
        _slotId = new ulong[nrSegments];
        _slotLength = new int[nrSegments];
        _slotReaders = new int[nrSegments];
    }

    public long NrSegments => _slotId.Length;

    public ulong OpenId { get; private set; }
    public ulong QueuedId { get; private set; }
    public ulong FlushedId { get; private set; }
    public ulong DurableId { get; private set; }
    public ulong WrittenBackId { get; private set; }

    /// <summary>The highest id someone waits to see durable (the flush worker flushes the cache device once it has written it).</summary>
    public ulong DurableRequestedId { get; private set; }

    /// <summary>The slot of segment <paramref name="id"/> (id X lives in slot (X - 1) mod nr_segments).</summary>
    public long SlotOf(ulong id) => (long)((id - 1) % (ulong)_slotId.Length);

    /// <summary>The id the slot holds (0: none since the format).</summary>
    public ulong IdIn(long slot) => _slotId[slot];

    /// <summary>The blocks of the segment in <paramref name="slot"/> (of the open one: placed so far).</summary>
    public int LengthOf(long slot) => _slotLength[slot];

    /// <summary>Reads in flight from the slot on the cache device.</summary>
    public bool IsPinned(long slot) => _slotReaders[slot] > 0;

    /// <summary>A read from the slot on the cache device starts: the slot is not reused until it ends.</summary>
    public void Pin(long slot)
    {
        AssertGuarded();
        _slotReaders[slot]++;
    }

    /// <summary>A read from the slot ends; true when it was the last (a writer waiting for the slot may go on).</summary>
    public bool Unpin(long slot)
    {
        AssertGuarded();
        Debug.Assert(_slotReaders[slot] > 0, "a slot unpinned more often than pinned");
        return --_slotReaders[slot] == 0;
    }

    /// <summary>The slot holds segment <paramref name="id"/> of <paramref name="length"/> blocks (a new one, a recovered one, a tombstone).</summary>
    public void Bind(long slot, ulong id, int length)
    {
        Debug.Assert(id == 0 || SlotOf(id) == slot, $"segment {id} bound to slot {slot}, not its own");
        _slotId[slot] = id;
        _slotLength[slot] = length;
    }

    /// <summary>Segment <paramref name="id"/> is the open one (its slot bound to it, empty).</summary>
    public void Open(ulong id)
    {
        Bind(SlotOf(id), id, 0);
        Debug.Assert(OpenId == 0 && id == QueuedId + 1, $"segment {id} opened after queued {QueuedId} (open {OpenId})");
        OpenId = id;
        AssertOrder();
    }

    /// <summary>The open segment is sealed with <paramref name="length"/> blocks: queued for the flush worker.</summary>
    public void Seal(ulong id, int length)
    {
        AssertGuarded();
        Debug.Assert(id == OpenId, $"segment {id} sealed while {OpenId} is open");
        _slotLength[SlotOf(id)] = length;
        QueuedId = id;
        OpenId = 0;
        AssertOrder();
    }

    /// <summary>The flush worker wrote segment <paramref name="id"/> (the next in order) to the cache device.</summary>
    public void MarkFlushed(ulong id)
    {
        AssertGuarded();
        FlushedId = id;
        AssertOrder();
    }

    /// <summary>A cache-device flush that completed covers every segment up to <paramref name="id"/>.</summary>
    public void MarkDurable(ulong id)
    {
        AssertGuarded();
        DurableId = id;
        AssertOrder();
    }

    /// <summary>Writeback made every segment up to <paramref name="id"/> clean, and the superblock record says so.</summary>
    public void MarkWrittenBack(ulong id)
    {
        AssertGuarded();
        Debug.Assert(id >= WrittenBackId, $"written back moved back from {WrittenBackId} to {id}");
        WrittenBackId = id;
        AssertOrder();
    }

    /// <summary>Someone needs segment <paramref name="id"/> durable: the flush worker flushes once it has written it.</summary>
    public void RequestDurable(ulong id)
    {
        AssertGuarded();
        DurableRequestedId = id;
    }

    /// <summary>
    /// Recovery: every segment up to <paramref name="lastKeptId"/> is on the media (replayed, rebuilt or a
    /// tombstone) and durable; writing resumes after it. Written back is at least <paramref name="writtenBackId"/>.
    /// </summary>
    public void ResumeAfter(ulong lastKeptId, ulong writtenBackId)
    {
        OpenId = 0;
        QueuedId = FlushedId = DurableId = lastKeptId;
        WrittenBackId = Math.Max(WrittenBackId, writtenBackId);
    }

    /// <summary>Recovery: a segment rebuilt from pmem shows its slot's previous lap was written back.</summary>
    public void RaiseWrittenBack(ulong id)
    {
        WrittenBackId = Math.Max(WrittenBackId, id);
    }

    /// <summary>A fresh format: every slot empty, every id 0.</summary>
    public void Clear()
    {
        Array.Clear(_slotId);
        Array.Clear(_slotLength);
        OpenId = QueuedId = FlushedId = DurableId = WrittenBackId = DurableRequestedId = 0;
    }

    [Conditional("DEBUG")]
    private void AssertGuarded() => Debug.Assert(Monitor.IsEntered(_guard), "the segment ring changed without the device lock");

    /// <summary>The order stated on the type (Debug builds).</summary>
    [Conditional("DEBUG")]
    public void AssertOrder()
    {
        AssertGuarded();
        Debug.Assert(
            DurableId <= FlushedId && WrittenBackId <= FlushedId && FlushedId <= QueuedId && (OpenId == 0 || QueuedId < OpenId),
            $"segment order broken: written back {WrittenBackId}, durable {DurableId}, flushed {FlushedId}, queued {QueuedId}, open {OpenId}");
    }
}
