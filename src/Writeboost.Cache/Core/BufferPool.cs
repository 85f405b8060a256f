using System.Diagnostics;

namespace Writeboost.Cache.Core;

/// <summary>
/// The RAM buffers segments gather in: segment id i uses buffer (i - 1) mod the pool's size, so a buffer is free for
/// segment i once segment i - size is written (mode 1: durable). Mode 1 also pins a buffer while a writer places a
/// slot of it into pmem outside the device lock: a pinned buffer is not rebound to a newer segment (its records
/// would land in the new binding). Pins change lock-free; acquirers waiting for one count themselves, so the last
/// unpin knows to wake them.
/// </summary>
internal sealed class BufferPool
{
    private readonly SegmentBuffer[] _buffers;
    private readonly int[] _pins;
    private int _waiters;

    public BufferPool(int size, long segmentSizeBytes)
    {
        _buffers = new SegmentBuffer[size];
        _pins = new int[size];
        for (int i = 0; i < size; i++)
        {
            _buffers[i] = new SegmentBuffer(segmentSizeBytes);
        }
    }

    public int Count => _buffers.Length;

    public SegmentBuffer this[int index] => _buffers[index];

    public int IndexOf(ulong segmentId) => (int)((segmentId - 1) % (ulong)_buffers.Length);

    public SegmentBuffer Of(ulong segmentId) => _buffers[IndexOf(segmentId)];

    /// <summary>The segment that must be written (mode 1: durable) before segment <paramref name="id"/> may take its buffer (0: none).</summary>
    public ulong FreeAfter(ulong id) => id > (ulong)_buffers.Length ? id - (ulong)_buffers.Length : 0;

    public void Pin(int buffer) => Interlocked.Increment(ref _pins[buffer]);

    /// <summary>
    /// A placement into <paramref name="buffer"/> is done: unpins it. Returns whether an acquirer may be waiting for
    /// it, to be woken under the lock. The count is read after the decrement (both are full fences): an acquirer that
    /// counted itself before reading the pin sees it gone, or is seen here.
    /// </summary>
    public bool Unpin(int buffer)
    {
        int left = Interlocked.Decrement(ref _pins[buffer]);
        Debug.Assert(left >= 0, "a buffer unpinned more often than pinned");
        return left == 0 && Volatile.Read(ref _waiters) > 0;
    }

    public bool IsPinned(int buffer) => Volatile.Read(ref _pins[buffer]) != 0;

    /// <summary>An acquirer is about to wait for a buffer's pins to go (until <see cref="StopWaiting"/>).</summary>
    public void StartWaiting() => Interlocked.Increment(ref _waiters);

    public void StopWaiting() => Interlocked.Decrement(ref _waiters);
}
