using System.Globalization;
using CommandLine;
using Writeboost.Cache.Format;
using Writeboost.Cache.Inspect;
using Writeboost.Devices;

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

    internal CacheReport Read()
    {
        using FileBlockDevice cache = FileBlockDevice.Open(Cache);
        return CacheInspector.Inspect(cache, SegmentSizeOrder);
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

[Verb("check", HelpText = "Verify every segment's checksum and slot on a cache device, read only. Exit 1 if any segment is damaged.")]
internal sealed class CheckVerb : InspectOptions
{
    internal int Run()
    {
        CacheReport report = Read();
        List<SlotReport> used = report.Slots.Where(s => !s.IsEmpty).ToList();
        List<SlotReport> damaged = used.Where(s => !s.IdMatchesSlot || !s.ChecksumValid).ToList();
        if (Json)
        {
            Output.Json(new { Cache, SegmentsChecked = used.Count, Damaged = damaged.Select(s => new { s.Slot, s.Id, s.Length, s.IdMatchesSlot, s.ChecksumValid }), RecordChecksumValid = report.RecordChecksumValid });
        }
        else
        {
            foreach (SlotReport slot in damaged)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"slot {slot.Slot}: segment {slot.Id} (length {slot.Length}) {(slot.IdMatchesSlot ? "" : "is in the wrong slot; ")}{(slot.ChecksumValid ? "" : $"checksum 0x{slot.StoredChecksum:x8} != 0x{slot.ComputedChecksum:x8}")}"));
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{used.Count} segment(s) checked, {damaged.Count} damaged{(report.RecordChecksumValid == false ? "; the superblock record's checksum fails" : "")}"));
            if (damaged.Count > 0)
            {
                Console.WriteLine("(a damaged newest segment after a crash is expected — it was never acknowledged as durable; recovery stops before it)");
            }
        }
        return damaged.Count == 0 && report.RecordChecksumValid != false ? 0 : 1;
    }
}
