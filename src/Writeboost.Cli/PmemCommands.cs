using System.Globalization;
using CommandLine;
using Writeboost.Bench;
using Writeboost.Pmem;
using PmemApi = Writeboost.Pmem.Pmem;

namespace Writeboost.Cli;

/// <summary>Options shared by every command that opens a pmem region.</summary>
internal class PmemRegionOptions
{
    [Option("backend", Default = "auto", HelpText = "auto, block (read-modify-write over a block device or file) or dax (memory mapping + libpmem).")]
    public string Backend { get; set; } = "auto";

    [Option("offset-bytes", Default = 0L, HelpText = "Start of the region in the file or device.")]
    public long OffsetBytes { get; set; }

    [Option("length-bytes", Default = -1L, HelpText = "Length of the region; -1 = to the end of the file or device.")]
    public long LengthBytes { get; set; }

    [Option("json", HelpText = "Print JSON for scripts.")]
    public bool Json { get; set; }

    internal PmemBackend ParsedBackend => Backend.ToLowerInvariant() switch
    {
        "auto" => PmemBackend.Auto,
        "block" => PmemBackend.Block,
        "dax" => PmemBackend.Dax,
        _ => throw new UsageException($"--backend {Backend}: expected auto, block or dax"),
    };

    /// <summary>Opens the region to look at it (a shared lock: a user of it keeps it out, and it keeps a user out).</summary>
    internal PmemRegion OpenToLook(string path) =>
        InspectOptions.LookAt(() => PmemApi.Alloc(path, OffsetBytes, LengthBytes, ParsedBackend, deviceLock: Devices.DeviceLock.Shared));
}

/// <summary>Options of the pmem latency benchmark.</summary>
internal class PmemBenchOptions : PmemRegionOptions
{
    [Option("ops", Default = 0L, HelpText = "Number of operations (0 = the benchmark's default: pmem 200000, fua 20000, randwrite 65536).")]
    public long Ops { get; set; }

    [Option("block-bytes", Default = 4096, HelpText = "Bytes per write.")]
    public int BlockBytes { get; set; }

    [Option("max-seconds", Default = 10.0, HelpText = "Stop early after this long (slow backends).")]
    public double MaxSeconds { get; set; }

    /// <summary>Set by the verb: an interrupted run stops measuring and reports what it has.</summary>
    internal CancellationToken Cancel { get; set; }

    [Option("force", HelpText = "Benchmark (so overwrite) a path even though it holds a writeboost cache or pmem buffer, a filesystem or another signature: that content is lost.")]
    public bool Force { get; set; }

    [Option("rounds", HelpText = "pmem, fua, randwrite: how many rounds (default 3), each measuring the reference and the benchmark (pmem: the Pmem API, then libpmem called directly on the same file; fua --mode both: mode 0, mode 1, then the floor, a bare 4 KiB write+persist of the same pmem file; fua --independent: the N devices and the one device, alternating which goes first; randwrite: the cache device's sequential bandwidth, then the random writes); every figure is their median, with the range they gave, and a spread wider than 25 % is warned about.")]
    public int? Rounds { get; set; }

    /// <summary><see cref="Rounds"/>, 3 when not given; fewer than one is a usage error.</summary>
    internal int RoundCount => Rounds switch
    {
        null => 3,
        >= 1 => Rounds.Value,
        _ => throw new UsageException($"--rounds {Rounds}: expected at least 1"),
    };

    [Option("fio", HelpText = "Also run fio's libpmem engine (--direct=1 --sync=1) on a scratch file beside PATH, same size, same run, and report the ratio.")]
    public bool Fio { get; set; }
}

[Verb("pmem", HelpText = "Pmem regions: 'wb pmem info PATH' describes how PATH is mapped; 'wb pmem bench PATH' measures 4 KiB write+persist latency.")]
internal sealed class PmemVerb : PmemBenchOptions
{
    [Value(0, MetaName = "action", Required = true, HelpText = "info or bench.")]
    public string Action { get; set; } = "";

    [Value(1, MetaName = "path", Required = true, HelpText = "A file, block device (/dev/pmem0) or device-dax (/dev/dax0.0).")]
    public string Path { get; set; } = "";

