using System.Buffers;
using Writeboost.Cache.Format;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Devices;

namespace Writeboost.Cache.Core;

/// <summary>What opening a cache found and did.</summary>
public sealed record RecoveryReport(
    bool Formatted,
    ulong SuperblockRecordId,
    ulong FirstReplayedId,
    ulong LastReplayedId,
    int SegmentsReplayed,
    int SegmentsDiscarded,
    long DirtyBlocksRecovered,
    string? StopReason,
    IReadOnlyList<string> Warnings)
{
    /// <summary>Mode 1: the pmem buffer was blank (or reformatted) and got formatted.</summary>
    public bool PmemFormatted { get; init; }
    /// <summary>Mode 1: segments rebuilt from pmem buffers and written to the cache device.</summary>
    public int PmemSegmentsRebuilt { get; init; }
    /// <summary>Mode 1: records whose CRC failed (writes in flight at the crash, never acknowledged).</summary>
    public int PmemTornRecords { get; init; }

    public static RecoveryReport None { get; } = new(false, 0, 0, 0, 0, 0, 0, null, []);
}

public sealed partial class WriteboostDevice
{
    /// <summary>
    /// Formats the cache device, as dm-writeboost does, so that a crash at any point leaves either the old
    /// state or an unformatted device, never a half-made cache that replays:
    /// 1. zero the superblock region (magic and record gone first);
    /// 2. zero the metadata block of every segment slot (no old segment can replay);
    /// 3. flush the cache device;
    /// 4. write sector 0 — magic, geometry, identity — with FUA, last.
    /// </summary>
    private void Format(bool wasFormatted)
    {
        byte[] zeros = new byte[CacheGeometry.SuperblockRegionBytes];
        _cache.Write(0, zeros);
        _recordId = 0; // the record went with the superblock region
        for (long slot = 0; slot < Geometry.NrSegments; slot++)
        {
            _cache.Write(Geometry.SegmentStartBytes(slot), zeros.AsSpan(0, Units.BlockBytes));
        }
        _cache.Flush();
        byte[] header = new byte[SuperblockHeaderOnDisk.WriteBytes];
        _superblock = _superblock with { Flags = 0 };
        _superblock.WriteTo(header);
        _cache.Write(0, header, WriteOptions.Fua);
        Recovery = RecoveryReport.None with
        {
            Formatted = true,
            Warnings = wasFormatted ? ["the cache device held a cache; it was reformatted (its contents are gone)"] : [],
        };
    }

    /// <summary>
    /// Rebuilds the index from the logs on the cache device. dm-writeboost replays every slot in ring order from
    /// the one after the newest id and stops at the first bad checksum; that loses acknowledged data when the
    /// slot being reused is torn, and can replay a stale segment (an earlier lap's) after an id gap. Here:
    /// <list type="number">
    /// <item>R = the superblock record (last written-back id). The writer never overwrites a slot before the
    /// record durably covers the segment it held, so every segment after R is still in its slot.</item>
    /// <item>Walk ids R+1, R+2, ...: the slot (id - 1) % nr_segments must hold exactly that id, a length within
    /// the geometry and a good checksum. The first id that fails ends the walk: everything after it was written
    /// after the last cache flush (a flush orders all writes before it), so nothing acknowledged is lost by
    /// stopping. A valid segment after the gap is an error to report, not to replay.</item>
    /// <item>Apply each segment's metablocks in id order: a dirty entry maps its block (a newer entry replaces an
    /// older one; the writer merged any older dirty sectors into the newer copy). Clean entries (read-cached
    /// blocks) are not trusted across a restart and are ignored.</item>
    /// <item>Zero the metadata block of every slot whose header carries an id beyond the walk, and flush, so no
    /// discarded segment can be replayed after segments written from now on (which reuse those ids).</item>
    /// </list>
    /// Recovery writes nothing else, so it is idempotent: a crash during it leaves a state it recovers again.
    /// </summary>
    private void Replay()
    {
        List<string> warnings = [];
        byte[] recordBlock = new byte[Units.BlockBytes];
        _cache.Read(SuperblockRecordOnDisk.WriteOffsetBytes, recordBlock);
        SuperblockRecordOnDisk.Record stored = SuperblockRecordOnDisk.Read(recordBlock);
        ulong[] headerIds = ReadAllHeaderIds();
        ulong record = SuperblockRecordOnDisk.Infer(stored, headerIds, Geometry, ours: _superblock.CacheUuid != Guid.Empty, out string? recordWarning);
        if (recordWarning is not null)
        {
            warnings.Add(recordWarning);
        }
        // No check that a slot still holds segment R: writeback may have copied a segment that was written but not
        // yet durable on the cache device; a crash can then lose the segment while the FUA record survives —
        // harmless, its data is durable on the backing store (found by the crash harness).

        // One segment image, lent: recovery runs on every open, and the crash harness opens thousands a second.
        byte[] segment = ArrayPool<byte>.Shared.Rent((int)Geometry.SegmentSizeBytes);
        try
        {
            ReplayFrom(segment, record, headerIds, warnings);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(segment);
        }
    }

