using System.Globalization;
using CommandLine;
using Writeboost.Cache.Core;
using Writeboost.Cache.Table;

namespace Writeboost.Cli;

/// <summary>Options of every verb that opens a writeboost device from a table.</summary>
internal abstract class TableOptions
{
    [Value(0, MetaName = "table", Min = 2, HelpText = "The device table: <mode> <backing> <cache> [<pmem>] [<#opts>] [<key> <value>]...")]
    public IEnumerable<string> Table { get; set; } = [];

    [Option("json", HelpText = "Print JSON for scripts.")]
    public bool Json { get; set; }

    [Option("direct", HelpText = "Open backing and cache with O_DIRECT (bypass the page cache).")]
    public bool Direct { get; set; }

    [Option("accept-loss", HelpText = "Open even when a durable segment's blocks are unknown (its header or metablocks damaged): give that segment up, durably; its blocks then read their older data. Without it such a cache is refused.")]
    public bool AcceptLoss { get; set; }

    /// <summary>The table, parsed (and its paths checked) once.</summary>
    internal DeviceTable ParsedTable => _parsed ??= DeviceTable.Parse(Table.ToList());

    private DeviceTable? _parsed;

    internal WriteboostDevice Open(bool reformat = false, bool readOnly = false) =>
        TableDevices.Open(ParsedTable, new WriteboostOptions { Reformat = reformat, AcceptDataLoss = AcceptLoss, ReadOnly = readOnly }, Direct);
}

[Verb("create", HelpText = "Format the cache (and pmem) if not formatted, or recover it; --reformat starts over, destroying cached data.")]
internal sealed class CreateVerb : TableOptions
{
    [Option("reformat", HelpText = "Format even a cache that holds data (dirty data included: it is lost).")]
    public bool Reformat { get; set; }

    internal int Run()
    {
        using WriteboostDevice device = Open(Reformat);
        WriteboostStatus status = device.Status();
        RecoveryOutput.ToStderr(status);
        if (Json)
        {
            Output.Json(new { Table = ParsedTable.ToWords(), Formatted = status.Recovery.Formatted, Status = status });
            return 0;
        }
        Console.WriteLine(status.Recovery.Formatted
            ? $"formatted {device.CacheDevice.Name}: {status.NrSegments} segments of {status.BlocksPerSegment} blocks (segment_size_order {status.SegmentSizeOrder}) caching {device.BackingDevice.Name} ({status.SizeBytes} bytes)"
            : $"{device.CacheDevice.Name} already holds a cache: recovered {status.Recovery.SegmentsReplayed} segment(s), {status.NrDirtyCaches} dirty block(s) (use --reformat to start over)");
        return 0;
    }
}

[Verb("status", HelpText = "Look at the device, read only: run recovery on an in-memory overlay (nothing is written to any device) and print its status: the dmsetup line, or --json with named fields; the recovery report on stderr.")]
internal sealed class StatusVerb : TableOptions
{
    internal int Run()
    {
        using WriteboostDevice device = Open(readOnly: true);
        WriteboostStatus status = device.Status();
        RecoveryOutput.ToStderr(status);
        if (Json)
        {
            Output.Json(new { Table = ParsedTable.ToWords(), Mode = (int)ParsedTable.Mode, Status = status, StatusLine = status.ToStatusLine(), status.Degraded });
            return 0;
        }
        Console.WriteLine($"0 {status.SizeBytes / 512} writeboost {status.ToStatusLine()}");
        if (status.Degraded)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"degraded: {status.PoisonedBlocks} block(s) poisoned (see the recovery report on stderr, or wb check)"));
        }
        return 0;
    }
}

[Verb("message", HelpText = "Send a dmsetup-style message: clear_stat, drop_caches, clear_poison [sector] (accept the loss of poisoned blocks: their lost sectors become zeros), or '<tunable> <value>'.")]
internal sealed class MessageVerb : TableOptions
{
    [Option('m', "message", Required = true, HelpText = "The message, e.g. \"drop_caches\" or \"writeback_threshold 50\".")]
    public string Message { get; set; } = "";

    internal int Run()
    {
        using WriteboostDevice device = Open();
        RecoveryOutput.ToStderr(device.Status());
        device.Message(Message.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        WriteboostStatus status = device.Status();
        if (Json)
        {
            Output.Json(new { Message, Status = status });
        }
        else
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ok: {Message} (nr_dirty_caches {status.NrDirtyCaches}, last_writeback_id {status.LastWritebackId})"));
        }
        return 0;
    }
}