    internal int Run() => Action switch
    {
        "info" => PmemCommands.Info(this, Path),
        "bench" => BenchInterruptibly(),
        _ => throw new UsageException($"wb pmem {Action}: expected 'info' or 'bench'"),
    };

    private int BenchInterruptibly()
    {
        using Interruption interruption = Interruption.Watch();
        Cancel = interruption.Token;
        int exit = PmemCommands.Bench(this, Path);
        if (interruption.Requested)
        {
            Console.Error.WriteLine($"wb: {interruption.Line("the benchmark stopped early")}");
            return interruption.ExitCode;
        }
        return exit;
    }
}

internal static class PmemCommands
{
    internal static int Info(PmemRegionOptions options, string path)
    {
        using PmemRegion region = options.OpenToLook(path);
        DaxPmemRegion? dax = region as DaxPmemRegion;
        var info = new
        {
            Path = path,
            Backend = region.Backend,
            OffsetBytes = options.OffsetBytes,
            LengthBytes = region.LengthBytes,
            IsPmem = region.IsPmem,
            IsMapSync = dax?.IsMapSync ?? false,
            IsDeviceDax = dax?.IsDeviceDax ?? false,
            Granularity = PmemBenchmark.GranularityName(region.Granularity),
            Persistence = Persistence(region),
            PmemIsPmemForce = Environment.GetEnvironmentVariable("PMEM_IS_PMEM_FORCE") ?? "",
            Libpmem = PmemApi.LibPmemUnavailableReason ?? "libpmem.so.1 loaded",
        };
        if (options.Json)
        {
            Output.Json(info);
            return 0;
        }
        Output.KeyValues(
        [
            ("path", path),
            ("backend", info.Backend.ToString().ToLowerInvariant()),
            ("region", $"bytes {info.OffsetBytes}..{info.OffsetBytes + info.LengthBytes} ({info.LengthBytes} bytes)"),
            ("granularity", info.Granularity),
            ("persistence", info.Persistence),
            ("is_pmem", info.IsPmem ? "yes" : "no"),
            ("map_sync", info.IsMapSync ? "yes" : "no"),
            ("device_dax", info.IsDeviceDax ? "yes" : "no"),
            ("PMEM_IS_PMEM_FORCE", info.PmemIsPmemForce.Length == 0 ? "(unset)" : info.PmemIsPmemForce),
            ("libpmem", info.Libpmem),
        ]);
        return 0;
    }

