using System.Diagnostics;
using Writeboost.Cache.Ring;

namespace Writeboost.Cache.Core;

/// <summary>
/// What keeps the RAM buffers' writes durable before their segment is on the cache device: nothing in mode 0
/// (<see cref="RamOnly"/>: a barrier writes the open segment as a partial log and flushes the cache device), the
/// pmem mirror in mode 1 (<see cref="PmemMirror"/>: a write is durable once placed in pmem, a barrier is a fence).
/// The device holds one and asks it at each point the modes differ; it never tests which one it holds.
/// </summary>
internal abstract class BufferMirror
{
    /// <summary>Mode 1: the buffers are persistent (sector 0 says so while the cache is open; a buffer is reused only once its segment is durable on the cache device).</summary>
    public abstract bool IsPersistent { get; }

    /// <summary>A barrier costs nothing: each write was persisted and fenced on its own thread.</summary>
    public virtual bool BarrierIsFree => false;

    /// <summary>
    /// Makes every write placed before it returns durable in the mirror. False when the mirror holds nothing durable
    /// (mode 0): the caller then makes the segments durable on the cache device.
    /// </summary>
    public abstract bool Barrier();

    /// <summary>
    /// A write of a block the open segment already holds may rewrite that slot in place (mode 0). Mode 1 never
    /// changes a slot whose record may be committed in pmem (a torn rewrite would lose the acknowledged old data):
    /// the write takes a new slot, and its data is copied in outside the lock (<see cref="Reserve"/>).
    /// </summary>
    public abstract bool RewritesSlots { get; }

    /// <summary>
    /// Under the lock, once nothing more can throw there: reserves slot <paramref name="slot"/> of segment
    /// <paramref name="segmentId"/> for a write whose data is placed by <see cref="Place"/> outside it. Mode 0 has
    /// copied the data in under the lock already: nothing is reserved.
    /// </summary>
    public abstract PmemPlacement Reserve(ulong segmentId, int slot, long block, byte dirtyBits, int offsetInBlockBytes);

    /// <summary>Outside the lock: places a reserved write (see <see cref="Reserve"/>); it is acknowledged once this returns.</summary>
    public abstract void Place(PmemPlacement placement, ReadOnlySpan<byte> data);

    /// <summary>Called holding the lock: a clean block the read cache staged into slot <paramref name="slot"/> is recorded as no lost write.</summary>
    public abstract void PlaceHoleUnlocked(ulong segmentId, int slot);

    /// <summary>A buffer must be bound to its next segment (<see cref="BindUnlocked"/>) before that segment opens.</summary>
    public abstract bool BindsBuffers { get; }

    /// <summary>Called holding the lock, once segment <paramref name="id"/>'s buffer is free: binds it with the lock let go.</summary>
    public abstract void BindUnlocked(ulong id);

    /// <summary>The newest segment whose buffer may be reused: written to the cache device (mode 0), durable there (mode 1).</summary>
    public abstract ulong ReusableThrough(SegmentRing ring);

    /// <summary>The cache is formatted anew (drained for write-around): nothing the mirror holds may be replayed.</summary>
    public abstract void Clear(Guid cacheUuid, Guid pmemUuid);

    /// <summary>Mode 0: the RAM buffers alone. Durability is the cache device's; nothing to place, bind or clear.</summary>
    public sealed class RamOnly : BufferMirror
    {
        public static RamOnly Instance { get; } = new();

        private RamOnly()
        {
        }

        public override bool IsPersistent => false;

        public override bool Barrier() => false;

        public override bool RewritesSlots => true;

        public override PmemPlacement Reserve(ulong segmentId, int slot, long block, byte dirtyBits, int offsetInBlockBytes) => default;

        public override void Place(PmemPlacement placement, ReadOnlySpan<byte> data) =>
            Debug.Fail("mode 0 reserves nothing to place");

        public override void PlaceHoleUnlocked(ulong segmentId, int slot)
        {
        }

        public override bool BindsBuffers => false;

        public override void BindUnlocked(ulong id) => Debug.Fail("mode 0 binds no buffer");

        public override ulong ReusableThrough(SegmentRing ring) => ring.FlushedId;

        public override void Clear(Guid cacheUuid, Guid pmemUuid)
        {
        }
    }
}
