using System.Globalization;
using CommandLine;
using Writeboost.Bench;
using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Table;
using Writeboost.Devices;
using Writeboost.Pmem;
using PmemApi = Writeboost.Pmem.Pmem;

namespace Writeboost.Cli;

[Verb("bench", HelpText = "Benchmarks: 'pmem PATH' (4 KiB write+persist latency), 'fua [TABLE]' (every write FUA, one writer or --writers N), 'randwrite [TABLE]' (random 4 KiB writes vs the cache device's sequential bandwidth). fua and randwrite format the TABLE's cache, so a cache or pmem path holding a writeboost cache or buffer, a filesystem or another signature is refused unless --force; without a TABLE they make temporary files.")]
internal sealed class BenchVerb : PmemBenchOptions
{
    [Value(0, MetaName = "kind", Required = true, HelpText = "pmem, fua or randwrite.")]
    public string Kind { get; set; } = "";

    [Value(1, MetaName = "arguments", HelpText = "pmem: the path of the region. fua, randwrite: a device table (optional).")]
    public IEnumerable<string> Arguments { get; set; } = [];

    [Option("direct", HelpText = "fua, randwrite: open backing and cache with O_DIRECT.")]
    public bool Direct { get; set; }

    [Option("work-dir", HelpText = "fua, randwrite without a table: where the temporary files go (default: the system temp directory).")]
    public string? WorkDir { get; set; }

    [Option("mode", Default = "0", HelpText = "fua, randwrite without a table: 0 (RAM buffer), 1 (pmem buffer: a /dev/shm file, dax backend unless --pmem-backend block), or both (fua: mode 0 then mode 1 on the same files, side by side).")]
    public string Mode { get; set; } = "0";

    [Option("latency-svg", HelpText = "fua --mode both: also draw both modes' latency distributions (the share of writes slower than each latency, both axes log scale) into this SVG file.")]
    public string? LatencySvg { get; set; }

    [Option("latency-png", HelpText = "fua --mode both, with --latency-svg: also render the plot as this PNG file (needs rsvg-convert: Debian's librsvg2-bin).")]
    public string? LatencyPng { get; set; }

    [Option("writers", Default = 1, HelpText = "fua: how many threads write, each waiting for its own FUA writes (--ops is their total; IOPS is their sum).")]
    public int Writers { get; set; } = 1;

    [Option("independent", HelpText = "fua without a table, --writers N (N >= 2): also run the reference — N devices of their own, one writer each, at the same time — and report the IOPS ratio of the N writers on one device to it (JSON: independent, iops_ratio_to_independent).")]
    public bool Independent { get; set; }

    [Option("pool-size", Default = 8, HelpText = "fua: RAM (and mode-1 pmem) buffers in the pool (the device's default 8). A pool bigger than the run keeps writers from waiting for the cache device, so the writers' own cost is what is measured.")]
    public int PoolSize { get; set; } = 8;

    [Option("pmem-backend", Default = "dax", HelpText = "fua, randwrite without a table, mode 1: dax (a /dev/shm file) or block (a file in the work directory).")]
    public string PmemBackendName { get; set; } = "dax";

    internal int Run()
    {
        using Interruption interruption = Interruption.Watch();
        Cancel = interruption.Token;
        int exit = RunKind();
        if (interruption.Requested)
        {
            // The figures above are what was measured until the signal; stdout stays one document for --json.
            Console.Error.WriteLine($"wb: {interruption.Line("the benchmark stopped early")}");
            return interruption.ExitCode;
        }
        return exit;
    }

    [Option("target", HelpText = "fua, randwrite: a design of one's own instead of the writeboost device, PATH.dll[:Type] (as wb crashtest --target): opened on temporary files (a sparse 1 GiB backing file, its pmem region in /dev/shm or its cache as its geometry asks), then measured as the writeboost device is, with the floor (fua) or the reference (randwrite: the sequential bandwidth of its cache device, or of its backing device without one) in each round.")]
    public string? Target { get; set; }

