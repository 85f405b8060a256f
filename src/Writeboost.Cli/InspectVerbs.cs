using System.Globalization;
using CommandLine;
using Writeboost.Cache.Format;
using Writeboost.Cache.Inspect;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Recovery;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Cli;

/// <summary>Options of the verbs that read a cache device without opening the writeboost device.</summary>
internal abstract class InspectOptions
{
    [Value(0, MetaName = "cache", Required = true, HelpText = "The cache device or file.")]
    public string Cache { get; set; } = "";

    [Option("segment-size-order", HelpText = "Override the geometry (a cache made by the kernel module has no record of it; 10 is assumed).")]
    public int? SegmentSizeOrder { get; set; }

    [Option("json", HelpText = "Print JSON for scripts.")]
    public bool Json { get; set; }

    internal CacheReport Read(PmemRegion? pmem = null)
    {
        using FileBlockDevice cache = LookAt(() => FileBlockDevice.Open(Cache, new FileBlockDeviceOptions { ReadOnly = true, Lock = DeviceLock.Shared }));
        return CacheInspector.Inspect(cache, SegmentSizeOrder, pmem);
    }

    /// <summary>
    /// Opens a path to look at it, under a shared lock: a tool writing it (wb serve, create, message) holds the
    /// exclusive one, and what a look would see then — segments half written, a pmem buffer mid-record — is not
    /// damage. So a cache in use is refused with the holder's name, never checked.
    /// </summary>
    internal static T LookAt<T>(Func<T> open)
    {
        try
        {
            return open();
        }
        catch (DeviceInUseException error)
        {
            throw new DeviceInUseException(error.Path, "a running writer changes it as it is read, so what a check or dump would see is not what is on it at rest: wb status <table> reports a served device live; stop the writer to check or dump it");
        }
    }
}

[Verb("dump", HelpText = "Print the segment headers (and with --metablocks, the metablocks) of a cache device, read only.")]
internal sealed class DumpVerb : InspectOptions
{
    [Option("metablocks", HelpText = "Also print every metablock: backing sector and dirty bits.")]
    public bool Metablocks { get; set; }

    [Option("all", HelpText = "Also print empty slots.")]
    public bool All { get; set; }

    internal int Run()
    {
        CacheReport report = Read();
        if (Json)
        {
            Output.Json(report with { Slots = report.Slots.Where(s => All || !s.IsEmpty).ToList() });
            return 0;
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Cache}: {report.Superblock}, segment_size_order {report.SegmentSizeOrder}, {report.NrSegments} segments of {report.BlocksPerSegment} blocks, last_writeback_id {report.LastWritebackId}{(report.RecordChecksumValid == false ? " (record checksum FAILS)" : "")}, flags 0x{report.Flags:x2}"));
        List<string[]> rows = [["slot", "id", "length", "checksum", "valid"]];
        foreach (SlotReport slot in report.Slots.Where(s => All || !s.IsEmpty))
        {
            rows.Add([Fmt(slot.Slot), Fmt((long)slot.Id), Fmt(slot.Length), $"0x{slot.StoredChecksum:x8}",
                slot.IsEmpty ? "empty" : !slot.IdMatchesSlot ? "wrong slot" : slot.ChecksumValid ? "ok" : "BAD"]);
        }
        Output.Table(rows);
        if (Metablocks)
        {
            foreach (SlotReport slot in report.Slots.Where(s => !s.IsEmpty))
            {
                for (int i = 0; i < slot.Metablocks.Count; i++)
                {
                    MetablockOnDisk mb = slot.Metablocks[i];
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"segment {slot.Id} block {i}: backing sector {mb.BackingSector} dirty 0x{mb.DirtyBits:x2}"));
                }
            }
        }
        return 0;
    }

    private static string Fmt(long value) => value.ToString(CultureInfo.InvariantCulture);
}

[Verb("check", HelpText = "Verify a cache device, read only: sector 0, the superblock record, every segment's checksum and slot, and what recovery would do (damaged durable segments, poisoned blocks, a crash's torn tail, a refusal); with --pmem, also a mode-1 pmem buffer's header and records. Exit 1 if anything is damaged (a torn tail after a crash included).")]
internal sealed class CheckVerb : InspectOptions
{
    [Option("pmem", HelpText = "The mode-1 pmem buffer (file or device) of this cache, to check as well.")]
    public string? Pmem { get; set; }

