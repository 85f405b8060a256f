using Writeboost.Cache.Format;
using Writeboost.Devices;

namespace Writeboost.Cache.Core;

public sealed partial class WriteboostDevice
{
    /// <summary>
    /// Writes sectors. A request is split at 4 KiB block boundaries; each piece goes into the open RAM buffer.
    /// Without FUA the call returns once the data is in the buffer (volatile until a flush, as a disk's write
    /// cache). With FUA it returns once the data is durable on the cache device: the buffer holding it is sealed
    /// as a partial log if need be (after <c>barrier_deadline_ms</c>), written, and the cache device flushed.
    /// </summary>
    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        DeviceRange.CheckAligned(this, offsetBytes, source.Length, "write");
        ThrowIfFailed();
        if (_options.ReadOnly)
        {
            throw new IOException($"{Name} is open read-only (to look at it): it takes no writes");
        }
        Counters.CountWrite(source.Length, options);
        if (_writeAround is not null)
        {
            _writeAround.Write(offsetBytes, source, options);
            return;
        }
        ulong landedIn = 0;
        foreach (BlockPiece piece in new BlockPieces(offsetBytes, source.Length))
        {
            _options.Schedule.At(SchedulePoint.WriterBeforePlace);
            ReadOnlySpan<byte> data = source.Slice(piece.OffsetInRequestBytes, piece.LengthBytes);
            landedIn = WritePiece(piece.Block, piece.FirstSector, piece.SectorCount, data, out int sealedLength, out PmemPlacement placement);
            if (placement.IsReserved)
            {
                _head.Mirror.Place(placement, data);
            }
            if (sealedLength > 0)
            {
                _head.ChecksumAndHandOver(landedIn, sealedLength);
            }
        }
        if ((options & WriteOptions.Fua) != 0)
        {
            _options.Schedule.At(SchedulePoint.WriterBeforeBarrier);
            // Mode 1: durable once in pmem — no partial log, no cache flush.
            if (!_head.Mirror.Barrier() && (Faults.FuaWaitsForFlushOfWrittenSegment || !SegmentWrittenLocked(landedIn)))
            {
                _head.MakeDurable(landedIn);
            }
        }
    }

    /// <summary>The seeded bug's test: the flush worker has written segment <paramref name="id"/> (not: made it durable).</summary>
    private bool SegmentWrittenLocked(ulong id)
    {
        using (_monitor.Enter(SchedulePoint.WriterAfterCheckingWritten))
        {
            return _ring.FlushedId >= id;
        }
    }

    /// <summary>
    /// Puts one piece (sectors of one block) into the open buffer. dm-writeboost's rules:
    /// <list type="bullet">
    /// <item>the block is in the open buffer: the new sectors are copied over it in place; its bits grow;</item>
    /// <item>the block is dirty in an older segment (queued or on the cache device) and the write does not cover
    /// all eight sectors: the old dirty sectors the write does not cover are merged into the new copy (the newer
    /// data wins), so the new copy alone holds every dirty sector; the old copy becomes clean and unmapped;</item>
    /// <item>the block is clean in the cache (read-cached or written back): the old copy is dropped — the backing
    /// store has it;</item>
    /// </list>
    /// Dirtiness only grows in the open buffer and only shrinks once a segment is sealed.
    /// Returns the id of the segment that now holds the data.
    /// <para>An old copy on the cache device is read with the lock let go, before anything changes. Mode 1: the slot
    /// is reserved here, under the lock, and returned in <paramref name="placement"/> with its buffer pinned and its
    /// data pending; the caller copies the data into the RAM buffer and persists it into pmem outside the lock
    /// (<see cref="PmemMirror.Place"/>). Only a partial overwrite's merge of the old copy is done here.</para>
    /// </summary>
    private ulong WritePiece(long block, int firstSector, int sectorCount, ReadOnlySpan<byte> data, out int sealedLength, out PmemPlacement placement)
    {
        byte bits = Units.SectorMask(firstSector, sectorCount);
        sealedLength = 0;
        placement = default;
        OldCopy? oldCopy = null;
        while (true)
        {
            using (_monitor.Enter(SchedulePoint.WriterAfterPlacing))
            {
                _head.EnsureRoomLocked(clearsPoison: !_poison.IsEmpty && (_poison.SectorsOf(block) & bits) != 0);
                bool hit = _cacheIndex.TryFind(block, out int old);
                byte keep = hit && bits != Units.FullBlockBits && _cacheIndex.IsDirty(old) ? (byte)(_cacheIndex.SectorsAt(old) & ~bits) : (byte)0;
                bool oldInBuffer = keep != 0 && _reads.InBufferLocked(old);
                if (keep != 0 && !oldInBuffer && !_reads.IsCopyOf(oldCopy, old))
                {
                    // The old dirty sectors are on the cache device: read with the lock let go, then decide again.
                    oldCopy = _reads.ReadOldCopyUnlocked(old);
                    continue;
                }
                _reads.Cells.CancelLocked(block);
                if (!_poison.IsEmpty && _poison.Clear(block, bits, _ring.OpenId))
                {
                    // A rewrite of lost sectors: they read the new data now; writeback may pass the damaged copy once
                    // this write is durable.
                    _writeback.ReleaseHoldLocked();
                }
                bool onBuffer = hit && _cacheIndex.SlotOf(old) == Geometry.SlotOf(_ring.OpenId);
                _stats.CountLocked(write: true, hit, onBuffer, fullsize: bits == Units.FullBlockBits);
                // Mode 0 merges into the open buffer in place. Mode 1 never changes a slot whose record may be
                // committed in pmem (a torn rewrite would lose the acknowledged old data): the write takes a new slot.
                if (onBuffer && _head.Mirror.RewritesSlots)
                {
                    data.CopyTo(_buffers.Of(_ring.OpenId).Block(_cacheIndex.IndexInSegment(old))[(firstSector * Units.SectorBytes)..]);
                    _cacheIndex.MergeInPlace(old, bits);
                    _head.Open.Merged(_cacheIndex.IndexInSegment(old), _cacheIndex.SectorsAt(old));
                    return _ring.OpenId;
                }
                int index = _head.Open.Length;
                Span<byte> slotData = _buffers.Of(_ring.OpenId).Block(index);
                if (keep != 0)
                {
                    // The new copy alone holds every dirty sector: the old ones it does not overwrite are merged in.
                    if (oldInBuffer)
                    {
                        _reads.CopyOldFromBufferLocked(old, slotData);
                    }
                    else
                    {
                        oldCopy!.Data.CopyTo(slotData);
                    }
                }
                if (hit)
                {
                    _head.SupersedeLocked(old);
                }
                if (_head.Mirror.RewritesSlots)
                {
                    data.CopyTo(slotData[(firstSector * Units.SectorBytes)..]); // mode 1 copies it in outside the lock: Reserve, then Place
                }
                _head.PlaceLocked(block, (byte)(bits | keep), dirty: true);
                ulong landed = _ring.OpenId;
                if (_head.Open.IsFull)
                {
                    // Full: seal now, so a FUA or flush waiting for this buffer sees a full log and needs no partial one.
                    // The caller checksums it and wakes the flush worker (see Write).
                    _head.SealLocked(partial: false, wakeFlushWorker: false);
                    sealedLength = Geometry.BlocksPerSegment;
                }
                // Reserved last, once nothing here can throw: an unplaced reservation would pin its buffer (and leave
                // its data pending) for good.
                placement = _head.Mirror.Reserve(landed, index, block, (byte)(bits | keep), firstSector * Units.SectorBytes);
                return landed;
            }
        }
    }
}