    internal static int Bench(PmemBenchOptions options, string path)
    {
        if (options.Ops < 0 || options.BlockBytes <= 0)
        {
            throw new UsageException("--ops must not be negative and --block-bytes must be positive");
        }
        long ops = options.Ops > 0 ? options.Ops : 200_000;
        RefuseToOverwrite(path, options.Force);
        int roundCount = options.RoundCount;
        PmemBenchmark benchmark = new() { Ops = ops, BlockBytes = options.BlockBytes, MaxSeconds = options.MaxSeconds, Cancel = options.Cancel };
        // The floor in the same run: the same loop calling libpmem directly on the same file — a regular file, the
        // whole of it (libpmem maps whole files only), the dax backend; a device's floor is left to the lab.
        bool floor = options.ParsedBackend != PmemBackend.Block && options.OffsetBytes == 0 && options.LengthBytes <= 0 && Native.PosixFile.KindOf(path) == Native.FileKind.Regular;
        List<(PmemBenchResult Wb, PmemBenchResult? Bare, PmemBenchResult? Eadr)> rounds = [];
        for (int round = 0; round < roundCount && !options.Cancel.IsCancellationRequested; round++)
        {
            PmemBenchResult wb;
            PmemBenchResult? eadr = null;
            using (PmemRegion region = PmemApi.Alloc(path, options.OffsetBytes, options.LengthBytes, options.ParsedBackend, deviceLock: Devices.DeviceLock.Exclusive))
            {
                wb = benchmark.Run(region);
                // What eADR saves: the same writes with no write-back, where the region is pmem (elsewhere the
                // persist is an msync, and skipping it measures the page cache, not the persistence domain).
                eadr = region.Backend == PmemBackend.Dax && region.IsPmem ? benchmark.RunEadr(region) : null;
            }
            PmemBenchResult? measuredBare = null;
            if (floor && wb.Backend == "dax")
            {
                try
                {
                    measuredBare = benchmark.RunBareLibPmem(path);
                }
                catch (IOException error)
                {
                    Console.Error.WriteLine($"wb: the floor (libpmem bare) was not measured: {error.Message}");
                    floor = false;
                }
            }
            rounds.Add((wb, measuredBare, eadr));
        }
        // The round whose Pmem API p50 is the median is reported whole; the spreads cover every round.
        (PmemBenchResult result, PmemBenchResult? bare, PmemBenchResult? eadrRow) = Spread.MedianRound(rounds, r => r.Wb.P50Ns);
        Dictionary<string, Spread> spreads = new() { ["Pmem API p50"] = Spread.Of(rounds.Select(r => r.Wb.P50Ns / 1000.0)) };
        if (rounds.All(r => r.Bare is not null))
        {
            spreads["libpmem bare p50"] = Spread.Of(rounds.Select(r => r.Bare!.P50Ns / 1000.0));
            spreads["Pmem API p50 / libpmem bare p50"] = Spread.Of(rounds.Select(r => r.Wb.P50Ns / (double)Math.Max(1, r.Bare!.P50Ns)));
        }
        if (rounds.All(r => r.Eadr is not null))
        {
            spreads["eADR store+fence p50"] = Spread.Of(rounds.Select(r => r.Eadr!.P50Ns / 1000.0));
            spreads["eADR p50 / write+persist p50"] = Spread.Of(rounds.Select(r => r.Eadr!.P50Ns / (double)Math.Max(1, r.Wb.P50Ns)));
        }
        IReadOnlyList<string> warnings = Spread.WarningsOf(spreads);
        FioResult? fio = null;
        if (options.Fio)
        {
            string scratch = path + ".fio-reference";
            try
            {
                long size = Math.Max(result.BlockBytes, PmemApi.SizeOf(path) - options.OffsetBytes);
                fio = FioReference.RunLibPmem(scratch, options.LengthBytes > 0 ? options.LengthBytes : size, options.BlockBytes, Math.Max(2, Math.Min(options.MaxSeconds, 10)));
            }
            finally
            {
                File.Delete(scratch);
            }
        }
        if (options.Json)
        {
            Output.Json(new
            {
                Result = result,
                Rounds = rounds.Count,
                WbP50UsSpread = spreads["Pmem API p50"],
                LibpmemBareP50UsSpread = spreads.GetValueOrDefault("libpmem bare p50"),
                WbOverLibpmemBareSpread = spreads.GetValueOrDefault("Pmem API p50 / libpmem bare p50"),
                Warnings = warnings,
                LibpmemBare = bare,
                Eadr = eadrRow,
                EadrP50UsSpread = spreads.GetValueOrDefault("eADR store+fence p50"),
                EadrOverAdrP50Spread = spreads.GetValueOrDefault("eADR p50 / write+persist p50"),
                WbP50OverLibpmemBareP50 = bare is null ? (double?)null : result.P50Ns / (double)Math.Max(1, bare.P50Ns),
                Fio = fio,
                WbIopsOverFio = fio is null ? (double?)null : result.Iops / fio.Iops,
                // Context only: fio's latency covers part of its engine's work (see the text output's last line).
                WbP50OverFioP50 = fio is null ? (double?)null : result.P50Ns / (double)Math.Max(1, fio.P50Ns),
                FioOverheadNsPerOp = fio is null ? (double?)null : FioOverheadNs(fio),
            });
            return 0;
        }
        List<string[]> rows =
        [
            ["engine", "backend", "granularity", "ops", "IOPS", "us/op", "mean us", "p50 us", "p99 us"],
            ["wb " + result.Backend, result.Backend, result.Granularity, result.Ops.ToString(CultureInfo.InvariantCulture),
                result.Iops.ToString("F0", CultureInfo.InvariantCulture), Us(1e9 / result.Iops), Us(result.MeanNs), Us(result.P50Ns), Us(result.P99Ns)],
        ];
        if (bare is not null)
        {
            rows.Add(["libpmem bare", "dax", bare.Granularity, bare.Ops.ToString(CultureInfo.InvariantCulture),
                bare.Iops.ToString("F0", CultureInfo.InvariantCulture), Us(1e9 / bare.Iops), Us(bare.MeanNs), Us(bare.P50Ns), Us(bare.P99Ns)]);
        }
        if (eadrRow is not null)
        {
            rows.Add(["wb eADR", "dax", "store+fence", eadrRow.Ops.ToString(CultureInfo.InvariantCulture),
                eadrRow.Iops.ToString("F0", CultureInfo.InvariantCulture), Us(1e9 / eadrRow.Iops), Us(eadrRow.MeanNs), Us(eadrRow.P50Ns), Us(eadrRow.P99Ns)]);
        }
        if (fio is not null)
        {
            // Context, not a reference: its latency covers part of its engine's work, its 1/IOPS adds fio's own.
            rows.Add(["fio libpmem", "dax", "cache-line", "-", fio.Iops.ToString("F0", CultureInfo.InvariantCulture), Us(1e9 / fio.Iops), Us(fio.MeanNs), Us(fio.P50Ns), Us(fio.P99Ns)]);
        }
        Output.Table(rows);
        if (rounds.Count > 1)
        {
            Console.WriteLine($"rounds: {rounds.Count} (the rows are the round with the median wb p50); wb p50 {spreads["Pmem API p50"].Format("F2", " us")}"
                + (spreads.TryGetValue("libpmem bare p50", out Spread? bareP50) ? $", libpmem bare p50 {bareP50.Format("F2", " us")}" : ""));
        }
        if (spreads.TryGetValue("Pmem API p50 / libpmem bare p50", out Spread? overFloor))
        {
            Console.WriteLine($"wb p50 / libpmem bare p50 = {overFloor.Format("F2")} (the floor: the same loop in this process calling libpmem directly on its own mapping of the file)");
        }
        if (spreads.TryGetValue("eADR p50 / write+persist p50", out Spread? eadrShare))
        {
            Console.WriteLine($"eADR: the same writes stored and fenced, no line written back (the CPU caches inside the power-fail domain): p50 {spreads["eADR store+fence p50"].Format("F2", " us")}, {eadrShare.Format("F2")} of the write+persist");
        }
        foreach (string warning in warnings)
        {
            Console.WriteLine($"warning: {warning}");
        }
        if (fio is not null)
        {
            // fio's completion latency brackets only part of its libpmem engine's work (its 1/IOPS is several times
            // larger): neither its latency nor its IOPS is the copy and persist alone, so its row is context, and the
            // like-for-like floor is the bare libpmem loop above.
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fio libpmem: {Us(1e9 / fio.Iops)} us per op (1/IOPS), of which its reported latency is {Us(fio.MeanNs)} us (mean clat): {Us(FioOverheadNs(fio))} us of every op is fio's own work outside it, so neither wb p50 / fio p50 = {result.P50Ns / (double)Math.Max(1, fio.P50Ns):F2} nor wb IOPS / fio IOPS = {result.Iops / fio.Iops:F2} is the Pmem API's cost; the floor is libpmem bare (same run; reference: {fio.Command})"));
        }
        return 0;
    }