    internal int Run()
    {
        CacheReport report;
        if (Pmem is not null)
        {
            using PmemRegion region = LookAt(() => Writeboost.Pmem.Pmem.Alloc(Pmem, 0, -1, PmemBackend.Block, deviceLock: DeviceLock.Shared, readOnly: true));
            report = Read(region);
        }
        else
        {
            report = Read();
        }
        PmemReport? pmem = report.Pmem;
        List<SlotReport> used = report.Slots.Where(s => !s.IsEmpty).ToList();
        List<SlotReport> damaged = used.Where(s => !s.IdMatchesSlot || !s.ChecksumValid || s.HeaderExtension == HeaderExtensionState.Damaged).ToList();
        List<string> problems = [];
        if (report.Superblock is SuperblockState.CorruptMagic or SuperblockState.CorruptExtension or SuperblockState.Unformatted or SuperblockState.FormatInterrupted)
        {
            problems.Add(report.Superblock switch
            {
                SuperblockState.Unformatted => "sector 0 is blank: the device refuses to open it without --reformat",
                SuperblockState.FormatInterrupted => "a format of this device was interrupted (a crash): it is not a cache yet; wb create formats it",
                _ => $"sector 0 is damaged ({report.Superblock}): the device refuses to open it without --reformat",
            });
        }
        if (report.RecordWarning is not null)
        {
            problems.Add(report.RecordWarning);
        }
        problems.AddRange(report.Warnings);
        if (report.Refusal is not null)
        {
            problems.Add($"{report.Refusal}: recovery refuses this cache unless opened with --accept-loss");
        }
        if (report.UnreachableIds.Count > 0)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture,
                $"segment(s) {string.Join(", ", report.UnreachableIds)} are intact but not replayed while recovery refuses the cache"));
        }
        foreach (SegmentCheck segment in report.Segments.Where(s => s.Fate is SegmentFate.Damaged or SegmentFate.LostAccepted || s.BlocksPoisoned > 0))
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture,
                $"segment {segment.Id} (slot {segment.Slot}) was durable and is damaged: {segment.BlocksReplayed} block(s) replayed, {segment.BlocksPoisoned} lost (poisoned): {segment.Problem}"));
        }
        if (report.PoisonedBlocks.Count > 0)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture,
                $"{report.PoisonedBlocks.Count} block(s) poisoned (their newest durable copy is lost; reads of them fail until rewritten or clear_poison): {string.Join(", ", report.PoisonedBlocks.Select(p => $"block {p.Block} (sectors 0x{p.Sectors:x2}, segment {p.SegmentId}, slot {p.Slot})"))}"));
        }
        if (pmem is not null)
        {
            if (pmem.Header != PmemHeaderState.Ours)
            {
                problems.Add($"pmem {Pmem}: {pmem.Header}{(pmem.HeaderProblem is null ? "" : $": {pmem.HeaderProblem}")}");
            }
            foreach (PmemBufferReport buffer in pmem.Buffers.Where(b => b.DamagedRecords > 0 && b.SegmentId > report.ReplayFromId))
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture, $"pmem {Pmem}: the buffer of segment {buffer.SegmentId} has {buffer.DamagedRecords} damaged record(s) no later record shows were durable"));
            }
        }
        List<SegmentCheck> tail = report.Segments.Where(s => s.Fate is SegmentFate.CrashTail or SegmentFate.Discarded).ToList();
        if (Json)
        {
            Output.Json(new
            {
                Cache,
                Pmem = pmem,
                SegmentsChecked = used.Count,
                Damaged = damaged.Select(s => new { s.Slot, s.Id, s.Length, s.IdMatchesSlot, s.ChecksumValid, HeaderDamaged = s.HeaderExtension == HeaderExtensionState.Damaged }),
                RecordChecksumValid = report.RecordChecksumValid,
                Superblock = report.Superblock.ToString(),
                report.ReplayFromId,
                report.ReplayableThroughId,
                report.ProvenDurableId,
                report.UnreachableIds,
                report.Segments,
                report.PoisonedBlocks,
                report.Refusal,
                Problems = problems,
            });
        }
        else
        {
            foreach (SlotReport slot in damaged)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"slot {slot.Slot}: segment {slot.Id} (length {slot.Length}) {(slot.IdMatchesSlot ? "" : "is in the wrong slot; ")}{(slot.HeaderExtension == HeaderExtensionState.Damaged ? "header damaged (its checksum fails); " : "")}{(slot.ChecksumValid ? "" : $"checksum 0x{slot.StoredChecksum:x8} != 0x{slot.ComputedChecksum:x8}")}"));
            }
            foreach (string problem in problems)
            {
                Console.WriteLine(problem);
            }
            foreach (SegmentCheck segment in tail)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"segment {segment.Id} (slot {segment.Slot}): {segment.Problem}: recovery takes it for a crash's torn write (expected after a crash: it was not shown durable) and drops it"));
            }
            if (pmem is not null)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"pmem {Pmem}: header {pmem.Header}, {pmem.PoolSize} buffers; they hold {pmem.Buffers.Count(b => b.SegmentId > report.ReplayFromId)} segment(s) after the record ({pmem.Buffers.Where(b => b.SegmentId > report.ReplayFromId).Sum(b => b.Records)} records, {pmem.Buffers.Where(b => b.SegmentId > report.ReplayFromId).Sum(b => b.TornRecords)} torn — a write in flight at a crash, {pmem.Buffers.Where(b => b.SegmentId > report.ReplayFromId).Sum(b => b.LostRecords)} lost to damage)"));
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{used.Count} segment(s) checked, {damaged.Count} damaged{(report.RecordChecksumValid == false ? "; the superblock record's checksum fails" : "")}; every segment up to {report.ProvenDurableId} is shown durable; recovery would keep segments {report.ReplayFromId + 1}..{report.ReplayableThroughId}, {report.PoisonedBlocks.Count} block(s) poisoned"));
        }
        return damaged.Count == 0 && problems.Count == 0 && report.RecordChecksumValid != false ? 0 : 1;
    }
}
