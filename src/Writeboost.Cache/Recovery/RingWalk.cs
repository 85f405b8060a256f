using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Devices;

namespace Writeboost.Cache.Recovery;

/// <summary>What recovery does with one segment id after the superblock record.</summary>
public enum SegmentFate
{
    /// <summary>Intact in its slot: replayed.</summary>
    Replayed,
    /// <summary>Durable, its checksum fails, its block list is intact: its good blocks are replayed, its damaged ones poisoned.</summary>
    Damaged,
    /// <summary>Mode 1: rebuilt from its pmem buffer (the cache device has no intact copy).</summary>
    FromPmem,
    /// <summary>
    /// Not shown durable by anything on the media, and not intact: what a crash leaves of a write that was never
    /// made durable. Later segments are intact, so an empty segment (a tombstone) takes its place and the ids stay contiguous.
    /// </summary>
    CrashTail,
    /// <summary>Like <see cref="CrashTail"/>, after the last segment kept: its header is zeroed and the id reused.</summary>
    Discarded,
    /// <summary>Durable, but its block list is lost (header or metablocks damaged, or missing); opened only with the loss accepted: a tombstone takes its place.</summary>
    LostAccepted,
}

/// <summary>A dirty entry of a walked segment: index in the segment, backing block, dirty sectors; lost: its data is gone (poison those sectors).</summary>
public readonly record struct WalkedEntry(int Index, long Block, byte Bits, bool Lost);

/// <summary>One segment id of the walk.</summary>
/// <param name="Durable">Something on the media shows the segment was durable (see <see cref="RingWalkResult.ProvenDurableId"/>).</param>
/// <param name="Problem">What is wrong with it (null when replayed intact).</param>
public sealed record WalkedSegment(ulong Id, long Slot, SegmentFate Fate, bool Durable, string? Problem)
{
    /// <summary>Entries to apply, in slot order (Replayed, Damaged, FromPmem).</summary>
    public IReadOnlyList<WalkedEntry> Entries { get; init; } = [];
    /// <summary>The segment's length as written (FromPmem: as rebuilt).</summary>
    public int Length { get; init; }
    /// <summary>Some of its blocks are unknown and lost; the walk went on because the loss was accepted.</summary>
    public bool LossAccepted { get; init; }
    public int BlocksReplayed => Entries.Count(e => !e.Lost);
    public int BlocksPoisoned => Entries.Count(e => e.Lost);
}

/// <summary>What the walk found and what recovery is to do.</summary>
public sealed record RingWalkResult
{
    /// <summary>The last written-back segment, from the superblock record (or inferred from the ring).</summary>
    public ulong RecordId { get; init; }
    public string? RecordWarning { get; init; }
    /// <summary>Every segment id up to this was durable on the cache device: a checksum failure there is damage, not a crash.</summary>
    public ulong ProvenDurableId { get; init; }
    /// <summary>What shows it (for messages).</summary>
    public string? ProofSource { get; init; }
    /// <summary>Every id from the record + 1 to the end of the walk.</summary>
    public IReadOnlyList<WalkedSegment> Segments { get; init; } = [];
    /// <summary>Writing resumes after this id; everything up to it is replayed, poisoned, or a tombstone.</summary>
    public ulong LastKeptId { get; init; }
    /// <summary>Slots whose (intact) header names a discarded id: zeroed, so the id can be reused.</summary>
    public IReadOnlyList<long> SlotsToZero { get; init; } = [];
    public IReadOnlyList<string> Warnings { get; init; } = [];
    /// <summary>Set when a durable segment's blocks are unknown and the loss was not accepted: recovery must refuse.</summary>
    public string? Refusal { get; init; }
    /// <summary>Intact segments the walk does not replay (a refused walk), by id.</summary>
    public IReadOnlyList<ulong> UnreachableIds { get; init; } = [];
}