    [Option("target-arg", HelpText = "With --target: Name=Value [Name=Value...] for parameters of the target's constructor (e.g. the size of its pmem region; one option, every value after it).")]
    public IEnumerable<string> TargetArguments { get; set; } = [];

    private int RunKind()
    {
        List<string> arguments = Arguments.ToList();
        if (Target is not null || TargetArguments.Any())
        {
            return RunOnTarget(arguments);
        }
        return Kind switch
        {
            "pmem" when arguments.Count == 1 => PmemCommands.Bench(this, arguments[0]),
            "pmem" => throw new UsageException("wb bench pmem takes exactly one PATH"),
            "fua" when Independent && Writers < 2 => throw new UsageException($"--independent: compares --writers N on one device with N devices; --writers {Writers} needs no reference (give 2 or more)"),
            "fua" when Independent && Mode == "both" => throw new UsageException("--independent: give --mode 0 or 1, not both"),
            "fua" when Mode == "both" && arguments.Count == 0 => RunFuaBothModes(RoundCount),
            "fua" => WithTable(arguments, defaultOps: 20_000, RunFua),
            "randwrite" => WithTable(arguments, defaultOps: 65_536, RunRandWrite),
            _ => throw new UsageException($"wb bench {Kind}: unknown benchmark (available: pmem, fua, randwrite)"),
        };
    }

    private int WithTable(List<string> arguments, long defaultOps, Func<DeviceTable, long, int> run)
    {
        long ops = Ops > 0 ? Ops : defaultOps;
        if (arguments.Count > 0)
        {
            if (Independent)
            {
                throw new UsageException("--independent: only without a TABLE (it makes a set of temporary files per writer)");
            }
            DeviceTable table = DeviceTable.Parse(arguments);
            PmemCommands.RefuseToOverwrite(table.CachePath, Force);
            if (table.PmemPath is not null)
            {
                PmemCommands.RefuseToOverwrite(table.PmemPath, Force);
            }
            return run(table, ops);
        }
        if (Mode != "0" && Mode != "1")
        {
            throw new UsageException($"--mode {Mode}: expected 0, 1 or (fua without a table) both");
        }
        _scratchDir = Path.Combine(WorkDir ?? Path.GetTempPath(), $"wb-bench-{Environment.ProcessId}");
        try
        {
            return run(CreateScratchTable(_scratchDir, ops), ops);
        }
        finally
        {
            foreach (string pmem in _scratchPmems)
            {
                File.Delete(pmem);
            }
            Directory.Delete(_scratchDir, recursive: true);
        }
    }

    private string? _scratchDir;
    private readonly List<string> _scratchPmems = [];

    /// <summary>
    /// Temporary files for one device of the current <see cref="Mode"/> in <paramref name="dir"/>: a sparse 1 GiB
    /// backing file, a cache file big enough that <paramref name="ops"/> writes never wrap the ring — written with
    /// zeros first, as a device's blocks exist (into a sparse file on tmpfs the flush worker spent 2.7–3.9 µs of CPU
    /// per 4 KiB block allocating and zeroing pages, against 1.0–1.4 µs into written ones) —, and in mode 1 a pmem file.
    /// </summary>
    private DeviceTable CreateScratchTable(string dir, long ops)
    {
        Directory.CreateDirectory(dir);
        string backing = Path.Combine(dir, "backing.img");
        string cache = Path.Combine(dir, "cache.img");
        FileBlockDevice.CreateFile(backing, 1L << 30);
        long cacheBytes = CacheGeometry.SuperblockRegionBytes + Math.Max(64L << 20, ops * Units.BlockBytes * 130 / 127 + (8L << 20));
        FileBlockDevice.CreateFile(cache, cacheBytes, zeroFill: true);
        if (Mode == "0")
        {
            return DeviceTable.Parse(["0", backing, cache]);
        }
        return DeviceTable.Parse(["1", backing, cache, PrepareDefaultPmem(dir), "pmem_backend", PmemBackendName]);
    }

