using System.Diagnostics;
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
        if (_writeAroundMode)
        {
            WriteAround(offsetBytes, source, options);
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
                _mirror.Place(placement, data);
            }
            if (sealedLength > 0)
            {
                // This write filled its buffer: checksum it here, outside the lock, while the flush worker writes the
                // previous one; then the flush worker may take it.
                BufferOf(landedIn).EnsureChecksum(landedIn, sealedLength, Geometry.MetablockBytes);
                _flushWorker.Wake();
            }
        }
        if ((options & WriteOptions.Fua) != 0)
        {
            _options.Schedule.At(SchedulePoint.WriterBeforeBarrier);
            // Mode 1: durable once in pmem — no partial log, no cache flush.
            if (!_mirror.Barrier() && (Faults.FuaWaitsForFlushOfWrittenSegment || !SegmentWrittenLocked(landedIn)))
            {
                MakeDurable(landedIn);
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
    /// </summary>
    /// <para>Mode 1: the slot is reserved here, under the lock, and returned in <paramref name="placement"/> with its
    /// buffer pinned and its data pending; the caller copies the data into the RAM buffer and persists it into pmem
    /// outside the lock (<see cref="PmemMirror.Place"/>). Only a partial overwrite's merge of the old copy is done here.</para>
    private ulong WritePiece(long block, int firstSector, int sectorCount, ReadOnlySpan<byte> data, out int sealedLength, out PmemPlacement placement)
    {
        byte bits = Units.SectorMask(firstSector, sectorCount);
        sealedLength = 0;
        placement = default;
        using (_monitor.Enter(SchedulePoint.WriterAfterPlacing))
        {
            EnsureOpenSlot(clearsPoison: !_poison.IsEmpty && (_poison.SectorsOf(block) & bits) != 0);
            _readCache.CancelLocked(block);
            if (!_poison.IsEmpty && _poison.Clear(block, bits, _ring.OpenId))
            {
                // A rewrite of lost sectors: they read the new data now; writeback may pass the damaged copy once
                // this write is durable.
                _writeback.ReleaseHoldLocked();
            }
            bool hit = _cacheIndex.TryFind(block, out int old);
            bool onBuffer = hit && SlotOfGlobal(old) == Geometry.SlotOf(_ring.OpenId);
            CountStat(write: true, hit, onBuffer, fullsize: bits == Units.FullBlockBits);
            // Mode 0 merges into the open buffer in place. Mode 1 never changes a slot whose record may be
            // committed in pmem (a torn rewrite would lose the acknowledged old data): the write takes a new slot.
            if (onBuffer && _mirror.RewritesSlots)
            {
                data.CopyTo(BufferOf(_ring.OpenId).Block(IndexInSegment(old))[(firstSector * Units.SectorBytes)..]);
                _cacheIndex.MergeInPlace(old, bits);
                _open.Merged(IndexInSegment(old), _cacheIndex.SectorsAt(old));
                return _ring.OpenId;
            }

            // The slot is taken only once the old copy is read: a failed read must not leave a hole in the
            // segment (in mode 1 a later record would say the empty slot was durable: damage, not a crash).
            int index = _open.Length;
            Span<byte> slotData = BufferOf(_ring.OpenId).Block(index);
            byte newBits = bits;
            if (hit && _cacheIndex.IsDirty(old) && bits != Units.FullBlockBits)
            {
                byte keep = (byte)(_cacheIndex.SectorsAt(old) & ~bits);
                if (keep != 0)
                {
                    ReadOldCopyLocked(old, slotData);
                    newBits |= keep;
                }
            }
            if (hit)
            {
                Supersede(old);
            }
            if (_mirror.RewritesSlots)
            {
                data.CopyTo(slotData[(firstSector * Units.SectorBytes)..]); // mode 1 copies it in outside the lock: Reserve, then Place
            }
            PlaceInOpenSegmentLocked(block, newBits, dirty: true);
            ulong landed = _ring.OpenId;
            if (_open.IsFull)
            {
                // Full: seal now, so a FUA or flush waiting for this buffer sees a full log and needs no partial one.
                // The caller checksums it and wakes the flush worker (see Write).
                SealOpenLocked(partial: false, wakeFlushWorker: false);
                sealedLength = BlocksPerSegment;
            }
            // Reserved last, once nothing here can throw: an unplaced reservation would pin its buffer (and leave
            // its data pending) for good.
            placement = _mirror.Reserve(landed, index, block, newBits, firstSector * Units.SectorBytes);
            return landed;
        }
    }

    /// <summary>
    /// Reads the 4 KiB held at metablock g — from its RAM buffer while its segment is not yet written,
    /// otherwise from the cache device — into <paramref name="destination"/>. Called with _lock held: the
    /// rare case (a partial overwrite of a dirty block) where dm-writeboost, too, reads under its lock.
    /// </summary>
    private void ReadOldCopyLocked(int g, Span<byte> destination)
    {
        long slot = SlotOfGlobal(g);
        ulong id = _ring.IdIn(slot);
        if (id > _ring.FlushedId)
        {
            SegmentBuffer buffer = BufferOf(id);
            buffer.WaitCopied(IndexInSegment(g));
            buffer.Block(IndexInSegment(g)).CopyTo(destination);
            return;
        }
        _cache.Read(Geometry.DataBlockBytes(slot, IndexInSegment(g)), destination);
        Counters.CountCacheRead(Units.BlockBytes);
    }

    /// <summary>
    /// Returns with _lock held, an open segment, and room in it for one more block. Seals a full buffer
    /// and acquires the next segment; acquiring waits (releasing the lock) for a free RAM buffer and a free
    /// ring slot, urging writeback when the ring is full. Writers wait instead of overwriting dirty data.
    /// </summary>
    /// <param name="clearsPoison">The write rewrites lost sectors: it may take the ring slot kept for that (see <see cref="AcquireSegmentLocked"/>).</param>
    private void EnsureOpenSlot(bool clearsPoison = false)
    {
        while (true)
        {
            ThrowIfFailed();
            if (_ring.OpenId != 0 && !_open.IsFull)
            {
                return;
            }
            if (_ring.OpenId != 0)
            {
                SealOpenLocked(partial: false);
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
                AcquireSegmentLocked(_ring.QueuedId + 1, clearsPoison);
            }
            finally
            {
                _acquiring = false;
                _monitor.PulseAllLocked();
            }
        }
    }

    /// <summary>
    /// Makes segment <paramref name="id"/> the open one. Its RAM buffer must have been written (id - pool size
    /// flushed) and its ring slot's previous segment (id - nr_segments) written back — and recorded as such in
    /// the superblock record, so a crash while this slot is being overwritten can never lose the old segment's
    /// data (recovery starts after the record). Then the old segment's clean mappings are dropped.
    /// </summary>
    private void AcquireSegmentLocked(ulong id, bool clearsPoison)
    {
        long slot = Geometry.SlotOf(id);
        if (!_poison.IsEmpty && !clearsPoison && _writeback.OldestPoisonedSegmentLocked() is { } held && id + 1 >= held + (ulong)Geometry.NrSegments)
        {
            // Writeback cannot pass a segment that holds lost blocks, so the ring fills up behind it. The last free
            // slot is kept for the writes that rewrite them (or clear_poison's zeros): without it nothing could.
            throw new IOException(_writeback.HeldMessage(held, $"segment {id} would take the last free ring slot"));
        }
        ulong bufferFreeAfter = _buffers.FreeAfter(id);
        ulong slotFreeAfter = id > (ulong)Geometry.NrSegments ? id - (ulong)Geometry.NrSegments : 0;
        // Mode 1: a pmem buffer is the only durable copy of its segment until the cache device has it durably, and
        // it is not rebound while a writer of its old segment is still placing into it (pinned).
        int bufferIndex = _buffers.IndexOf(id);
        bool pmemBound = !_mirror.BindsBuffers;
        _buffers.StartWaiting();
        try
        {
            while (true)
            {
                bool ready = _mirror.ReusableThrough(_ring) >= bufferFreeAfter && _ring.WrittenBackId >= slotFreeAfter && !_ring.IsPinned(slot)
                    && !_buffers.IsPinned(bufferIndex);
                if (ready && pmemBound)
                {
                    break;
                }
                if (ready)
                {
                    // The pmem buffer is free (its segment durable on the cache device, no placement into it in flight)
                    // and nothing can place into it before this segment opens (_acquiring): bind it with the lock let go —
                    // a persist, on the block backend a read-modify-write, a write and a flush — then check again.
                    _mirror.BindUnlocked(id);
                    pmemBound = true;
                    continue;
                }
                ThrowIfFailed();
                if (_writeback.HeldBy != 0 && _writeback.HeldBy <= slotFreeAfter)
                {
                    throw new IOException(_writeback.HeldMessage(_writeback.HeldBy, $"segment {id} needs ring slot {slot}"));
                }
                if (_mirror.IsPersistent && _ring.DurableId < bufferFreeAfter)
                {
                    // Ask for the cache flush only now, when a buffer is needed back: one flush for many segments.
                    _flushWorker.RequestDurableLocked(bufferFreeAfter);
                }
                if (_ring.WrittenBackId < slotFreeAfter)
                {
                    _writeback.UrgeLocked();
                }
                _monitor.WaitLocked();
            }
        }
        finally
        {
            _buffers.StopWaiting();
        }
        UnmapSlotLocked(slot);
        SegmentBuffer buffer = BufferOf(id);
        buffer.ClearMetadata();
        buffer.SegmentId = id;
        _ring.Bind(slot, id, 0);
        _open.Begin();
        ulong halfPool = (ulong)Math.Max(1, _buffers.Count / 2);
        if (_mirror.IsPersistent && id > halfPool)
        {
            // Half the pmem buffers are in use: ask for a cache flush now, so that by the time a writer needs a
            // buffer back it is already durable — one flush per half pool, overlapped with filling the other half.
            _flushWorker.RequestDurableLocked(id - halfPool);
        }
        _ring.Open(id);
    }

    /// <summary>write_around_mode: the write goes to the backing store; any cached copy is forgotten.</summary>
    private void WriteAround(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options)
    {
        using (_monitor.Enter(SchedulePoint.WriteAroundBeforeBackingWrite))
        {
            foreach (BlockPiece piece in new BlockPieces(offsetBytes, source.Length))
            {
                // Until the backing write lands, a read miss of the block would read the old data: no cell may
                // stage it (it would serve the old data, as clean, after this write was acknowledged).
                if (Faults.WriteAroundKeepsReadCacheOut)
                {
                    _readCache.BeginWriteAroundLocked(piece.Block);
                }
                else
                {
                    _readCache.CancelLocked(piece.Block);
                }
                bool hit = _cacheIndex.TryFind(piece.Block, out int g);
                CountStat(write: true, hit, onBuffer: false, fullsize: piece.SectorCount == Units.SectorsPerBlock);
                if (hit)
                {
                    _cacheIndex.Unmap(g);
                }
            }
        }
        try
        {
            _backingStore.Write(offsetBytes, source, options);
        }
        finally
        {
            using (_monitor.Enter(SchedulePoint.WriteAroundAfterBackingWrite))
            {
                foreach (BlockPiece piece in new BlockPieces(offsetBytes, source.Length))
                {
                    if (Faults.WriteAroundKeepsReadCacheOut)
                    {
                        _readCache.EndWriteAroundLocked(piece.Block);
                    }
                }
            }
        }
    }
}