/// <summary>
/// Recovery's walk of the ring, shared by recovery (<see cref="LogRecovery"/> applies it) and <c>wb check</c> (which reports it),
/// so the two always agree. It only reads.
/// <list type="number">
/// <item>Read every slot's header sector. A header is authentic when its id belongs in its slot, its length fits,
/// and its extension (if it has one) passes its checksum; a damaged extension is damage — a crash writes a sector
/// whole or not at all.</item>
/// <item>R = the superblock record (inferred from the ring when damaged). P = the highest id shown durable: the
/// durable ids the authentic headers and the record carry (each says what a completed cache flush covered when it
/// was written), and in mode 1 a pmem buffer holding segment X (rebound only once X - pool was durable).</item>
/// <item>Walk every id R+1 .. max(P, newest authentic id, newest pmem segment). An intact segment (exact id in its
/// slot, good checksum, replayable metablocks) is replayed. One that is not: in mode 1, rebuilt from its pmem
/// buffer if it has one; else, if its id ≤ P, it is damage — its good blocks are replayed and its damaged ones
/// poisoned when its block list checks out (the header's metablocks crc; each wide entry's own checksum tells which
/// blocks; order 11 has none, so all of them), and when its block list is lost the device refuses unless the loss is
/// accepted; else, nothing shows it was ever durable: it is taken for a crash's torn write and dropped.</item>
/// <item>Dropped ids before a kept one become tombstones (empty segments, durable), so the ids stay contiguous and
/// nothing intact after them is lost; dropped ids after the last kept one are the crash's tail: their headers are
/// zeroed and writing resumes there. Nothing else is written: intact segments are never zeroed.</item>
/// </list>
/// </summary>
internal static class RingWalk
{
    internal sealed record Input(
        IBlockDevice Cache,
        CacheGeometry Geometry,
        SuperblockRecordOnDisk.Record StoredRecord,
        bool Ours,
        long BackingSectors,
        PmemRecovery? Pmem,
        bool AcceptLoss,
        FaultHooks Faults)
    {
        /// <summary>The data CRCs an earlier walk on this thread kept (null: read every segment's data).</summary>
        public SegmentChecksumMemo? Checksums { get; init; }
    }

    /// <summary>A slot's header sector, parsed.</summary>
    /// <param name="ZeroSector">The header sector is all zeros (never written, or zeroed).</param>
    internal readonly record struct SlotHeader(ulong Id, uint Checksum, byte Length, HeaderExtensionState ExtensionState, SegmentHeaderExtension Extension, bool Authentic, bool ZeroSector = false);

    public static RingWalkResult Run(Input input)
    {
        SegmentChecksumMemo? checksums = input.Checksums is { } memo && memo.TryTake() ? memo : null;
        try
        {
            return Walk(input, checksums);
        }
        finally
        {
            checksums?.Give();
        }
    }