    /// <summary>
    /// A benchmark writes over what is there: a path holding a writeboost cache or pmem buffer (acknowledged writes,
    /// perhaps), a filesystem or another signature libblkid knows is refused unless --force. A path in use is refused
    /// by the lock the benchmark takes.
    /// </summary>
    internal static void RefuseToOverwrite(string path, bool force)
    {
        if (force || !File.Exists(path))
        {
            return;
        }
        if (Cache.Table.DeviceContents.Describe(path) is { } holds)
        {
            throw new UsageException($"{path} holds {holds}; a benchmark would overwrite it (--force benchmarks it anyway: that content is lost)");
        }
    }

    /// <summary>What fio spends per operation outside the latency it reports: 1/IOPS minus the mean completion latency.</summary>
    private static double FioOverheadNs(FioResult fio) => Math.Max(0, 1e9 / fio.Iops - fio.MeanNs);

    private static string Us(double ns) => (ns / 1000).ToString("F2", CultureInfo.InvariantCulture);

    private static string Persistence(PmemRegion region) => region switch
    {
        BlockPmemRegion => "read-modify-write of sectors; durable after the device flush (fdatasync)",
        { IsPmem: true, Granularity: PmemGranularity.Byte } => "eADR: stores durable once visible (fence only)",
        { IsPmem: true } => "cache-line write-back (clwb/clflushopt) + sfence via libpmem",
        _ => "msync(MS_SYNC) of the touched pages (mapping is not pmem)",
    };
}
