using System.Buffers;
using Writeboost.Cache.Format;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Recovery;
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
    /// <summary>Mode 1: records whose CRC failed that no later record vouches for (writes in flight at the crash, as far as pmem shows).</summary>
    public int PmemTornRecords { get; init; }

    /// <summary>Every segment id up to this was shown durable by the media (segment headers, the superblock record, pmem).</summary>
    public ulong ProvenDurableId { get; init; }
    /// <summary>The segments recovery did not simply replay: damage, a crash's torn tail, a loss accepted, a damaged pmem rebuild.</summary>
    public IReadOnlyList<SegmentRecovery> Segments { get; init; } = [];
    /// <summary>Blocks whose newest durable copy is lost: reads of them fail until they are rewritten or clear_poison.</summary>
    public int PoisonedBlocks { get; init; }
    /// <summary>A durable segment's blocks were unknown and the device was opened with the loss accepted.</summary>
    public bool LossAccepted { get; init; }

    public static RecoveryReport None { get; } = new(false, 0, 0, 0, 0, 0, 0, null, []);
}

/// <summary>One segment recovery did not simply replay.</summary>
/// <param name="Kind">"damage" (durable, good blocks replayed, damaged ones poisoned), "crash-tail" (nothing shows it
/// was durable: taken for a crash's torn write and dropped), "lost" (durable, its blocks unknown: given up, the loss
/// accepted), "pmem" (rebuilt from the pmem buffer, some acknowledged records damaged).</param>
public sealed record SegmentRecovery(ulong Id, long Slot, string Kind, int BlocksReplayed, int BlocksPoisoned, string Detail);

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
        for (long slot = 0; slot < Geometry.NrSegments; slot++)
        {
            _cache.Write(Geometry.SegmentStartBytes(slot), zeros.AsSpan(0, Units.BlockBytes));
        }
        _cache.Flush();
        byte[] header = new byte[SuperblockHeaderOnDisk.WriteBytes];
        _superblock = _superblock with { Flags = 0 };
        _superblock.WriteTo(header);
        _cache.Write(0, header, WriteOptions.Fua);
        _recordWrittenId = 0;
        _poison.ForgetAll();
        Recovery = RecoveryReport.None with
        {
            Formatted = true,
            Warnings = wasFormatted ? ["the cache device held a cache; it was reformatted (its contents are gone)"] : [],
        };
    }

    /// <summary>
    /// Rebuilds the index from the logs on the cache device (and in mode 1 the pmem buffers), by the rules of
    /// <see cref="RingWalk"/>, which reads and decides; this applies its decisions:
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
    /// What recovery writes can be interrupted by a crash and recovered the same way again: tombstones and rebuilt
    /// segments say nothing is durable beyond what was shown durable before (their durable id is P), the pmem
    /// buffers are left as they are until their segments are durable, and zeroing only repeats.
    /// </summary>
    private void Recover()
    {
        byte[] recordBlock = new byte[Units.BlockBytes];
        _cache.Read(SuperblockRecordOnDisk.WriteOffsetBytes, recordBlock);
        SuperblockRecordOnDisk.Record stored = SuperblockRecordOnDisk.Read(recordBlock);
        bool ours = _superblock.CacheUuid != Guid.Empty;
        PmemRecovery? fromPmem = null;
        bool pmemFormatted = false;
        if (_pmemRegion is not null)
        {
            PmemLayout layout = new(Geometry.SegmentSizeOrder, _buffers.Length, BlocksPerSegment);
            _pmem = PmemBufferPool.Open(_pmemRegion, layout, CacheUuid, _options.Reformat, out pmemFormatted);
            _pmem.Faults = Faults;
            fromPmem = pmemFormatted ? null : _pmem.Recover(0);
        }
        RingWalkResult walk = Faults.WalkRing(new RingWalk.Input(_cache, Geometry, stored, ours, Units.BytesToSectors(SizeBytes), fromPmem, _options.AcceptDataLoss, Faults));
        if (walk.Refusal is not null)
        {
            throw new InvalidDataException(
                $"cache device {_cache.Name}: {walk.Refusal}. Refusing to open it: wb check {_cache.Name} shows the damage; open it with --accept-loss to give that segment up (its blocks then read their older data) and keep the rest");
        }
        _recordWrittenId = walk.RecordId;
        List<string> warnings = [.. walk.Warnings];
        List<SegmentRecovery> report = [];
        byte[] image = new byte[Geometry.SegmentSizeBytes];
        bool wrote = false;
        int replayed = 0;
        int discarded = 0;
        int rebuilt = 0;
        ulong firstReplayed = 0;
        ulong lastReplayed = 0;
        string? stopReason = null;
        foreach (WalkedSegment segment in walk.Segments)
        {
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
                    RebuildFromPmem(segment, fromPmem!.Buffers.First(b => b.SegmentId == segment.Id), walk.ProvenDurableId, image);
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
                    WriteTombstone(segment.Id, walk.ProvenDurableId, image);
                    wrote = true;
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
            _cache.Write(Geometry.SegmentStartBytes(slot), zeros);
            wrote = true;
        }
        if (wrote && Faults.RecoveryFlushesWhatItWrote)
        {
            _cache.Flush();
        }
        int tail = walk.Segments.Count(s => s.Fate is SegmentFate.Discarded or SegmentFate.CrashTail);
        if (tail > 0)
        {
            warnings.Add($"{tail} segment(s) after the superblock record were dropped as a crash's torn tail: nothing on the media shows they were durable (every segment up to {walk.ProvenDurableId} was, and is kept){(walk.SlotsToZero.Count > 0 ? $"; {walk.SlotsToZero.Count} header(s) beyond segment {walk.LastKeptId} zeroed" : "")}");
        }
        ulong resumeAfter = Math.Max(walk.LastKeptId, walk.RecordId);
        _ring.ResumeAfter(resumeAfter, walk.RecordId);
        Recovery = new RecoveryReport(false, walk.RecordId, firstReplayed, lastReplayed, replayed, discarded, _cacheIndex.DirtyCount, stopReason, warnings)
        {
            ProvenDurableId = walk.ProvenDurableId,
            Segments = report,
            PoisonedBlocks = _poison.BlockCount,
            LossAccepted = walk.Segments.Any(s => s.LossAccepted),
            PmemSegmentsRebuilt = rebuilt,
            PmemTornRecords = fromPmem?.Buffers.Where(b => b.SegmentId > walk.RecordId).Sum(b => b.TornSlots) ?? 0,
        };
        if (fromPmem is not null)
        {
            foreach (RecoveredBuffer buffer in fromPmem.Buffers.Where(b => b.SegmentId > walk.RecordId && b.DamagedSlots > 0))
            {
                warnings.Add($"pmem buffer of segment {buffer.SegmentId}: {buffer.DamagedSlots} record(s) damaged (an id no crash writes) that no later record shows were durable; if they were acknowledged, their writes are lost");
            }
        }
        FinishPmemOpen(pmemFormatted);
    }

    private string DescribeEnd(ulong id)
    {
        byte[] header = new byte[Math.Max(SegmentHeaderOnDisk.SizeBytes, _cache.SectorSizeBytes)];
        long slot = Geometry.SlotOf(id);
        _cache.Read(Geometry.SegmentStartBytes(slot), header);
        ulong held = SegmentHeaderOnDisk.Read(header).Id;
        return held == 0 ? $"slot {slot} is empty" : $"slot {slot} holds segment {held}";
    }

    /// <summary>Applies a walked segment's entries (replayed, damaged or rebuilt): maps the good ones, poisons the lost ones.</summary>
    private void ApplyWalked(WalkedSegment segment)
    {
        long slot = segment.Slot;
        _ring.Bind(slot, segment.Id, segment.Length);
        foreach (WalkedEntry entry in segment.Entries)
        {
            if (_cacheIndex.TryFind(entry.Block, out int older))
            {
                // A newer copy, good or lost, replaces the older one (which holds no sector the newer does not).
                Unmap(older);
            }
            int g = Global(slot, entry.Index);
            if (entry.Lost)
            {
                _poison.Poison(entry.Block, entry.Bits, g, segment.Id);
                continue;
            }
            _cacheIndex.Place(g, entry.Block, entry.Bits, dirty: true);
            if (!_poison.IsEmpty)
            {
                _poison.Clear(entry.Block, entry.Bits, segment.Id);
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
        long start = Geometry.SegmentStartBytes(segment.Slot);
        _cache.Read(start, metadata);
        (HeaderExtensionState _, SegmentHeaderExtension extension) = SegmentHeaderExtension.Read(metadata);
        (extension with
        {
            Flags = (byte)(extension.Flags | SegmentHeaderExtension.FlagLossAccepted),
            MetablocksChecksum = SegmentHeaderExtension.ComputeMetablocksChecksum(metadata, segment.Length, Geometry.MetablockBytes),
        }).WriteTo(metadata);
        _cache.Write(start, metadata);
    }

    /// <summary>
    /// Writes an empty segment with id <paramref name="id"/> in its slot: a crash's torn segment (or a durable one
    /// whose loss was accepted) is given up, and the ids stay contiguous, so the intact segments after it are
    /// replayed now and at every later recovery. It vouches only for what was shown durable already.
    /// </summary>
    private void WriteTombstone(ulong id, ulong durableId, byte[] image)
    {
        long slot = Geometry.SlotOf(id);
        Array.Clear(image, 0, Units.BlockBytes);
        SegmentImage.Finish(image, id, 0, Geometry.MetablockBytes, SegmentHeaderExtension.FlagTombstone, durableId: durableId);
        ReleaseSlotForRecoveredSegment(slot, id);
        _cache.Write(Geometry.SegmentStartBytes(slot), image.AsSpan(0, Units.BlockBytes));
        _ring.Bind(slot, id, 0);
    }

    /// <summary>
    /// Mode 1: rebuilds segment <paramref name="segment"/> from its pmem buffer's records (densely, in slot order;
    /// an acknowledged record whose data is lost keeps its entry, with no data and its bit set in the header's lost
    /// bitmap, so the poison outlives the pmem buffer), writes it to its slot and applies it.
    /// </summary>
    private void RebuildFromPmem(WalkedSegment segment, RecoveredBuffer buffer, ulong durableId, byte[] image)
    {
        long slot = segment.Slot;
        Array.Clear(image, 0, Units.BlockBytes);
        byte[]? lost = null;
        for (int i = 0; i < buffer.Slots.Count; i++)
        {
            RecoveredSlot recovered = buffer.Slots[i];
            new MetablockOnDisk(recovered.Record.Block * Units.SectorsPerBlock, recovered.Record.DirtyBits).WriteTo(image, i, Geometry.MetablockBytes);
            Span<byte> data = image.AsSpan((int)Units.BlocksToBytes(1 + i), Units.BlockBytes);
            if (recovered.Data is { } bytes)
            {
                bytes.CopyTo(data);
            }
            else
            {
                data.Clear();
                lost ??= new byte[SegmentHeaderExtension.LostBitmapBytes];
                lost[i >> 3] |= (byte)(1 << (i & 7));
            }
        }
        int length = buffer.Slots.Count;
        SegmentImage.Finish(image, buffer.SegmentId, length, Geometry.MetablockBytes, SegmentHeaderExtension.FlagRebuiltFromPmem, lost, durableId);
        ReleaseSlotForRecoveredSegment(slot, buffer.SegmentId);
        _cache.Write(Geometry.SegmentStartBytes(slot), image.AsSpan(0, (int)CacheGeometry.WrittenBytes(length)));
        ApplyWalked(segment);
    }

    /// <summary>Mode 1, last step of an open: sector 0 says the pmem buffer is live (mode 0 refuses the cache until a clean mode-1 close).</summary>
    private void FinishPmemOpen(bool pmemFormatted)
    {
        if (_pmem is null)
        {
            return;
        }
        WriteSuperblockFlags(SuperblockHeaderOnDisk.FlagPmemBufferLive);
        Recovery = Recovery with { PmemFormatted = pmemFormatted, DirtyBlocksRecovered = _cacheIndex.DirtyCount };
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
    /// Recovery writes segment X into its slot (rebuilt from pmem, or a tombstone). A pmem buffer bound to X proves
    /// the writer took X's slot, which it does only after the segment the slot held (X - nr_segments) was written
    /// back. If the cache replay mapped that older segment (the record was damaged and inferred low), its entries
    /// are clean on the backing store: unmap them before X's data lands over them in the slot (found by the
    /// corruption sweep: reads returned the new segment's data at the old segment's blocks).
    /// </summary>
    private void ReleaseSlotForRecoveredSegment(long slot, ulong segmentId)
    {
        UnmapSlotLocked(slot);
        if (segmentId > (ulong)Geometry.NrSegments)
        {
            _ring.RaiseWrittenBack(segmentId - (ulong)Geometry.NrSegments);
        }
    }

    /// <summary>write_around_mode on a cache that holds dirty data: write it all back, then format.</summary>
    private void DrainAndReformat()
    {
        if (!_poison.IsEmpty)
        {
            throw new InvalidDataException(
                $"write_around_mode: {_poison.BlockCount} block(s) of {_cache.Name} are poisoned (their newest durable copy is lost to damaged media); formatting for write-around would make them read older data silently. Rewrite them or send clear_poison in write-back mode first");
        }
        if (_cacheIndex.DirtyCount > 0)
        {
            StartWorkers();
            DropCaches();
            StopWorkers();
            _stopping = false;
        }
        ulong lastId = _ring.QueuedId;
        _cacheIndex.Reset();
        _ring.Clear();
        Format(wasFormatted: true);
        Recovery = Recovery with { Warnings = [$"write_around_mode: dirty data up to segment {lastId} was written back, then the cache was formatted"] };
    }
}