    private static RingWalkResult Walk(Input input, SegmentChecksumMemo? checksums)
    {
        CacheGeometry geometry = input.Geometry;
        SlotHeader[] headers = ReadHeaders(input.Cache, geometry);
        List<string> warnings = [];
        ulong[] authenticIds = headers.Select(h => h.Authentic ? h.Id : 0).ToArray();
        ulong record = SuperblockRecordOnDisk.Infer(input.StoredRecord, authenticIds, geometry, input.Ours, out string? recordWarning);
        if (recordWarning is not null)
        {
            warnings.Add(recordWarning);
        }
        if (input.Pmem is { } pmemWarnings)
        {
            warnings.AddRange(pmemWarnings.Warnings);
        }

        // P: what the media show was durable.
        ulong proven = 0;
        string? proof = null;
        void Prove(ulong id, string source)
        {
            if (id > proven)
            {
                proven = id;
                proof = source;
            }
        }
        if (input.Ours)
        {
            Prove(input.StoredRecord.DurableId, "the superblock record");
        }
        for (long slot = 0; slot < geometry.NrSegments; slot++)
        {
            SlotHeader h = headers[slot];
            if (h.Authentic && h.ExtensionState == HeaderExtensionState.Intact)
            {
                Prove(Math.Min(h.Extension.DurableId, h.Id - 1), $"segment {h.Id}'s header");
            }
        }
        if (input.Pmem is { } pmemProof)
        {
            Prove(pmemProof.ProvenDurableId, "a pmem buffer bound to a later segment");
        }

        ulong newest = authenticIds.Where(id => id > record).DefaultIfEmpty(record).Max();
        ulong newestPmem = input.Pmem?.Buffers.Select(b => b.SegmentId).DefaultIfEmpty(0ul).Max() ?? 0;
        ulong lap = (ulong)geometry.NrSegments;
        ulong onCache = Math.Max(newest, proven);
        if (onCache > record + lap)
        {
            // The writer puts segment X in its slot only once the record covers X - nr_segments: nothing on the cache
            // device is more than a lap after R. (Pmem buffers may be ahead of it by up to the pool size.)
            warnings.Add($"segment ids up to {onCache} are claimed on the cache device, more than a lap ({lap}) past the last written-back segment {record}: only up to {record + lap} are walked");
            onCache = record + lap;
        }
        ulong end = Math.Max(onCache, newestPmem);

        List<WalkedSegment> walked = [];
        string? refusal = null;
        bool stopped = false;
        using SegmentScratch scratch = new((int)geometry.SegmentSizeBytes);
        byte[] segment = scratch.Bytes;
        for (ulong id = record + 1; id <= end; id++)
        {
            long slot = geometry.SlotOf(id);
            SlotHeader h = headers[slot];
            bool durable = id <= proven;
            RecoveredBuffer? inPmem = input.Pmem?.Buffers.FirstOrDefault(b => b.SegmentId == id);
            if (stopped)
            {
                walked.Add(new WalkedSegment(id, slot, SegmentFate.CrashTail, durable, "after the walk stopped"));
                continue;
            }
            WalkedSegment? result = null;
            string? unknownLoss = null;
            if (h.Authentic && h.Id == id)
            {
                SegmentSlotRead read = SegmentLogReader.Read(input.Cache, geometry, slot, segment, checksums);
                bool checksumHolds = input.Faults.SegmentChecksumHolds(read.ChecksumHolds);
                if (!checksumHolds && read.DataSkipped)
                {
                    read = SegmentLogReader.Read(input.Cache, geometry, slot, segment); // what follows reads the data
                    checksumHolds = input.Faults.SegmentChecksumHolds(read.ChecksumHolds);
                }
                string? entryProblem = EntryProblem(segment, h.Length, geometry, input.BackingSectors);
                if (checksumHolds && entryProblem is null)
                {
                    result = new WalkedSegment(id, slot, SegmentFate.Replayed, durable, null)
                    {
                        Entries = Entries(segment, h, geometry, damagedEntry: _ => false),
                        Length = h.Length,
                    };
                }
                else if (inPmem is not null)
                {
                    result = FromPmem(inPmem, slot, durable, entryProblem ?? "checksum mismatch");
                }
                else if (!input.Faults.WalkGoesPastDamage)
                {
                    stopped = true;
                    result = new WalkedSegment(id, slot, SegmentFate.CrashTail, durable, "checksum mismatch (the walk stops here, as the kernel's does)");
                }
                else if (input.Faults.FailedChecksumIsDamage(durable))
                {
                    (result, unknownLoss) = Damaged(segment, h, id, slot, durable, entryProblem, geometry, input);
                }
                else
                {
                    result = new WalkedSegment(id, slot, SegmentFate.CrashTail, false, $"checksum mismatch, and nothing on the media shows it was durable (the highest id shown durable is {proven})");
                }
            }
            else if (inPmem is not null)
            {
                result = FromPmem(inPmem, slot, durable, DescribeSlot(h, id, slot));
            }
            else if (!input.Faults.WalkGoesPastDamage)
            {
                stopped = true;
                result = new WalkedSegment(id, slot, SegmentFate.CrashTail, durable, DescribeSlot(h, id, slot));
            }
            else if (durable && (h.ExtensionState == HeaderExtensionState.Damaged || h.ZeroSector) && geometry.MetablockBytes == MetablockOnDisk.WideSizeBytes)
            {
                // Its header is damaged (or zeroed), but the rest of the slot is this durable segment's write: each
                // entry vouches for itself (sector, dirty bits and data under its own checksum).
                input.Cache.Read(geometry.SegmentStartBytes(slot), segment);
                List<WalkedEntry>? salvaged = Salvage(segment, geometry, input.BackingSectors, out int length);
                if (salvaged is not null)
                {
                    result = new WalkedSegment(id, slot, SegmentFate.Damaged, durable,
                        $"{DescribeSlot(h, id, slot)}, but its {length} entries each pass their own checksum and the rest are blank: replayed from them")
                    {
                        Entries = salvaged,
                        Length = length,
                    };
                }
                else
                {
                    unknownLoss = $"{DescribeSlot(h, id, slot)} and its entries cannot all be verified without it";
                }
            }
            else if (durable)
            {
                unknownLoss = DescribeSlot(h, id, slot);
            }
            else
            {
                result = new WalkedSegment(id, slot, SegmentFate.CrashTail, false, $"{DescribeSlot(h, id, slot)}, and nothing on the media shows it was durable");
            }

            if (result?.Fate == SegmentFate.FromPmem && inPmem!.LostUnknownSlots > 0)
            {
                unknownLoss = $"its pmem buffer has {inPmem.LostUnknownSlots} acknowledged record(s) whose fields are damaged too (their blocks are unknown)";
            }
            if (unknownLoss is not null)
            {
                // Durable by what the media show, or (a segment rebuilt from pmem) by its buffer's own records.
                string why = durable && proof is not null ? $"{proof} shows every segment up to {proven} was" : "in its pmem buffer: its records vouch for acknowledged writes";
                string message = $"segment {id} (slot {slot}) was durable ({why}) but {unknownLoss}: the blocks it held are unknown, so their older data cannot be told from their lost data";
                if (!input.AcceptLoss)
                {
                    refusal ??= message;
                }
                result = result?.Fate is SegmentFate.FromPmem or SegmentFate.Damaged
                    ? result with { Problem = message, LossAccepted = true }
                    : new WalkedSegment(id, slot, SegmentFate.LostAccepted, durable, message) { LossAccepted = true };
            }
            walked.Add(result!);
        }

        // The crash's tail: the dropped ids after the last kept one.
        int lastKept = walked.FindLastIndex(s => s.Fate != SegmentFate.CrashTail);
        for (int i = lastKept + 1; i < walked.Count; i++)
        {
            walked[i] = walked[i] with { Fate = SegmentFate.Discarded };
        }
        ulong lastKeptId = lastKept >= 0 ? walked[lastKept].Id : record;
        List<long> zero = [];
        for (long slot = 0; slot < geometry.NrSegments; slot++)
        {
            SlotHeader h = headers[slot];
            bool stale = input.Faults.WalkGoesPastDamage ? h.Authentic && h.Id > lastKeptId : h.Id > lastKeptId && h.Id != 0;
            if (stale)
            {
                zero.Add(slot);
            }
        }
        ReportOddHeaders(headers, geometry, walked, warnings);
        List<ulong> unreachable = refusal is null ? [] : walked.Where(s => s.Fate == SegmentFate.Replayed).Select(s => s.Id).ToList();
        return new RingWalkResult
        {
            RecordId = record,
            RecordWarning = recordWarning,
            ProvenDurableId = proven,
            ProofSource = proof,
            Segments = walked,
            LastKeptId = lastKeptId,
            SlotsToZero = zero,
            Warnings = warnings,
            Refusal = refusal,
            UnreachableIds = unreachable,
        };
    }