    private FuaBenchResult MeasureFua(DeviceTable table, long ops)
    {
        if (PoolSize < 1)
        {
            throw new UsageException($"--pool-size {PoolSize}: expected at least 1");
        }
        using WriteboostDevice device = TableDevices.Open(table, new WriteboostOptions { Reformat = true, BufferPoolSize = PoolSize }, Direct);
        ProgressBar bar = ProgressBar.For($"fua, mode {(int)table.Mode}", Json);
        try
        {
            if (Writers < 1)
            {
                throw new UsageException($"--writers {Writers}: expected at least 1");
            }
            return CacheBenchmarks.Fua(device, (int)table.Mode, ops, MaxSeconds, progress: f => bar.Report(f), writers: Writers, cancel: Cancel);
        }
        finally
        {
            bar.Done();
        }
    }

    /// <summary>
    /// <see cref="RoundCount"/> rounds of the FUA benchmark on one table. With <c>--independent</c> each round measures
    /// both, the reference first in every other round (A B, B A, ...), so a busy moment of the machine falls on both.
    /// </summary>
    private int RunFua(DeviceTable table, long ops)
    {
        List<FuaBenchResult> rounds = [];
        for (int round = 0; round < RoundCount && !Cancel.IsCancellationRequested; round++)
        {
            if (!Independent)
            {
                rounds.Add(MeasureFua(table, ops));
                continue;
            }
            FuaBenchResult? independent = round % 2 == 1 ? MeasureFuaIndependent(ops) : null;
            FuaBenchResult shared = MeasureFua(table, ops);
            independent ??= MeasureFuaIndependent(ops);
            rounds.Add(shared with { Independent = independent, IopsRatioToIndependent = shared.Iops / independent.Iops });
        }
        FuaBenchResult result = FuaBenchResult.OfRounds(rounds);
        if (Json)
        {
            Output.Json(result);
            return 0;
        }
        PrintFua(result.Independent is null ? [result] : [result, result.Independent]);
        if (result.Rounds > 1)
        {
            Console.WriteLine($"rounds: {result.Rounds} (the row is the median round's); IOPS {result.IopsSpread!.Format("F0")}, p50 {result.P50Spread!.Format("F1", " us")}, p99 {result.P99Spread!.Format("F1", " us")}");
        }
        if (result.Independent is not null)
        {
            Console.WriteLine($"{Writers} writers on one device / {Writers} devices with one writer each, same run: IOPS ratio {result.IopsRatioToIndependentSpread!.Format("F2")}");
        }
        foreach (string warning in result.Warnings)
        {
            Console.WriteLine($"warning: {warning}");
        }
        return 0;
    }

    /// <summary>
    /// The reference for <c>--writers N</c>: N devices of their own (files, buffers, workers), one writer each, all
    /// at once in this process — the same work with nothing shared but the machine (its cores, caches and memory).
    /// </summary>
    private FuaBenchResult MeasureFuaIndependent(long ops)
    {
        List<WriteboostDevice> devices = [];
        try
        {
            for (int i = 0; i < Writers; i++)
            {
                DeviceTable table = CreateScratchTable(Path.Combine(_scratchDir!, $"independent-{i}"), ops / Writers);
                devices.Add(TableDevices.Open(table, new WriteboostOptions { Reformat = true, BufferPoolSize = PoolSize }, Direct));
            }
            ProgressBar bar = ProgressBar.For($"fua, mode {Mode}, {Writers} devices", Json);
            try
            {
                return CacheBenchmarks.Fua(devices, int.Parse(Mode, CultureInfo.InvariantCulture), ops, MaxSeconds, progress: f => bar.Report(f), writers: Writers, cancel: Cancel);
            }
            finally
            {
                bar.Done();
            }
        }
        finally
        {
            foreach (WriteboostDevice device in devices)
            {
                device.Dispose();
            }
        }
    }

