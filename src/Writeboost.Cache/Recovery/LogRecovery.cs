using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Index;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Ring;
using Writeboost.Devices;

namespace Writeboost.Cache.Recovery;

/// <summary>
/// Recovery's writing half: applies what <see cref="RingWalk"/> decided to the device's state and media. It
/// rebuilds the cache index, the ring and the poison set from the logs on the cache device (and in mode 1 the
/// pmem buffers):
/// <list type="number">
/// <item>in id order, each replayed segment's dirty entries map their blocks (a newer entry replaces an older
/// one: the writer merged any older dirty sectors into the newer copy; clean, read-cached entries are not
/// trusted across a restart); a damaged segment's lost entries poison their sectors instead;</item>
/// <item>mode 1: a segment rebuilt from pmem is written to its slot (its lost records marked in the header) and
/// applied like a replayed one;</item>
/// <item>a crash's torn segment before a kept one, and a durable one given up with the loss accepted, become
/// tombstones: empty segments with the same id, so the ids stay contiguous;</item>
/// <item>the headers of the crash's tail (after the last kept id) are zeroed, so no discarded segment can be
/// replayed after the segments written from now on (which reuse those ids); then one flush.</item>
/// </list>
/// What it writes can be interrupted by a crash and recovered the same way again: tombstones and rebuilt
/// segments say nothing is durable beyond what was shown durable before (their durable id is P), the pmem
/// buffers are left as they are until their segments are durable, and zeroing only repeats.
/// Runs before the device is shared (no worker runs yet).
/// </summary>
internal sealed class LogRecovery(IBlockDevice cache, CacheGeometry geometry, SegmentRing ring, CacheIndex index, PoisonSet poison, FaultHooks faults)
{
    /// <summary>Applies <paramref name="walk"/> (not refused); returns what recovery found and did.</summary>
    public RecoveryReport Apply(RingWalkResult walk, PmemRecovery? fromPmem)
    {
        List<string> warnings = [.. walk.Warnings];
        List<SegmentRecovery> report = [];
        byte[]? tombstone = null; // a tombstone is a header block; a rebuilt segment is its pmem buffer's own image
        bool wrote = false;
        int replayed = 0;
        int discarded = 0;
        int rebuilt = 0;
        ulong firstReplayed = 0;
        ulong lastReplayed = 0;
        string? stopReason = null;
        SegmentFate? previousFate = null;
        foreach (WalkedSegment segment in walk.Segments)
        {
            SegmentFate? before = previousFate;
            previousFate = segment.Fate;
            switch (segment.Fate)
            {
                case SegmentFate.Replayed:
                case SegmentFate.Damaged:
                    if (segment.Fate == SegmentFate.Damaged && segment.LossAccepted)
                    {
                        AcceptLossInPlace(segment);
                        wrote = true;
                    }
                    ApplyWalked(segment);
                    replayed++;
                    firstReplayed = firstReplayed == 0 ? segment.Id : firstReplayed;
                    lastReplayed = segment.Id;
                    if (segment.Fate == SegmentFate.Damaged)
                    {
                        report.Add(new SegmentRecovery(segment.Id, segment.Slot, segment.LossAccepted ? "lost" : "damage", segment.BlocksReplayed, segment.BlocksPoisoned,
                            segment.LossAccepted ? $"{segment.Problem}; the loss was accepted (--accept-loss): the header now says so" : segment.Problem!));
                    }
                    else if (segment.BlocksPoisoned > 0)
                    {
                        report.Add(new SegmentRecovery(segment.Id, segment.Slot, "damage", segment.BlocksReplayed, segment.BlocksPoisoned, "rebuilt earlier without the data of some acknowledged writes (lost in pmem)"));
                    }
                    break;
                case SegmentFate.FromPmem:
                    RebuildFromPmem(segment, fromPmem!.Buffers.First(b => b.SegmentId == segment.Id), walk.ProvenDurableId);
                    wrote = true;
                    rebuilt++;
                    if (segment.Problem is not null)
                    {
                        report.Add(new SegmentRecovery(segment.Id, segment.Slot, segment.LossAccepted ? "lost" : "pmem", segment.BlocksReplayed, segment.BlocksPoisoned,
                            segment.LossAccepted ? $"{segment.Problem}; the loss was accepted (--accept-loss): those records are given up" : segment.Problem));
                    }
                    break;
                case SegmentFate.CrashTail:
                case SegmentFate.LostAccepted:
                    if (faults.TombstonesEveryDroppedSegment || before != SegmentFate.CrashTail)
                    {
                        WriteTombstone(segment.Id, walk.ProvenDurableId, tombstone ??= new byte[Units.BlockBytes]);
                        wrote = true;
                    }
                    discarded += segment.Fate == SegmentFate.CrashTail ? 1 : 0;
                    report.Add(segment.Fate == SegmentFate.CrashTail
                        ? new SegmentRecovery(segment.Id, segment.Slot, "crash-tail", 0, 0, $"{segment.Problem}: taken for a crash's torn write and dropped (an empty segment keeps its id; later segments are replayed)")
                        : new SegmentRecovery(segment.Id, segment.Slot, "lost", 0, 0, $"{segment.Problem}; the loss was accepted (--accept-loss): an empty segment takes its place"));
                    break;
                case SegmentFate.Discarded:
                    discarded++;
                    stopReason ??= $"segment {segment.Id}: {segment.Problem}";
                    report.Add(new SegmentRecovery(segment.Id, segment.Slot, "crash-tail", 0, 0, $"{segment.Problem}: the tail a crash leaves (written after the last completed cache flush, as far as the media show); discarded"));
                    break;
            }
        }
        stopReason ??= $"segment {walk.LastKeptId + 1}: {DescribeEnd(walk.LastKeptId + 1)}";
        byte[] zeros = new byte[Units.BlockBytes];
        foreach (long slot in walk.SlotsToZero)
        {
            cache.Write(geometry.SegmentStartBytes(slot), zeros);
            wrote = true;
        }
        if (wrote && faults.RecoveryFlushesWhatItWrote)
        {
            cache.Flush();
        }
        int tail = walk.Segments.Count(s => s.Fate is SegmentFate.Discarded or SegmentFate.CrashTail);
        if (tail > 0)
        {
            warnings.Add($"{tail} segment(s) after the superblock record were dropped as a crash's torn tail: nothing on the media shows they were durable (every segment up to {walk.ProvenDurableId} was, and is kept){(walk.SlotsToZero.Count > 0 ? $"; {walk.SlotsToZero.Count} header(s) beyond segment {walk.LastKeptId} zeroed" : "")}");
        }
        ring.ResumeAfter(Math.Max(walk.LastKeptId, walk.RecordId), walk.RecordId);
        if (fromPmem is not null)
        {
            foreach (RecoveredBuffer buffer in fromPmem.Buffers.Where(b => b.SegmentId > walk.RecordId && b.DamagedSlots > 0))
            {
                warnings.Add($"pmem buffer of segment {buffer.SegmentId}: {buffer.DamagedSlots} record(s) damaged (an id no crash writes) that no later record shows were durable; if they were acknowledged, their writes are lost");
            }
        }
        return new RecoveryReport(false, walk.RecordId, firstReplayed, lastReplayed, replayed, discarded, index.DirtyCount, stopReason, warnings)
        {
            ProvenDurableId = walk.ProvenDurableId,
            Segments = report,
            PoisonedBlocks = poison.BlockCount,
            LossAccepted = walk.Segments.Any(s => s.LossAccepted),
            PmemSegmentsRebuilt = rebuilt,
            PmemTornRecords = fromPmem?.Buffers.Where(b => b.SegmentId > walk.RecordId).Sum(b => b.TornSlots) ?? 0,
        };
    }