    /// <summary>
    /// A durable segment whose checksum fails: which of its blocks are lost, or why that cannot be known.
    /// <list type="bullet">
    /// <item>The metablocks crc holds (or the loss was accepted before): the block list is intact. Each wide entry's
    /// checksum says whether its data is; order 11 has none, so every dirty block is taken as lost.</item>
    /// <item>It fails, with wide entries: an entry whose own checksum holds is intact, sector, dirty bits and data;
    /// one that fails names an unknown block. None fails: only bytes no checksum covers were hit, nothing is lost.
    /// Some fail: an unknown loss — refused, or with the loss accepted the intact entries are replayed and the
    /// header says the failing ones are given up (<see cref="SegmentHeaderExtension.FlagLossAccepted"/>).</item>
    /// <item>Otherwise (no extension, a damaged entry of order 11): an unknown loss.</item>
    /// </list>
    /// </summary>
    private static (WalkedSegment? Result, string? UnknownLoss) Damaged(byte[] segment, SlotHeader h, ulong id, long slot, bool durable, string? entryProblem, CacheGeometry geometry, Input input)
    {
        if (h.ExtensionState != HeaderExtensionState.Intact)
        {
            return (null, entryProblem is not null ? $"a metablock is damaged ({entryProblem})" : "its header carries no checksums of its block list (written by the kernel or an older version)");
        }
        bool perEntry = h.Extension.HasEntryChecksums && geometry.MetablockBytes == MetablockOnDisk.WideSizeBytes;
        bool accepted = (h.Extension.Flags & SegmentHeaderExtension.FlagLossAccepted) != 0;
        bool EntryFails(int i) => MetablockOnDisk.StoredEntryChecksum(segment, i) != MetablockOnDisk.ComputeEntryChecksum(segment, i)
            || MetablockOnDisk.Read(segment, i, geometry.MetablockBytes).Problem(i, input.BackingSectors) is not null;
        bool listHolds = accepted || (entryProblem is null
            && SegmentHeaderExtension.ComputeMetablocksChecksum(segment, h.Length, geometry.MetablockBytes) == h.Extension.MetablocksChecksum);
        if (listHolds && accepted && perEntry)
        {
            List<WalkedEntry> kept = Entries(segment, h, geometry, _ => false, skip: EntryFails);
            return (new WalkedSegment(id, slot, SegmentFate.Damaged, durable, $"checksum mismatch; blocks whose entry fails its checksum were given up earlier (--accept-loss); {kept.Count} replayed") { Entries = kept, Length = h.Length }, null);
        }
        if (listHolds)
        {
            Func<int, bool> damagedEntry = !input.Faults.DamagedEntriesAreLost ? _ => false
                : perEntry ? EntryFails
                : _ => true; // order 11: no entry checksums, the whole segment's data is suspect
            List<WalkedEntry> entries = Entries(segment, h, geometry, damagedEntry);
            return (new WalkedSegment(id, slot, SegmentFate.Damaged, durable,
                perEntry ? $"checksum mismatch: {entries.Count(e => e.Lost)} damaged block(s) found by their entry checksums"
                         : $"checksum mismatch: order {geometry.SegmentSizeOrder} has no per-block checksums, so every block of the segment is taken as lost")
            {
                Entries = entries,
                Length = h.Length,
            }, null);
        }
        if (!perEntry)
        {
            return (null, entryProblem is not null ? $"a metablock is damaged ({entryProblem})" : "its block list is damaged (the metablocks fail their checksum)");
        }
        int failing = Enumerable.Range(0, h.Length).Count(EntryFails);
        List<WalkedEntry> intact = Entries(segment, h, geometry, _ => false, skip: EntryFails);
        if (failing == 0)
        {
            return (new WalkedSegment(id, slot, SegmentFate.Damaged, durable, "checksum mismatch, but every entry passes its own checksum: only bytes no block depends on were damaged") { Entries = intact, Length = h.Length }, null);
        }
        string loss = $"{failing} of its metablocks fail their checksum (the blocks they held are unknown)";
        return input.AcceptLoss
            ? (new WalkedSegment(id, slot, SegmentFate.Damaged, durable, $"{loss}; the {intact.Count} intact entries are replayed") { Entries = intact, Length = h.Length, LossAccepted = true }, loss)
            : (null, loss);
    }