    /// <summary>
    /// Mode 0 and mode 1 on the same backing and cache files, side by side, in <see cref="Rounds"/> rounds: each
    /// round measures mode 0, mode 1 and the floor (a bare 4 KiB write+persist of the same pmem file through the
    /// Pmem API, the least a mode-1 FUA write can cost), so a busy moment of the machine shows as a spread, not as a
    /// figure. Each figure is the rounds' median; the round whose IOPS ratio is the median is the one reported whole.
    /// </summary>
    private int RunFuaBothModes(int roundCount)
    {
        if (LatencyPng is not null && LatencySvg is null)
        {
            throw new UsageException("--latency-png: the PNG is rendered from the plot; give --latency-svg too");
        }
        Mode = "0";
        WithTable([], defaultOps: 20_000, (table, ops) =>
        {
            string pmem = PrepareDefaultPmem(Path.GetDirectoryName(table.CachePath)!);
            DeviceTable mode1Table = DeviceTable.Parse(["1", table.BackingPath, table.CachePath, pmem, "pmem_backend", PmemBackendName]);
            List<FuaRound> rounds = [];
            for (int round = 0; round < roundCount && !Cancel.IsCancellationRequested; round++)
            {
                FuaBenchResult mode0 = MeasureFua(table, ops);
                FuaBenchResult mode1 = MeasureFua(mode1Table, ops);
                PmemBenchResult floor = MeasureFloor(pmem, ops);
                rounds.Add(new FuaRound(mode0, mode1, floor));
            }
            FuaComparison comparison = FuaComparison.Of(rounds);
            if (Json)
            {
                Output.Json(comparison);
                return 0;
            }
            FuaRound median = comparison.MedianRound;
            PrintFua([median.Mode0, median.Mode1]);
            Console.WriteLine($"rounds: {rounds.Count} (each figure: the median, with the rounds' range)");
            Console.WriteLine($"mode 1 / mode 0 IOPS = {comparison.IopsRatioSpread.Format("F1", "x")}; mode 0 IOPS {comparison.Mode0Iops.Format("F0")}, mode 1 IOPS {comparison.Mode1Iops.Format("F0")}; full segments in mode 1: {median.Mode1.FullSegmentShare.ToString("P1", CultureInfo.InvariantCulture)}");
            Console.WriteLine($"floor, a bare 4 KiB write+persist of the same pmem file ({median.Floor.Backend}): p50 {comparison.FloorP50Us.Format("F2")} us; mode 1 FUA p50 {comparison.Mode1P50Us.Format("F2")} us = {comparison.Mode1P50OverFloor.Format("F1", "x")} the floor");
            foreach (string warning in comparison.Warnings)
            {
                Console.WriteLine($"warning: {warning}");
            }
            if (LatencySvg is not null)
            {
                File.WriteAllText(LatencySvg, LatencyPlot.CcdfSvg("4 KiB FUA writes, one writer: mode 0 (RAM buffer) vs mode 1 (pmem buffer)", "a 4 KiB FUA write",
                [
                    ($"mode 0: p50 {median.Mode0.P50Us:F0} µs, p99 {median.Mode0.P99Us:F0} µs", "#d62728", median.Mode0.LatenciesNs),
                    ($"mode 1: p50 {median.Mode1.P50Us:F1} µs, p99 {median.Mode1.P99Us:F1} µs", "#1f77b4", median.Mode1.LatenciesNs),
                ]));
                Console.WriteLine($"latency distributions drawn in {LatencySvg}");
                if (LatencyPng is not null)
                {
                    LatencyPlot.RenderPng(LatencySvg, LatencyPng);
                    Console.WriteLine($"and rendered in {LatencyPng}");
                }
            }
            return 0;
        });
        return 0;
    }