    private string DescribeEnd(ulong id)
    {
        byte[] header = new byte[Math.Max(SegmentHeaderOnDisk.SizeBytes, cache.SectorSizeBytes)];
        long slot = geometry.SlotOf(id);
        cache.Read(geometry.SegmentStartBytes(slot), header);
        ulong held = SegmentHeaderOnDisk.Read(header).Id;
        return held == 0 ? $"slot {slot} is empty" : $"slot {slot} holds segment {held}";
    }

    /// <summary>Applies a walked segment's entries (replayed, damaged or rebuilt): maps the good ones, poisons the lost ones.</summary>
    private void ApplyWalked(WalkedSegment segment)
    {
        long slot = segment.Slot;
        ring.Bind(slot, segment.Id, segment.Length);
        foreach (WalkedEntry entry in segment.Entries)
        {
            if (index.TryFind(entry.Block, out int older))
            {
                // A newer copy, good or lost, replaces the older one (which holds no sector the newer does not).
                index.Unmap(older);
            }
            int g = index.GlobalOf(slot, entry.Index);
            if (entry.Lost)
            {
                poison.Poison(entry.Block, entry.Bits, g, segment.Id);
                continue;
            }
            index.Place(g, entry.Block, entry.Bits, dirty: true);
            if (!poison.IsEmpty)
            {
                poison.Clear(entry.Block, entry.Bits, segment.Id);
            }
        }
    }