    /// <summary>
    /// The entries of a durable segment whose header is lost: a prefix of entries that each pass their own checksum
    /// (<see cref="MetablockOnDisk.ComputeEntryChecksum"/>), then only blank (all-zero) entries — the writer clears
    /// the metadata block when it takes a slot, so a blank entry is past the end. Anything else (an entry that fails
    /// and is not blank: a damaged one, or one recovery wrote for a lost block), or no entry at all (the slot was
    /// wiped whole), makes the block list unknown: null.
    /// </summary>
    private static List<WalkedEntry>? Salvage(byte[] segment, CacheGeometry geometry, long backingSectors, out int length)
    {
        List<WalkedEntry> entries = [];
        length = 0;
        bool ended = false;
        for (int i = 0; i < geometry.BlocksPerSegment; i++)
        {
            ReadOnlySpan<byte> bytes = segment.AsSpan(SegmentHeaderOnDisk.SizeBytes + i * MetablockOnDisk.WideSizeBytes, MetablockOnDisk.WideSizeBytes);
            if (!bytes.ContainsAnyExcept((byte)0))
            {
                ended = true;
                continue;
            }
            MetablockOnDisk entry = MetablockOnDisk.Read(segment, i, MetablockOnDisk.WideSizeBytes);
            if (ended || MetablockOnDisk.StoredEntryChecksum(segment, i) != MetablockOnDisk.ComputeEntryChecksum(segment, i) || entry.Problem(i, backingSectors) is not null)
            {
                return null;
            }
            length = i + 1;
            if (entry.DirtyBits != 0)
            {
                entries.Add(new WalkedEntry(i, entry.BackingSector / Units.SectorsPerBlock, entry.DirtyBits, Lost: false));
            }
        }
        // A segment the writer wrote holds at least one block; a blank metadata block is a slot wiped whole.
        return length > 0 ? entries : null;
    }

