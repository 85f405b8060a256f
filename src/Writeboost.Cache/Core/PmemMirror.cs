using Writeboost.Cache.Format;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Ring;

namespace Writeboost.Cache.Core;

/// <summary>
/// Mode 1's persistent mirror of the RAM buffers, on the device's side: a write's slot is reserved under the device
/// lock (<see cref="Reserve"/>: its buffer pinned, its data pending), then copied into the RAM buffer and persisted
/// into pmem outside it (<see cref="Place"/>: writers persist in parallel) and unpinned; a buffer is bound to its next
/// segment (<see cref="BindUnlocked"/>) and a read-cached block's hole recorded (<see cref="PlaceHoleUnlocked"/>) with
/// the lock let go. Any pmem failure fails the device: what the buffer holds is then unknown, and like a failed
/// fsync nothing retried could make the earlier records durable again.
/// </summary>
internal sealed class PmemMirror(PmemBufferPool pool, BufferPool buffers, DeviceMonitor monitor) : BufferMirror
{
    public override bool IsPersistent => true;

    /// <summary>A barrier is a no-op fence: dax persists and fences each write on its own thread.</summary>
    public override bool BarrierIsFree => pool.BarrierIsFree;

    public override bool RewritesSlots => false;

    public override bool BindsBuffers => true;

    /// <summary>A pmem buffer is the only durable copy of its segment until the cache device has it durably.</summary>
    public override ulong ReusableThrough(SegmentRing ring) => pool.Faults.PmemBufferWaitsForDurableSegment ? ring.DurableId : ring.FlushedId;

    /// <summary>
    /// Under the lock, once nothing more can throw there: the slot <paramref name="slot"/> of segment
    /// <paramref name="segmentId"/> is the write's; its buffer stays pinned and the slot's data pending until
    /// <see cref="Place"/> (an unplaced reservation would pin its buffer for good).
    /// </summary>
    public override PmemPlacement Reserve(ulong segmentId, int slot, long block, byte dirtyBits, int offsetInBlockBytes)
    {
        int buffer = buffers.IndexOf(segmentId);
        buffers.Pin(buffer);
        buffers[buffer].MarkCopyPending(slot);
        return new PmemPlacement(buffer, slot, segmentId, block, dirtyBits, offsetInBlockBytes);
    }

    /// <summary>
    /// Outside the lock: copies the write's <paramref name="data"/> into its reserved slot of the RAM buffer (which
    /// ends the slot's pending state: see <see cref="SegmentBuffer.CopyIn"/>), then the slot (complete now, and never
    /// rewritten in this binding) and its record into pmem, and persists them; the write is acknowledged only after
    /// this returns. Then unpins the buffer, waking an acquirer waiting for it.
    /// </summary>
    public override void Place(PmemPlacement placement, ReadOnlySpan<byte> data)
    {
        SegmentBuffer buffer = buffers[placement.Buffer];
        uint? wholeBlockCrc = null;
        if (placement.OffsetInBlockBytes == 0 && data.Length == Units.BlockBytes)
        {
            wholeBlockCrc = buffer.CopyInChecksummed(placement.Slot, data); // the record's CRC, in the copy's pass
        }
        else
        {
            buffer.CopyIn(placement.Slot, placement.OffsetInBlockBytes, data);
        }
        try
        {
            uint dataCrc = pool.Place(placement.Buffer, placement.Slot, placement.SegmentId, placement.Block, placement.DirtyBits, buffer.Block(placement.Slot), wholeBlockCrc);
            buffer.KnowDataCrc(placement.Slot, placement.SegmentId, dataCrc);
        }
        catch (IOException error)
        {
            throw Failed(error);
        }
        finally
        {
            if (buffers.Unpin(placement.Buffer))
            {
                using (monitor.Enter(SchedulePoint.WriterAfterPmemPlacement))
                {
                    monitor.PulseAllLocked();
                }
            }
        }
    }

    /// <summary>
    /// Called holding the lock: a clean (read-cached) block has nothing to recover, but its slot must not look like
    /// a lost write (see <see cref="PmemBufferPool.PlaceHole"/>). Its record is written with the lock let go, the
    /// buffer pinned meanwhile as a write's placement pins it, and unpinned before the next cell is staged: a pin
    /// held across the next acquire would wait for itself. A failure fails the device but not the read that staged
    /// the block, which has its data.
    /// </summary>
    public override void PlaceHoleUnlocked(ulong segmentId, int slot)
    {
        int buffer = buffers.IndexOf(segmentId);
        buffers.Pin(buffer);
        IOException? failed;
        try
        {
            failed = Unlocked(SchedulePoint.StagerBeforePmemHole, () => pool.PlaceHole(buffer, slot, segmentId));
        }
        finally
        {
            if (buffers.Unpin(buffer))
            {
                monitor.PulseAllLocked(); // held again: wake the acquirer waiting for this buffer
            }
        }
        if (failed is not null)
        {
            Failed(failed);
        }
    }

    /// <summary>
    /// Called holding the lock, once segment <paramref name="id"/>'s buffer is free and nothing can place into it
    /// before the segment opens: binds it with the lock let go (a persist; on the block backend a read-modify-write,
    /// a write and a flush).
    /// </summary>
    public override void BindUnlocked(ulong id)
    {
        int buffer = buffers.IndexOf(id);
        if (Unlocked(SchedulePoint.AcquireBeforePmemBind, () => pool.Acquire(buffer, id)) is { } failed)
        {
            throw Failed(failed);
        }
    }

    /// <summary>Every write placed before is durable in pmem when this returns (a flush or FUA in mode 1).</summary>
    public override bool Barrier()
    {
        try
        {
            pool.Barrier();
            return true;
        }
        catch (IOException error)
        {
            throw Failed(error);
        }
    }

    /// <summary>Clears the buffers' records (the cache drained for write-around): nothing in them can be replayed.</summary>
    public override void Clear(Guid cacheUuid, Guid pmemUuid) => pool.Clear(cacheUuid, pmemUuid);

    /// <summary>Runs pmem I/O with the device lock let go (called holding it; held again on return). Returns the I/O error.</summary>
    private IOException? Unlocked(SchedulePoint leaving, Action io)
    {
        using (monitor.Leave(leaving))
        {
            try
            {
                io();
                return null;
            }
            catch (IOException error)
            {
                return error;
            }
        }
    }

    /// <summary>The pmem buffer failed a store, write-back or fence: the device fails. Returns the error for the caller to throw.</summary>
    private IOException Failed(IOException error)
    {
        IOException failure = new($"the pmem buffer {pool.Region.Name} failed: {error.Message}", error);
        monitor.Fail(failure);
        return failure;
    }
}

/// <summary>A mode-1 slot reserved under the device lock, to be copied and persisted into pmem outside it.</summary>
/// <param name="OffsetInBlockBytes">Where in the slot's block the write's data goes (its first sector, in bytes).</param>
internal readonly record struct PmemPlacement(int Buffer, int Slot, ulong SegmentId, long Block, byte DirtyBits, int OffsetInBlockBytes)
{
    public bool IsReserved => SegmentId != 0;
}
