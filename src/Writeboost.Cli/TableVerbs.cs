using System.Globalization;
using CommandLine;
using Writeboost.Cache.Core;
using Writeboost.Cache.Table;
using Writeboost.Cli.Control;
using Writeboost.Devices;

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

    [Option("discard-pmem", HelpText = "Open a mode-1 cache with a pmem region that is not its own current buffer (blank, an earlier one, another cache's), formatting it: the acknowledged writes only the cache's own buffer held are lost. Mode 0: open a cache whose pmem buffer may hold acknowledged writes without them.")]
    public bool DiscardPmem { get; set; }

    [Option("overwrite-backing", HelpText = "Open a cache holding dirty data with a backing device that is not the one it belongs to (the same device moved or copied): the dirty blocks are written onto it.")]
    public bool OverwriteBacking { get; set; }

    /// <summary>The table, parsed (and its paths checked) once.</summary>
    internal DeviceTable ParsedTable => _parsed ??= DeviceTable.Parse(Table.ToList());

    private DeviceTable? _parsed;

    /// <summary>Opens the device; only <c>wb create</c> passes <paramref name="format"/> (any other verb refuses a path holding no cache).</summary>
    internal WriteboostDevice Open(bool reformat = false, bool readOnly = false, bool format = false) =>
        TableDevices.Open(ParsedTable, new WriteboostOptions
        {
            Reformat = reformat,
            FormatUnformatted = format,
            AcceptDataLoss = AcceptLoss,
            ReadOnly = readOnly,
            DiscardPmem = DiscardPmem,
            OverwriteBacking = OverwriteBacking,
        }, Direct);

    /// <summary>The running server of this table's cache, asked to do <paramref name="verb"/>; null when none serves it.</summary>
    internal ControlReply? AskLiveServer(string verb, string? message = null) =>
        ControlChannel.TryCall(ParsedTable.CachePath, new ControlRequest(verb, Table.ToList(), Json, message));

    internal static int PrintReply(ControlReply reply)
    {
        Console.Out.Write(reply.Stdout);
        Console.Error.Write(reply.Stderr);
        return reply.Exit;
    }
}

[Verb("create", HelpText = "Format the cache (and pmem) if not formatted, or recover it; --reformat starts over, destroying cached data. A cache or pmem path holding a filesystem, partition table, LVM, RAID or another signature is refused unless --force.")]
internal sealed class CreateVerb : TableOptions
{
    [Option("reformat", HelpText = "Format even a cache that holds data (dirty data included: it is lost).")]
    public bool Reformat { get; set; }

    [Option("force", HelpText = "Format a cache or pmem path even though it holds something else (a filesystem, a partition table, LVM, RAID), as mkfs -f: that content is lost.")]
    public bool Force { get; set; }

    internal int Run()
    {
        DeviceTable table = ParsedTable;
        RefuseForeignContent(table.CachePath, "cache", writeboostIsOurs: true);
        if (table.PmemPath is not null)
        {
            RefuseForeignContent(table.PmemPath, "pmem", writeboostIsOurs: true);
        }
        using WriteboostDevice device = Open(Reformat, format: true);
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

    /// <summary>
    /// As mkfs: a path holding a filesystem, partition table, LVM, RAID or other signature libblkid knows is not
    /// formatted unless --force. A writeboost cache or pmem buffer is left to the open's own rules (recovered, or
    /// refused when it is another cache's; --reformat starts over).
    /// </summary>
    private void RefuseForeignContent(string path, string role, bool writeboostIsOurs)
    {
        if (Force || !File.Exists(path))
        {
            return;
        }
        if (writeboostIsOurs && DeviceContents.DescribeWriteboost(path) is not null)
        {
            return;
        }
        string? holds = DeviceContents.Describe(path);
        if (holds is not null)
        {
            throw new UsageException($"the {role} path {path} holds {holds}; refusing to format it (wb create --force formats it anyway: that content is lost)");
        }
    }
}

[Verb("status", HelpText = "Look at the device, read only: the dmsetup status line (or --json with named fields), the recovery report on stderr. While wb serve runs it, the live device's status (through its control socket); otherwise recovery runs on an in-memory overlay and nothing is written to any device.")]
internal sealed class StatusVerb : TableOptions
{
    internal int Run()
    {
        if (AskLiveServer("status") is { } live)
        {
            return PrintReply(live);
        }
        using WriteboostDevice device = Open(readOnly: true);
        return StatusPrinter.Print(device, ParsedTable, Json, Console.Out, Console.Error, live: null);
    }
}

/// <summary>What <c>wb status</c> prints, from a device opened to look or from the live one (the control socket).</summary>
internal static class StatusPrinter
{
    internal static int Print(WriteboostDevice device, DeviceTable table, bool json, TextWriter stdout, TextWriter stderr, int? live)
    {
        WriteboostStatus status = device.Status();
        if (live is { } pid)
        {
            stderr.WriteLine(string.Create(CultureInfo.InvariantCulture, $"live: the running wb serve (process {pid}) answered; its open's recovery report follows"));
        }
        RecoveryOutput.ToStderr(status, stderr);
        if (json)
        {
            Output.Json(new { Table = table.ToWords(), Mode = (int)table.Mode, Status = status, StatusLine = status.ToStatusLine(), status.Degraded, Live = live is not null, ServerPid = live }, stdout);
            return 0;
        }
        stdout.WriteLine($"0 {status.SizeBytes / 512} writeboost {status.ToStatusLine()}");
        if (status.Degraded)
        {
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"degraded: {status.PoisonedBlocks} block(s) poisoned (see the recovery report on stderr, or wb check)"));
        }
        return 0;
    }
}

[Verb("message", HelpText = "Send a dmsetup-style message: clear_stat, drop_caches, clear_poison [sector] (accept the loss of poisoned blocks: their lost sectors become zeros), or '<tunable> <value>'. While wb serve runs the device, it acts on the live device (tunables last while it runs); otherwise on a device opened for the message.")]
internal sealed class MessageVerb : TableOptions
{
    [Option('m', "message", HelpText = "The message, e.g. \"drop_caches\" or \"writeback_threshold 50\" (required).")]
    public string? Message { get; set; }

    internal int Run()
    {
        if (Message is null)
        {
            throw new UsageException("wb message needs -m MESSAGE (clear_stat, drop_caches, clear_poison [sector], or \"<tunable> <value>\")");
        }
        // The message is checked before anything is opened, so a bad one changes nothing.
        DeviceMessage.Check(MessagePrinter.Words(Message), FileBlockDevice.SizeOf(ParsedTable.BackingPath));
        if (AskLiveServer("message", Message) is { } live)
        {
            return PrintReply(live);
        }
        using WriteboostDevice device = Open();
        RecoveryOutput.ToStderr(device.Status());
        return MessagePrinter.Apply(device, Message, Json, Console.Out, live: null);
    }
}

/// <summary>What <c>wb message</c> does and prints, on a device opened for it or on the live one (the control socket).</summary>
internal static class MessagePrinter
{
    internal static string[] Words(string message) => message.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    internal static int Apply(WriteboostDevice device, string message, bool json, TextWriter stdout, int? live)
    {
        device.Message(Words(message));
        WriteboostStatus status = device.Status();
        if (json)
        {
            Output.Json(new { Message = message, Status = status, Live = live is not null, ServerPid = live }, stdout);
        }
        else
        {
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ok: {message} (nr_dirty_caches {status.NrDirtyCaches}, last_writeback_id {status.LastWritebackId}){(live is { } pid ? $" on the live device (wb serve, process {pid})" : "")}"));
        }
        return 0;
    }
}