    /// <summary>
    /// A durable segment some of whose entries fail their checksum, opened with the loss accepted: its header
    /// (one sector, written whole or not at all) is rewritten with <see cref="SegmentHeaderExtension.FlagLossAccepted"/>
    /// and a metablocks crc over the entries as they are, so later opens replay the intact entries without the flag.
    /// </summary>
    private void AcceptLossInPlace(WalkedSegment segment)
    {
        byte[] metadata = new byte[Units.BlockBytes];
        long start = geometry.SegmentStartBytes(segment.Slot);
        cache.Read(start, metadata);
        (HeaderExtensionState _, SegmentHeaderExtension extension) = SegmentHeaderExtension.Read(metadata);
        (extension with
        {
            Flags = (byte)(extension.Flags | SegmentHeaderExtension.FlagLossAccepted),
            MetablocksChecksum = SegmentHeaderExtension.ComputeMetablocksChecksum(metadata, segment.Length, geometry.MetablockBytes),
        }).WriteTo(metadata);
        cache.Write(start, metadata);
    }

    /// <summary>
    /// Writes an empty segment with id <paramref name="id"/> in its slot: a crash's torn segment (or a durable one
    /// whose loss was accepted) is given up, and the ids stay contiguous, so the intact segments after it are
    /// replayed now and at every later recovery. It vouches only for what was shown durable already.
    /// </summary>
    private void WriteTombstone(ulong id, ulong durableId, byte[] block)
    {
        long slot = geometry.SlotOf(id);
        Array.Clear(block);
        SegmentImage.Finish(block, id, 0, geometry.MetablockBytes, SegmentHeaderExtension.FlagTombstone, durableId: durableId);
        ReleaseSlotForRecoveredSegment(slot, id);
        cache.Write(geometry.SegmentStartBytes(slot), block);
        ring.Bind(slot, id, 0);
    }

    /// <summary>
    /// Mode 1: rebuilds segment <paramref name="segment"/> from its pmem buffer's records (densely, in slot order;
    /// an acknowledged record whose data is lost keeps its entry, with no data and its bit set in the header's lost
    /// bitmap, so the poison outlives the pmem buffer), writes it to its slot and applies it.
    /// </summary>
    private void RebuildFromPmem(WalkedSegment segment, RecoveredBuffer buffer, ulong durableId)
    {
        long slot = segment.Slot;
        byte[] image = buffer.Image; // the slots' data already in place, as the records' checks read it
        Array.Clear(image, 0, Units.BlockBytes);
        byte[]? lost = null;
        for (int i = 0; i < buffer.Slots.Count; i++)
        {
            RecoveredSlot recovered = buffer.Slots[i];
            new MetablockOnDisk(recovered.Record.Block * Units.SectorsPerBlock, recovered.Record.DirtyBits).WriteTo(image, i, geometry.MetablockBytes);
            if (recovered.Lost)
            {
                image.AsSpan((int)Units.BlocksToBytes(1 + i), Units.BlockBytes).Clear();
                lost ??= new byte[SegmentHeaderExtension.LostBitmapBytes];
                lost[i >> 3] |= (byte)(1 << (i & 7));
            }
        }
        int length = buffer.Slots.Count;
        SegmentImage.Finish(image, buffer.SegmentId, length, geometry.MetablockBytes, SegmentHeaderExtension.FlagRebuiltFromPmem, lost, durableId,
            knownDataCrc: i => buffer.Slots[i].Lost ? null : buffer.Slots[i].DataCrc); // checked once already, by the record

        ReleaseSlotForRecoveredSegment(slot, buffer.SegmentId);
        cache.Write(geometry.SegmentStartBytes(slot), image.AsSpan(0, (int)CacheGeometry.WrittenBytes(length)));
        ApplyWalked(segment);
    }

    /// <summary>
    /// Recovery writes segment X into its slot (rebuilt from pmem, or a tombstone). A pmem buffer bound to X proves
    /// the writer took X's slot, which it does only after the segment the slot held (X - nr_segments) was written
    /// back. If the cache replay mapped that older segment (the record was damaged and inferred low), its entries
    /// are clean on the backing store: unmap them before X's data lands over them in the slot (found by the
    /// corruption sweep: reads returned the new segment's data at the old segment's blocks).
    /// </summary>
    private void ReleaseSlotForRecoveredSegment(long slot, ulong segmentId)
    {
        index.UnmapSlot(slot);
        poison.ForgetSlot(slot, geometry.BlocksPerSegment);
        if (segmentId > (ulong)geometry.NrSegments)
        {
            ring.RaiseWrittenBack(segmentId - (ulong)geometry.NrSegments);
        }
    }
}