    private void ReplayFrom(byte[] segment, ulong record, ulong[] headerIds, List<string> warnings)
    {
        if (Mutant == Mutant.ReplayStaleAfterGap)
        {
            ReplayLikeTheKernel(segment, record, headerIds, warnings);
            return;
        }
        ulong id = record + 1;
        ulong firstReplayed = 0;
        int replayed = 0;
        string? stopReason = null;
        while (true)
        {
            long slot = Geometry.SlotOf(id);
            _cache.Read(Geometry.SegmentStartBytes(slot), segment.AsSpan(0, Units.BlockBytes));
            SegmentHeaderOnDisk header = SegmentHeaderOnDisk.Read(segment);
            if (header.Id != id)
            {
                stopReason = header.Id == 0 ? $"segment {id}: slot {slot} is empty" : $"segment {id}: slot {slot} holds segment {header.Id}";
                if (header.Id != 0 && Geometry.SlotOf(header.Id) != slot)
                {
                    // A crash leaves a slot empty, torn, or holding its previous lap's segment; never an id of another slot.
                    warnings.Add($"slot {slot} holds segment id {header.Id}, which belongs in slot {Geometry.SlotOf(header.Id)}: a damaged header; replay stopped before segment {id}");
                }
                break;
            }
            if (header.Length > BlocksPerSegment)
            {
                stopReason = $"segment {id}: length {header.Length} exceeds {BlocksPerSegment} blocks";
                warnings.Add($"segment {id} in slot {slot} claims {header.Length} blocks, more than a segment holds: a damaged header; replay stopped before it");
                break;
            }
            int dataBytes = (int)Units.BlocksToBytes(header.Length);
            if (dataBytes > 0)
            {
                _cache.Read(Geometry.DataBlockBytes(slot, 0), segment.AsSpan(Units.BlockBytes, dataBytes));
            }
            if (SegmentHeaderOnDisk.ComputeChecksum(segment, header.Length) != header.Checksum && Mutant != Mutant.TrustSegmentWithoutChecksum)
            {
                stopReason = $"segment {id}: checksum mismatch (torn or never completed)";
                break;
            }
            string? bad = ApplySegment(segment, slot, id, header.Length);
            if (bad is not null)
            {
                stopReason = $"segment {id}: {bad}";
                warnings.Add($"segment {id} has a good checksum but {bad}: replay stopped before it");
                break;
            }
            firstReplayed = firstReplayed == 0 ? id : firstReplayed;
            replayed++;
            id++;
        }
        ulong lastReplayed = id - 1;

        int discarded = DiscardSegmentsAfter(lastReplayed, headerIds, warnings);
        ulong resumeAfter = Math.Max(lastReplayed, record);
        _lastQueuedId = _lastFlushedId = _lastDurableId = resumeAfter;
        _lastWritebackId = record;
        Recovery = new RecoveryReport(false, record, firstReplayed, replayed > 0 ? lastReplayed : 0, replayed, discarded, _nrDirty, stopReason, warnings);
    }

    /// <summary>Applies a verified segment's metablocks; returns why the segment is unusable, or null.</summary>
    private string? ApplySegment(ReadOnlySpan<byte> segment, long slot, ulong id, int length)
    {
        int entryBytes = Geometry.MetablockBytes;
        long backingSectors = Units.BytesToSectors(SizeBytes);
        // Validate first, so a segment is applied whole or not at all.
        for (int i = 0; i < length; i++)
        {
            if (MetablockOnDisk.Read(segment, i, entryBytes).Problem(i, backingSectors) is { } problem)
            {
                return problem;
            }
        }
        _slotId[slot] = id;
        _slotLength[slot] = length;
        for (int i = 0; i < length; i++)
        {
            MetablockOnDisk entry = MetablockOnDisk.Read(segment, i, entryBytes);
            if (entry.DirtyBits == 0)
            {
                continue;
            }
            long block = entry.BackingSector / Units.SectorsPerBlock;
            if (_index.TryGetValue(block, out int older))
            {
                Unmap(older);
            }
            int g = Global(slot, i);
            _mbBlock[g] = block;
            _mbDataBits[g] = entry.DirtyBits;
            _mbDirty[g] = true;
            _nrDirty++;
            _index[block] = g;
        }
        return null;
    }