    /// <summary>Every slot's header sector (one sector per slot: the header, with our extension, is the first 512 bytes).</summary>
    internal static SlotHeader[] ReadHeaders(IBlockDevice cache, CacheGeometry geometry)
    {
        byte[] sector = new byte[Math.Max(SegmentHeaderOnDisk.SizeBytes, cache.SectorSizeBytes)];
        SlotHeader[] headers = new SlotHeader[geometry.NrSegments];
        for (long slot = 0; slot < geometry.NrSegments; slot++)
        {
            cache.Read(geometry.SegmentStartBytes(slot), sector);
            SegmentHeaderOnDisk header = SegmentHeaderOnDisk.Read(sector);
            (HeaderExtensionState state, SegmentHeaderExtension extension) = SegmentHeaderExtension.Read(sector);
            bool authentic = header.Id != 0 && geometry.SlotOf(header.Id) == slot && header.Length <= geometry.BlocksPerSegment
                && state != HeaderExtensionState.Damaged;
            headers[slot] = new SlotHeader(header.Id, header.Checksum, header.Length, state, extension, authentic,
                !sector.AsSpan(0, SegmentHeaderOnDisk.SizeBytes).ContainsAnyExcept((byte)0));
        }
        return headers;
    }

    /// <summary>The first metablock of the segment's <paramref name="length"/> that cannot be replayed, or null.</summary>
    internal static string? EntryProblem(ReadOnlySpan<byte> segment, int length, CacheGeometry geometry, long backingSectors)
    {
        for (int i = 0; i < length; i++)
        {
            if (MetablockOnDisk.Read(segment, i, geometry.MetablockBytes).Problem(i, backingSectors) is { } problem)
            {
                return problem;
            }
        }
        return null;
    }