    /// <summary>
    /// <c>wb bench fua|randwrite --target</c>: a design of one's own, measured as the writeboost device is, in
    /// <see cref="RoundCount"/> rounds on fresh files of its geometry, each with its reference in the same round.
    /// fua: 4 KiB FUA writes at random offsets, the floor a bare 4 KiB write+persist of the same pmem file (designs
    /// compare by their multiple of the same floor). randwrite: random 4 KiB writes and a flush, against the
    /// sequential bandwidth of the device the design logs to — its cache device, or its backing device without one.
    /// </summary>
    private int RunOnTarget(List<string> arguments)
    {
        if (Target is null)
        {
            throw DesignLoading.ArgumentsWithoutTarget();
        }
        if (Kind is not ("fua" or "randwrite"))
        {
            throw new UsageException($"--target: wb bench fua and randwrite measure a design of one's own, not {Kind}");
        }
        if (Writers < 1 || (Kind == "randwrite" && Writers != 1))
        {
            throw new UsageException($"--writers {Writers}: expected at least 1 (fua), and randwrite has one writer");
        }
        if (arguments.Count > 0 || Independent || Mode != "0")
        {
            throw new UsageException("--target: the design is opened on temporary files of its own geometry; a TABLE, --mode and --independent are the writeboost device's");
        }
        Writeboost.CrashTest.Targets.LoadedTarget target = DesignLoading.Load(Target, [.. TargetArguments]);
        long ops = Ops > 0 ? Ops : Kind == "fua" ? 20_000 : 65_536;
        Writeboost.CrashTest.Targets.TargetGeometry geometry = target.GeometryFor(Writeboost.CrashTest.Workload.Nbd);
        string dir = Path.Combine(WorkDir ?? Path.GetTempPath(), $"wb-bench-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string pmemPath = geometry.PmemBackend == PmemBackend.Dax ? Path.Combine("/dev/shm", $"wb-bench-{Environment.ProcessId}-target.pmem") : Path.Combine(dir, "pmem.img");
        List<FuaBenchResult> fuaRounds = [];
        List<RandWriteBenchResult> randRounds = [];
        string reference = geometry.CacheBytes > 0 ? "cache" : "backing";
        try
        {
            for (int round = 0; round < RoundCount && !Cancel.IsCancellationRequested; round++)
            {
                string backingPath = Path.Combine(dir, "backing.img");
                string cachePath = Path.Combine(dir, "cache.img");
                // Fresh files every round: the design starts blank (and the last round's floor wrote over its pmem).
                foreach (string stale in new[] { backingPath, cachePath, pmemPath })
                {
                    File.Delete(stale);
                }
                FileBlockDevice.CreateFile(backingPath, Math.Max(geometry.BackingBytes, 1L << 30));
                FileBlockDevice.CreateFile(cachePath, Math.Max(geometry.CacheBytes, 4096), zeroFill: true);
                if (geometry.PmemBytes > 0)
                {
                    FileBlockDevice.CreateFile(pmemPath, geometry.PmemBytes, zeroFill: true);
                }
                double referenceBytesPerSecond = 0;
                if (Kind == "randwrite")
                {
                    // The reference first, on the device the design logs to, before the design formats it.
                    using FileBlockDevice logged = FileBlockDevice.Open(reference == "cache" ? cachePath : backingPath, new FileBlockDeviceOptions { Direct = Direct, Exclusive = true });
                    referenceBytesPerSecond = CacheBenchmarks.MeasureSequentialWrite(logged, 0, Math.Min(ops * Units.BlockBytes, logged.SizeBytes), (int)Math.Min(1L << 20, logged.SizeBytes));
                }
                using (FileBlockDevice backing = FileBlockDevice.Open(backingPath, new FileBlockDeviceOptions { Direct = Direct, Exclusive = true }))
                using (FileBlockDevice cache = FileBlockDevice.Open(cachePath, new FileBlockDeviceOptions { Direct = Direct, Exclusive = true }))
                using (PmemRegion? pmem = geometry.PmemBytes > 0 ? PmemApi.Alloc(pmemPath, 0, -1, geometry.PmemBackend, deviceLock: DeviceLock.Exclusive) : null)
                using (Writeboost.CrashTest.Targets.ICrashTargetDevice device = target.Open(new Writeboost.CrashTest.Targets.TargetDevices(backing, cache, pmem), new Writeboost.CrashTest.Targets.TargetOpen(Live: true, 0, 1)))
                {
                    ProgressBar bar = ProgressBar.For($"{Kind}, {target.Name}", Json);
                    try
                    {
                        if (Kind == "fua")
                        {
                            fuaRounds.Add(CacheBenchmarks.Fua([device], -1, ops, MaxSeconds, progress: f => bar.Report(f), writers: Writers, cancel: Cancel) with { Target = target.Name });
                        }
                        else
                        {
                            randRounds.Add(CacheBenchmarks.RandWrite(device, ops, referenceBytesPerSecond, cancel: Cancel) with { Target = target.Name, ReferenceDevice = reference });
                        }
                    }
                    finally
                    {
                        bar.Done();
                    }
                }
                if (Kind == "fua" && geometry.PmemBytes > 0 && geometry.PmemBackend == PmemBackend.Dax)
                {
                    fuaRounds[^1] = fuaRounds[^1] with { FloorP50Us = MeasureFloor(pmemPath, ops).P50Ns / 1000.0 };
                }
            }
        }
        finally
        {
            File.Delete(pmemPath);
            Directory.Delete(dir, recursive: true);
        }
        if (Kind == "randwrite")
        {
            return PrintRandWrite(RandWriteBenchResult.OfRounds(randRounds), $"target: {target.Identity}");
        }
        FuaBenchResult result = FuaBenchResult.OfRounds(fuaRounds);
        if (Json)
        {
            Output.Json(result);
            return 0;
        }
        Console.WriteLine($"target: {target.Identity}");
        PrintFua([result]);
        Console.WriteLine($"rounds: {result.Rounds} (the row is the median round's); IOPS {result.IopsSpread!.Format("F0")}, p50 {result.P50Spread!.Format("F2", " us")}");
        if (result.P50OverFloorSpread is { } overFloor)
        {
            Console.WriteLine($"floor, a bare 4 KiB write+persist of the same pmem file: p50 {result.FloorP50Us!.Value.ToString("F2", CultureInfo.InvariantCulture)} us (median round); FUA p50 = {overFloor.Format("F1", "x")} the floor");
        }
        foreach (string warning in result.Warnings)
        {
            Console.WriteLine($"warning: {warning}");
        }
        return 0;
    }

    /// <summary>The floor of a mode-1 FUA write: one thread, 4 KiB write+persist at random offsets of the pmem file, through the Pmem API.</summary>
    private PmemBenchResult MeasureFloor(string pmem, long ops)
    {
        PmemBackend backend = PmemBackendName == "block" ? PmemBackend.Block : PmemBackend.Dax;
        using PmemRegion region = PmemApi.Alloc(pmem, 0, -1, backend, deviceLock: DeviceLock.Exclusive);
        return new PmemBenchmark { Ops = ops, BlockBytes = Units.BlockBytes, MaxSeconds = MaxSeconds, Cancel = Cancel }.Run(region);
    }

    private string PrepareDefaultPmem(string dir)
    {
        string path = PmemBackendName switch
        {
            "dax" => Path.Combine("/dev/shm", _scratchPmems.Count == 0 ? $"wb-bench-{Environment.ProcessId}.pmem" : $"wb-bench-{Environment.ProcessId}-{_scratchPmems.Count}.pmem"),
            "block" => Path.Combine(dir, "pmem.img"),
            _ => throw new UsageException($"--pmem-backend {PmemBackendName}: expected dax or block"),
        };
        // Room for the pool at the largest segment size (a buffer: 1 MiB of data, its header and records).
        FileBlockDevice.CreateFile(path, Math.Max(64L << 20, (PoolSize + 1) * ((1L << 20) + (16L << 10))));
        _scratchPmems.Add(path);
        return path;
    }

    /// <summary>The results as a table; a "devices" column (after "writers") only when a result spread its writers over several.</summary>
    private static void PrintFua(IReadOnlyList<FuaBenchResult> results)
    {
        bool devices = results.Any(r => r.Devices > 1);
        List<string[]> rows = [["mode", "writers", .. devices ? new[] { "devices" } : [], "ops", "IOPS", "p50 us", "p99 us", "full segs", "partial segs", "cache B/user B", "cache flushes"]];
        foreach (FuaBenchResult result in results)
        {
            rows.Add([result.Mode < 0 ? "-" : Fmt(result.Mode), Fmt(result.Writers), .. devices ? new[] { Fmt(result.Devices) } : [], Fmt(result.Ops), Fmt(result.Iops, "F0"), Fmt(result.P50Us, "F1"), Fmt(result.P99Us, "F1"),
                Fmt(result.FullSegments), Fmt(result.PartialSegments), Fmt(result.CacheBytesPerUserByte, "F2"), Fmt(result.CacheFlushes)]);
        }
        Output.Table(rows);
    }

    private int RunRandWrite(DeviceTable table, long ops)
    {
        int roundCount = RoundCount;
        List<RandWriteBenchResult> rounds = [];
        for (int round = 0; round < roundCount && !Cancel.IsCancellationRequested; round++)
        {
            // The reference first, on the same cache device, before the benchmark formats it: in every round.
            double sequential;
            using (FileBlockDevice cache = FileBlockDevice.Open(table.CachePath, new FileBlockDeviceOptions { Direct = Direct, Exclusive = true }))
            {
                CacheGeometry geometry = CacheGeometry.For(cache.SizeBytes, table.CreateTunables().SegmentSizeOrder, cache.Name);
                long total = ops * Units.BlockBytes * (geometry.BlocksPerSegment + 1) / geometry.BlocksPerSegment;
                sequential = CacheBenchmarks.MeasureSequentialWrite(cache, CacheGeometry.SuperblockRegionBytes, total, (int)geometry.SegmentSizeBytes);
            }
            using WriteboostDevice device = TableDevices.Open(table, new WriteboostOptions { Reformat = true }, Direct);
            rounds.Add(CacheBenchmarks.RandWrite(device, (int)table.Mode, ops, sequential, cancel: Cancel));
        }
        return PrintRandWrite(RandWriteBenchResult.OfRounds(rounds), header: null);
    }

    /// <summary>The result as a table (or JSON); <paramref name="header"/> first, when given (a design's identity).</summary>
    private int PrintRandWrite(RandWriteBenchResult result, string? header)
    {
        if (Json)
        {
            Output.Json(result);
            return 0;
        }
        if (header is not null)
        {
            Console.WriteLine(header);
        }
        string referenceColumn = result.ReferenceDevice == "backing" ? "backing seq MiB/s" : "cache seq MiB/s";
        Output.Table(
        [
            ["mode", "ops", "IOPS", "MiB/s", referenceColumn, "ratio", "full segs", "partial segs", "cache MiB written"],
            [result.Mode < 0 ? "-" : Fmt(result.Mode), Fmt(result.Ops), Fmt(result.Iops, "F0"), Fmt(result.BytesPerSecond / (1 << 20), "F1"),
                Fmt(result.CacheSequentialBytesPerSecond / (1 << 20), "F1"), Fmt(result.RatioToCacheSequential, "F2"),
                Fmt(result.FullSegments), Fmt(result.PartialSegments), Fmt(result.CacheBytesWritten / (double)(1 << 20), "F1")],
        ]);
        if (result.Rounds > 1)
        {
            Console.WriteLine($"rounds: {result.Rounds} (the row is the median round's); ratio {result.RatioSpread!.Format("F2")}, IOPS {result.IopsSpread!.Format("F0")}, {referenceColumn} {result.CacheSequentialSpread!.Times(1.0 / (1 << 20)).Format("F1")}");
        }
        foreach (string warning in result.Warnings)
        {
            Console.WriteLine($"warning: {warning}");
        }
        return 0;
    }

    private static string Fmt(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Fmt(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