    /// <summary>
    /// The mutant: dm-writeboost's replay. Start at the slot after the highest id, visit every slot in ring order,
    /// skip empty ones, stop at the first bad checksum, apply whatever else is valid — a stale segment of an
    /// earlier lap included — and infer last_writeback = max(record, newest - nr_segments).
    /// </summary>
    private void ReplayLikeTheKernel(byte[] segment, ulong record, ulong[] headerIds, List<string> warnings)
    {
        ulong maxId = headerIds.Max();
        ulong newest = 0;
        int replayed = 0;
        for (long i = 0; i < Geometry.NrSegments && maxId > 0; i++)
        {
            long slot = (long)((maxId + (ulong)i) % (ulong)Geometry.NrSegments);
            ulong id = headerIds[slot];
            if (id == 0)
            {
                continue;
            }
            _cache.Read(Geometry.SegmentStartBytes(slot), segment.AsSpan(0, Units.BlockBytes));
            SegmentHeaderOnDisk header = SegmentHeaderOnDisk.Read(segment);
            if (header.Length > BlocksPerSegment)
            {
                break;
            }
            _cache.Read(Geometry.DataBlockBytes(slot, 0), segment.AsSpan(Units.BlockBytes, (int)Units.BlocksToBytes(header.Length)));
            if (SegmentHeaderOnDisk.ComputeChecksum(segment, header.Length) != header.Checksum || ApplySegment(segment, slot, id, header.Length) is not null)
            {
                break;
            }
            newest = id;
            replayed++;
        }
        ulong inferred = newest > (ulong)Geometry.NrSegments ? newest - (ulong)Geometry.NrSegments : 0;
        _lastQueuedId = _lastFlushedId = _lastDurableId = Math.Max(newest, record);
        _lastWritebackId = Math.Max(record, inferred);
        Recovery = new RecoveryReport(false, record, 0, newest, replayed, 0, _nrDirty, "kernel-style replay (mutant)", warnings);
    }

    /// <summary>The id in every slot's header: one sector per slot (the id is in the first 8 bytes), not the 4 KiB metadata block.</summary>
    private ulong[] ReadAllHeaderIds()
    {
        byte[] header = new byte[Math.Max(SegmentHeaderOnDisk.SizeBytes, _cache.SectorSizeBytes)];
        ulong[] ids = new ulong[Geometry.NrSegments];
        for (long slot = 0; slot < Geometry.NrSegments; slot++)
        {
            _cache.Read(Geometry.SegmentStartBytes(slot), header);
            ids[slot] = SegmentHeaderOnDisk.Read(header).Id;
        }
        return ids;
    }

    private int DiscardSegmentsAfter(ulong lastReplayed, ulong[] headerIds, List<string> warnings)
    {
        byte[] zeros = new byte[Units.BlockBytes];
        int discarded = 0;
        for (long slot = 0; slot < Geometry.NrSegments; slot++)
        {
            if (headerIds[slot] > lastReplayed && (Mutant != Mutant.DiscardOnlyNextSegment || headerIds[slot] == lastReplayed + 1))
            {
                _cache.Write(Geometry.SegmentStartBytes(slot), zeros);
                discarded++;
            }
        }
        if (discarded > 0)
        {
            _cache.Flush();
            warnings.Add($"{discarded} segment(s) beyond the last contiguous id {lastReplayed} were discarded (written after the last flush, never acknowledged as durable)");
        }
        return discarded;
    }

    /// <summary>Rewrites sector 0 with new flags (one FUA write of the 4 KiB header block).</summary>
    private void WriteSuperblockFlags(byte flags)
    {
        if (_superblock.Flags == flags)
        {
            return;
        }
        _superblock = _superblock with { Flags = flags };
        byte[] header = new byte[SuperblockHeaderOnDisk.WriteBytes];
        _superblock.WriteTo(header);
        _cache.Write(0, header, WriteOptions.Fua);
    }