    /// <summary>The dirty entries of a segment image; lost: marked in the header's lost bitmap, or <paramref name="damagedEntry"/>.</summary>
    internal static List<WalkedEntry> Entries(ReadOnlySpan<byte> segment, SlotHeader header, CacheGeometry geometry, Func<int, bool> damagedEntry, Func<int, bool>? skip = null)
    {
        List<WalkedEntry> entries = [];
        for (int i = 0; i < header.Length; i++)
        {
            MetablockOnDisk entry = MetablockOnDisk.Read(segment, i, geometry.MetablockBytes);
            bool markedLost = header.ExtensionState == HeaderExtensionState.Intact && header.Extension.IsLost(i);
            if (entry.DirtyBits == 0 || (!markedLost && skip?.Invoke(i) == true))
            {
                continue; // clean (read-cached): not trusted across a restart; or given up with the loss accepted
            }
            bool lost = markedLost || damagedEntry(i);
            entries.Add(new WalkedEntry(i, entry.BackingSector / Units.SectorsPerBlock, entry.DirtyBits, lost));
        }
        return entries;
    }

    private static WalkedSegment FromPmem(RecoveredBuffer buffer, long slot, bool durable, string cacheProblem) =>
        new(buffer.SegmentId, slot, SegmentFate.FromPmem, durable, buffer.LostSlots > 0 ? $"{buffer.LostSlots} acknowledged pmem record(s) damaged" : null)
        {
            Entries = buffer.Slots.Select((s, i) => new WalkedEntry(i, s.Record.Block, s.Record.DirtyBits, s.Lost)).ToList(),
            Length = buffer.Slots.Count,
        };

    private static string DescribeSlot(SlotHeader h, ulong id, long slot) => h switch
    {
        { Id: 0, ExtensionState: not HeaderExtensionState.Damaged } => $"slot {slot} is empty",
        { ExtensionState: HeaderExtensionState.Damaged } => $"slot {slot} holds a damaged header (its checksum fails)",
        _ when h.Id != id && h.Authentic => $"slot {slot} holds segment {h.Id}",
        _ => $"slot {slot} holds a header that does not belong there (id {h.Id}, length {h.Length})",
    };

    /// <summary>Headers no crash leaves, which the walk did not already account for: reported.</summary>
    private static void ReportOddHeaders(SlotHeader[] headers, CacheGeometry geometry, List<WalkedSegment> walked, List<string> warnings)
    {
        // The walk already said what it did with these slots' segments (salvaged past a damaged header, given up).
        HashSet<long> explained = [.. walked.Where(s => s.Fate is not (SegmentFate.CrashTail or SegmentFate.Discarded)).Select(s => s.Slot)];
        for (long slot = 0; slot < headers.Length; slot++)
        {
            SlotHeader h = headers[slot];
            if (explained.Contains(slot))
            {
                continue;
            }
            if (h.ExtensionState == HeaderExtensionState.Damaged)
            {
                warnings.Add($"slot {slot} holds a damaged segment header (its checksum fails; it names id {h.Id}): not replayed. Nothing on the media shows whether it held acknowledged writes; if it did, they are lost");
            }
            else if (h.Id != 0 && geometry.SlotOf(h.Id) != slot)
            {
                // A crash leaves a slot empty, torn, or holding its previous lap's segment; never an id of another slot.
                warnings.Add($"slot {slot} holds segment id {h.Id}, which belongs in slot {geometry.SlotOf(h.Id)}: a damaged header, not replayed");
            }
            else if (h.Id != 0 && h.Length > geometry.BlocksPerSegment)
            {
                warnings.Add($"segment {h.Id} in slot {slot} claims {h.Length} blocks, more than a segment holds: a damaged header, not replayed");
            }
        }
    }
}