    /// <summary>
    /// Mode 1: opens the pmem buffer pool (formatting it with a new cache) and gives back what it holds:
    /// 1. the cache device replay (done before) ended at segment E;
    /// 2. pmem buffers bound to segments E+1, E+2, ... (contiguous) hold writes acknowledged after E was sealed;
    ///    each one's valid records (id, slot and CRC all match; a torn one was never acknowledged) are rebuilt
    ///    into a dense segment with the same id and written to its slot on the cache device;
    /// 3. the cache device is flushed, the segments are applied like replayed ones, and sector 0 is marked
    ///    "pmem buffer live" (mode 0 refuses the cache until a clean mode-1 close clears it).
    /// Only after the flush do those buffers count as stale (their ids are then ≤ the cache's), so a crash
    /// during this recovery recovers the same way again.
    /// </summary>
    private void OpenPmemBuffer(bool format)
    {
        PmemLayout layout = new(Geometry.SegmentSizeOrder, _buffers.Length, BlocksPerSegment);
        _pmem = PmemBufferPool.Open(_pmemRegion!, layout, CacheUuid, format, out bool formatted);
        _pmem.Mutant = Mutant;
        List<string> warnings = [.. Recovery.Warnings];
        int rebuilt = 0;
        int torn = 0;
        if (!formatted)
        {
            List<RecoveredBuffer> buffers = _pmem.Recover(_lastQueuedId, out string? gap);
            if (gap is not null)
            {
                warnings.Add(gap);
            }
            byte[] image = buffers.Count == 0 ? [] : new byte[Geometry.SegmentSizeBytes];
            foreach (RecoveredBuffer buffer in buffers)
            {
                long slot = Geometry.SlotOf(buffer.SegmentId);
                Array.Clear(image, 0, Units.BlockBytes);
                for (int i = 0; i < buffer.Slots.Count; i++)
                {
                    (PmemRecord record, byte[] data) = buffer.Slots[i];
                    new MetablockOnDisk(record.Block * Units.SectorsPerBlock, record.DirtyBits).WriteTo(image, i, Geometry.MetablockBytes);
                    data.CopyTo(image.AsSpan((int)Units.BlocksToBytes(1 + i)));
                }
                int length = buffer.Slots.Count;
                new SegmentHeaderOnDisk(buffer.SegmentId, SegmentHeaderOnDisk.ComputeChecksum(image, length), (byte)length).WriteTo(image);
                ReleaseSlotForPmemSegment(slot, buffer.SegmentId);
                string? bad = ApplySegment(image, slot, buffer.SegmentId, length);
                if (bad is not null)
                {
                    warnings.Add($"pmem buffer of segment {buffer.SegmentId}: {bad}; it and later ones are not replayed");
                    break;
                }
                _cache.Write(Geometry.SegmentStartBytes(slot), image.AsSpan(0, (int)CacheGeometry.WrittenBytes(length)));
                _lastQueuedId = _lastFlushedId = _lastDurableId = buffer.SegmentId;
                rebuilt++;
                torn += buffer.TornSlots;
                if (buffer.DamagedSlots > 0)
                {
                    warnings.Add($"pmem buffer of segment {buffer.SegmentId}: {buffer.DamagedSlots} record(s) damaged (an id from the future, or a gap before later records); their writes are lost");
                }
            }
            if (rebuilt > 0)
            {
                _cache.Flush();
            }
        }
        WriteSuperblockFlags(SuperblockHeaderOnDisk.FlagPmemBufferLive);
        Recovery = Recovery with
        {
            PmemFormatted = formatted,
            PmemSegmentsRebuilt = rebuilt,
            PmemTornRecords = torn,
            DirtyBlocksRecovered = _nrDirty,
            Warnings = warnings,
        };
    }

    /// <summary>
    /// A pmem buffer bound to segment X proves the writer took X's slot, which it does only after the segment the
    /// slot held (X - nr_segments) was written back. If the cache replay mapped that older segment (the record
    /// was damaged and inferred low), its entries are clean on the backing store: unmap them before X's data
    /// lands over them in the slot (found by the corruption sweep: reads returned the new segment's data at
    /// the old segment's blocks).
    /// </summary>
    private void ReleaseSlotForPmemSegment(long slot, ulong segmentId)
    {
        UnmapSlotLocked(slot);
        if (segmentId > (ulong)Geometry.NrSegments)
        {
            _lastWritebackId = Math.Max(_lastWritebackId, segmentId - (ulong)Geometry.NrSegments);
        }
    }

    /// <summary>write_around_mode on a cache that holds dirty data: write it all back, then format.</summary>
    private void DrainAndReformat()
    {
        if (_nrDirty > 0)
        {
            StartWorkers();
            DropCaches();
            StopWorkers();
            _stopping = false;
        }
        ulong lastId = _lastQueuedId;
        _index.Clear();
        Array.Fill(_mbBlock, -1);
        Array.Clear(_mbDataBits);
        Array.Clear(_mbDirty);
        Array.Clear(_mbSuperseded);
        Array.Clear(_slotId);
        Array.Clear(_slotLength);
        Format(wasFormatted: true);
        _lastQueuedId = _lastFlushedId = _lastDurableId = _lastWritebackId = 0;
        _nrDirty = 0;
        Recovery = Recovery with { Warnings = [$"write_around_mode: dirty data up to segment {lastId} was written back, then the cache was formatted"] };
    }
}
