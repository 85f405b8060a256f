using System.Diagnostics;
using Writeboost.Cache.Core;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Table;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.States;
using Writeboost.Devices;

namespace Writeboost.CrashTest;

/// <summary>The built-in workloads.</summary>
public enum Workload
{
    /// <summary>Random sub-block writes (1..12 sectors, across block boundaries) with a FUA and flush mix.</summary>
    Random,
    /// <summary>Overwrites of a few blocks, partial and whole: exercises merging and copy-on-write.</summary>
    Overwrite,
    /// <summary>Whole-block writes over a tiny ring: the ring wraps, writeback and the superblock record run.</summary>
    Wrap,
    /// <summary>A real client's requests through the NBD server (e.g. fio's nbd engine), over a 1 MiB device.</summary>
    Nbd,
}

/// <summary>One campaign: a workload run in one mode, recorded, then crash states checked.</summary>
public sealed record CampaignSpec(CacheMode Mode, Workload Workload, int Seed, int Ops, long MaxStates, string Mutant = "none", int Shard = 0, int Shards = 1);

/// <summary>What a campaign found.</summary>
public sealed record CampaignResult(
    CampaignSpec Spec,
    int Events,
    long StatesGenerated,
    long StatesChecked,
    long Violations,
    double Seconds,
    string? FirstViolation,
    int? FirstViolationCrashPoint,
    int? FirstViolationVariant)
{
    /// <summary>Of the states checked, those made by crashing recovery itself and recovering again.</summary>
    public long RecoveryCrashStates { get; init; }

    public double StatesPerSecond => StatesChecked / Math.Max(Seconds, 1e-9);
}

/// <summary>
/// Runs a workload against a writeboost device whose backing, cache and pmem devices are recorded, then
/// generates the crash states real hardware allows at every point of the log, recovers each one and checks
/// the oracle. At each crash point: the state where nothing non-durable survived, the one where everything
/// did, every subset of the non-durable block writes when there are few (no tearing), and seeded random states
/// beyond that — each non-durable write lost, kept or torn per sector, in a random order, and each pmem line
/// holding a random prefix of its pending stores. A state is reproducible from the saved log, its crash point
/// and its variant number.
/// </summary>
public static class Campaign
{
    private const int SegmentSizeOrder = 5; // 16 KiB segments of 3 blocks: small rings, many seals and wraps
    internal const int PoolSize = 2;
    private const int ExhaustiveLimit = 3;
    /// <summary>One state in this many is also crashed during its own recovery (each such check costs a whole recovery log of states).</summary>
    private const int RecoveryCrashEvery = 100;

    /// <summary>The seeded bugs, by name, with the mode and workload that exposes each.</summary>
    public static IReadOnlyList<(string Name, CacheMode Mode, Workload Workload, string Meaning)> Mutants { get; } =
    [
        ("ack-before-pmem-persist", CacheMode.Persistent, Workload.Random, "mode 1: acknowledge before the pmem lines are written back and fenced"),
        ("drop-pmem-fence", CacheMode.Persistent, Workload.Random, "mode 1: write back the pmem lines but drop the fence"),
        ("skip-cache-flush-before-ack", CacheMode.Volatile, Workload.Random, "mode 0: acknowledge a FUA/flush after writing the partial log, without flushing the cache device"),
        ("trust-segment-without-checksum", CacheMode.Volatile, Workload.Random, "replay a segment without verifying its checksum"),
        ("replay-stale-after-gap", CacheMode.Volatile, Workload.Wrap, "replay like the kernel: every valid slot in ring order, across id gaps"),
        ("reuse-slot-before-writeback-flushed", CacheMode.Volatile, Workload.Wrap, "free ring slots after writeback without flushing the backing store"),
        ("poison-torn-tail", CacheMode.Volatile, Workload.Random, "take a crash's torn segment for damage to durable data: poison its blocks"),
    ];

    /// <summary>Throws a clear error unless <paramref name="name"/> is "none" or a mutant's name.</summary>
    public static void ParseMutantName(string name) => ParseMutant(name);

    internal static Mutant ParseMutant(string name) => name switch
    {
        "none" => Mutant.None,
        "ack-before-pmem-persist" => Mutant.AckBeforePmemPersist,
        "drop-pmem-fence" => Mutant.DropPmemFence,
        "skip-cache-flush-before-ack" => Mutant.SkipCacheFlushBeforeAck,
        "trust-segment-without-checksum" => Mutant.TrustSegmentWithoutChecksum,
        "replay-stale-after-gap" => Mutant.ReplayStaleAfterGap,
        "reuse-slot-before-writeback-flushed" => Mutant.ReuseSlotBeforeWritebackFlushed,
        "poison-torn-tail" => Mutant.PoisonTornTail,
        "claim-nothing-durable" => Mutant.ClaimNothingDurable, // the corruption sweep's: recorded with it, a workload writes headers that vouch for nothing
        _ => throw new ArgumentException($"unknown mutant {name} (see --list-mutants)"),
    };

    internal sealed record Geometry(long BackingBytes, long CacheBytes, long PmemBytes, Dictionary<string, long> Keys);

    internal static Geometry GeometryFor(Workload workload)
    {
        int segments = workload switch { Workload.Wrap => 4, Workload.Nbd => 12, _ => 6 };
        long pmemBytes = new PmemLayout(SegmentSizeOrder, PoolSize, 3).RegionBytes;
        return new Geometry(
            workload switch { Workload.Wrap => 128 * 1024, Workload.Nbd => 1 << 20, _ => 64 * 1024 },
            (1 << 20) + segments * (512L << SegmentSizeOrder),
            pmemBytes,
            new Dictionary<string, long> { ["segment_size_order"] = SegmentSizeOrder });
    }

    /// <summary>
    /// Records a real client's workload: the device (every device under it recorded) is served over NBD on a
    /// unix socket and <paramref name="client"/> runs against it — its arguments with <c>{uri}</c> replaced by
    /// the export's URI (e.g. fio --ioengine=nbd --uri={uri} ...). The client's requests are the marks.
    /// </summary>
    public static CrashLog RecordFromNbdClient(CampaignSpec spec, string client, IReadOnlyList<string> arguments, out string clientOutput)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(arguments);
        CrashLog log = new();
        WriteboostDevice device = OpenRecorded(spec with { Workload = Workload.Nbd }, log);
        string socket = Path.Combine(Path.GetTempPath(), $"wb-crash-nbd-{Environment.ProcessId}-{Guid.NewGuid():N}.sock");
        try
        {
            using Nbd.NbdServer server = new(new RecordingUserDevice(device, log));
            server.Start(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
            ProcessStartInfo start = new(client) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string argument in arguments)
            {
                start.ArgumentList.Add(argument.Replace("{uri}", $"nbd+unix:///?socket={socket}", StringComparison.Ordinal));
            }
            using Process process = Process.Start(start) ?? throw new InvalidOperationException($"{client} did not start");
            Task<string> errors = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            clientOutput = output + errors.Result;
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{client} failed (exit {process.ExitCode}): {clientOutput.Trim()}");
            }
            server.Stop();
        }
        finally
        {
            device.Abandon(); // the crash
            File.Delete(socket);
        }
        return log;
    }

    /// <summary>Runs the workload with every device recorded; returns the log.</summary>
    public static CrashLog Record(CampaignSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        CrashLog log = new();
        WriteboostDevice device = OpenRecorded(spec, log);
        try
        {
            RunWorkload(device, log, spec);
        }
        finally
        {
            device.Abandon(); // the crash: nothing more is written
        }
        return log;
    }

    /// <summary>A writeboost device on in-memory devices whose every write, flush, store, write-back and fence goes into <paramref name="log"/>.</summary>
    private static WriteboostDevice OpenRecorded(CampaignSpec spec, CrashLog log)
    {
        Geometry geometry = GeometryFor(spec.Workload);
        RecordingBlockDevice backing = new(new MemoryBlockDevice(geometry.BackingBytes, name: "backing"), log, DeviceId.Backing);
        RecordingBlockDevice cache = new(new MemoryBlockDevice(geometry.CacheBytes, name: "cache"), log, DeviceId.Cache);
        RecordingPmemRegion? pmem = spec.Mode == CacheMode.Persistent ? new RecordingPmemRegion(new MemoryPmemRegion(geometry.PmemBytes), log) : null;
        WriteboostOptions options = new() { BufferPoolSize = PoolSize, Mutant = ParseMutant(spec.Mutant) };
        return WriteboostDevice.Open(backing, cache, new Tunables(geometry.Keys), options, pmem);
    }

    private static void RunWorkload(WriteboostDevice device, CrashLog log, CampaignSpec spec)
    {
        Random random = new(spec.Seed);
        int sectors = (int)(device.SizeBytes / 512);
        for (int op = 0; op < spec.Ops; op++)
        {
            int roll = random.Next(100);
            if (roll < 8)
            {
                int flush = log.Append(new CrashEvent(EventKind.UserFlush, DeviceId.User, 0, 0, null, false, -1));
                device.Flush();
                log.Append(new CrashEvent(EventKind.UserFlushAck, DeviceId.User, 0, 0, null, false, flush));
                continue;
            }
            (long offset, int length) = spec.Workload switch
            {
                Workload.Random => RandomRange(random, sectors, 12),
                Workload.Overwrite => RandomRange(random, 4 * 8, 8),
                _ => (random.Next(sectors / 8) * 4096L, 4096),
            };
            bool fua = roll < (spec.Workload == Workload.Wrap ? 40 : 25);
            byte[] data = new byte[length];
            random.NextBytes(data);
            int issued = log.Append(new CrashEvent(EventKind.UserWrite, DeviceId.User, offset, length, data, fua, -1));
            device.Write(offset, data, fua ? WriteOptions.Fua : WriteOptions.None);
            log.Append(new CrashEvent(EventKind.UserWriteAck, DeviceId.User, offset, length, null, fua, issued));
        }
    }

    internal static (long Offset, int Length) RandomRange(Random random, int sectors, int maxSectors)
    {
        int length = random.Next(1, maxSectors + 1);
        return (random.Next(0, sectors - length + 1) * 512L, length * 512);
    }

    /// <summary>Records the workload, then checks crash states until <see cref="CampaignSpec.MaxStates"/> or the first violation (when <paramref name="stopAtFirst"/>).</summary>
    public static CampaignResult Run(CampaignSpec spec, bool stopAtFirst = false, Action<long, long>? progress = null, CrashLog? log = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        log ??= Record(spec);
        return Check(spec, log, stopAtFirst, progress);
    }

    /// <summary>Checks crash states of a recorded log (also: replays a saved log).</summary>
    public static CampaignResult Check(CampaignSpec spec, CrashLog log, bool stopAtFirst, Action<long, long>? progress = null, int? onlyCrashPoint = null, int? onlyVariant = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(log);
        Geometry geometry = GeometryFor(spec.Workload);
        IReadOnlyList<CrashEvent> events = log.Events;
        Oracle oracle = new(events);
        BlockTimeline backing = new(DeviceId.Backing, geometry.BackingBytes);
        BlockTimeline cache = new(DeviceId.Cache, geometry.CacheBytes);
        PmemTimeline pmem = new(geometry.PmemBytes);
        Mutant mutant = ParseMutant(spec.Mutant);

        // Crash points: after the first user event (the format before it is not crash-safe by design), every
        // event up to the end; spread over the budget and the shard.
        int first = Math.Max(0, events.Select((e, i) => (e, i)).FirstOrDefault(x => x.e.Device == DeviceId.User).i);
        int points = events.Count + 1 - first;
        int statesPerPoint = Math.Max(2, (int)Math.Min(64, spec.MaxStates / Math.Max(1, points)));
        Stopwatch clock = Stopwatch.StartNew();
        long generated = 0;
        long checkedStates = 0;
        long violations = 0;
        long recoveryCrashStates = 0;
        string? firstViolation = null;
        int? firstPoint = null;
        int? firstVariant = null;
        int applied = 0;
        for (int point = first; point <= events.Count; point++)
        {
            for (; applied < point; applied++)
            {
                backing.Apply(applied, events[applied]);
                cache.Apply(applied, events[applied]);
                pmem.Apply(events[applied]);
            }
            if ((point - first) % spec.Shards != spec.Shard || (onlyCrashPoint is { } only && only != point))
            {
                continue;
            }
            int variants = VariantCount(backing, cache, pmem, statesPerPoint);
            for (int variant = 0; variant < variants; variant++)
            {
                if (onlyVariant is { } v && v != variant)
                {
                    continue;
                }
                generated++;
                string? problem = VerifyState(spec, geometry, oracle, backing, cache, pmem, point, variant, mutant);
                checkedStates++;
                if (problem is null && (checkedStates % RecoveryCrashEvery) == 0)
                {
                    (int states, string? nested) = CrashDuringRecovery(spec, geometry, oracle, backing, cache, pmem, point, variant, mutant);
                    generated += states;
                    checkedStates += states;
                    recoveryCrashStates += states;
                    problem = nested;
                }
                if (problem is not null)
                {
                    violations++;
                    if (firstViolation is null)
                    {
                        firstViolation = problem;
                        firstPoint = point;
                        firstVariant = variant;
                    }
                    if (stopAtFirst)
                    {
                        return new CampaignResult(spec, events.Count, generated, checkedStates, violations, clock.Elapsed.TotalSeconds, firstViolation, firstPoint, firstVariant) { RecoveryCrashStates = recoveryCrashStates };
                    }
                }
                if (checkedStates >= spec.MaxStates)
                {
                    return new CampaignResult(spec, events.Count, generated, checkedStates, violations, clock.Elapsed.TotalSeconds, firstViolation, firstPoint, firstVariant) { RecoveryCrashStates = recoveryCrashStates };
                }
            }
            progress?.Invoke(checkedStates, spec.MaxStates);
        }
        return new CampaignResult(spec, events.Count, generated, checkedStates, violations, clock.Elapsed.TotalSeconds, firstViolation, firstPoint, firstVariant) { RecoveryCrashStates = recoveryCrashStates };
    }

    private static int VariantCount(BlockTimeline backing, BlockTimeline cache, PmemTimeline pmem, int perPoint)
    {
        int nonDurable = backing.NotDurable.Count + cache.NotDurable.Count;
        if (nonDurable == 0 && pmem.PendingLines.Count == 0)
        {
            return 1; // only one state is possible here
        }
        return Math.Max(2 + Subsets(nonDurable, pmem) + SingleChanges(nonDurable, pmem), perPoint);
    }

    /// <summary>Every subset of the non-durable block writes, when they are few and no pmem line is pending.</summary>
    private static int Subsets(int nonDurable, PmemTimeline pmem) =>
        nonDurable <= ExhaustiveLimit && pmem.PendingLines.Count == 0 ? 1 << nonDurable : 0;

    /// <summary>Chipmunk-style bounded subsets (k = 1 from both ends): each write alone, and all but each write.</summary>
    private static int SingleChanges(int nonDurable, PmemTimeline pmem) =>
        Subsets(nonDurable, pmem) == 0 && nonDurable <= 32 ? 2 * nonDurable : 0;

    /// <summary>
    /// Builds state <paramref name="variant"/> at crash point <paramref name="point"/>, recovers it and checks the oracle.
    /// Variant 0: nothing non-durable survived; 1: all of it, in issue order; then the subsets of n ≤ 3
    /// non-durable block writes (whole), or for up to 32 of them each one alone and all but each one; beyond:
    /// seeded random (lost / kept / torn per sector, any order; a random prefix of each pmem line's pending stores).
    /// </summary>
    private static string? VerifyState(CampaignSpec spec, Geometry geometry, Oracle oracle, BlockTimeline backingTimeline, BlockTimeline cacheTimeline, PmemTimeline pmemTimeline, int point, int variant, Mutant mutant)
    {
        (PagedBlockDevice backing, PagedBlockDevice cache, MemoryPmemRegion? pmem) = BuildState(spec, geometry, backingTimeline, cacheTimeline, pmemTimeline, point, variant);
        return RecoverAndCheck(geometry, oracle, point, mutant, backing, cache, pmem);
    }

    internal static (PagedBlockDevice Backing, PagedBlockDevice Cache, MemoryPmemRegion? Pmem) BuildState(CampaignSpec spec, Geometry geometry, BlockTimeline backingTimeline, BlockTimeline cacheTimeline, PmemTimeline pmemTimeline, int point, int variant)
    {
        PagedBlockDevice backing = new(backingTimeline.Durable, "backing");
        PagedBlockDevice cache = new(cacheTimeline.Durable, "cache");
        MemoryPmemRegion? pmem = pmemTimeline.Durable.Length > 0 && spec.Mode == CacheMode.Persistent ? new MemoryPmemRegion(geometry.PmemBytes, pmemTimeline.Durable) : null;
        List<(PagedBlockDevice Device, CrashEvent Write)> nonDurable =
            [.. backingTimeline.NotDurable.Select(w => (backing, w)), .. cacheTimeline.NotDurable.Select(w => (cache, w))];
        Random random = new(StateSeed.Of(spec.Seed, point, variant));
        int subsets = Subsets(nonDurable.Count, pmemTimeline);
        int singles = SingleChanges(nonDurable.Count, pmemTimeline);
        if (variant == 1)
        {
            foreach ((PagedBlockDevice device, CrashEvent write) in nonDurable)
            {
                device.Image.Write(write.OffsetBytes, write.Data);
            }
            ApplyPmem(pmem, pmemTimeline, random, all: true);
        }
        else if (variant >= 2 && variant < 2 + subsets)
        {
            int mask = variant - 2;
            for (int i = 0; i < nonDurable.Count; i++)
            {
                if ((mask & (1 << i)) != 0)
                {
                    nonDurable[i].Device.Image.Write(nonDurable[i].Write.OffsetBytes, nonDurable[i].Write.Data);
                }
            }
        }
        else if (variant >= 2 + subsets && variant < 2 + subsets + singles)
        {
            // k = 1 subsets: write i alone (first n variants) or every write but i (next n), pmem as durable.
            int k = variant - 2 - subsets;
            bool alone = k < nonDurable.Count;
            int chosen = alone ? k : k - nonDurable.Count;
            for (int i = 0; i < nonDurable.Count; i++)
            {
                if ((i == chosen) == alone)
                {
                    nonDurable[i].Device.Image.Write(nonDurable[i].Write.OffsetBytes, nonDurable[i].Write.Data);
                }
            }
        }
        else if (variant >= 2)
        {
            foreach ((PagedBlockDevice device, CrashEvent write) in nonDurable.OrderBy(_ => random.Next()))
            {
                int fate = random.Next(3);
                if (fate == 1)
                {
                    device.Image.Write(write.OffsetBytes, write.Data);
                }
                else if (fate == 2)
                {
                    // Torn at sector granularity: each sector old or new, independently.
                    for (int s = 0; s < write.LengthBytes / 512; s++)
                    {
                        if (random.Next(2) == 0)
                        {
                            device.Image.Write(write.OffsetBytes + s * 512, write.Data.AsSpan(s * 512, 512));
                        }
                    }
                }
            }
            ApplyPmem(pmem, pmemTimeline, random, all: false);
        }
        return (backing, cache, pmem);
    }

    /// <summary>What each recovered state reads as: one buffer per thread, not one (often large-object) array per state.</summary>
    [ThreadStatic]
    private static byte[]? t_content;

    /// <summary>Recovers a crash state and checks the oracle for a crash at <paramref name="point"/>.</summary>
    internal static string? RecoverAndCheck(Geometry geometry, Oracle oracle, int point, Mutant mutant, IBlockDevice backing, IBlockDevice cache, Writeboost.Pmem.PmemRegion? pmem)
    {
        WriteboostOptions options = new() { BufferPoolSize = PoolSize, WithoutWorkers = true, Mutant = mutant };
        WriteboostDevice recovered;
        try
        {
            recovered = WriteboostDevice.Open(backing, cache, new Tunables(geometry.Keys), options, pmem);
        }
#pragma warning disable CA1031 // Any exception out of recovery is a violation to report, never to let through.
        catch (Exception error)
        {
            return $"recovery threw {error.GetType().Name}: {error.Message}";
        }
#pragma warning restore CA1031
        try
        {
            if (t_content is null || t_content.Length != recovered.SizeBytes)
            {
                t_content = new byte[recovered.SizeBytes];
            }
            // A pure crash never loses durable data, so it must never poison anything (damaged media may; a crash may not).
            if (recovered.Recovery.PoisonedBlocks > 0)
            {
                return $"recovery poisoned {recovered.Recovery.PoisonedBlocks} block(s) after a pure crash (a torn write taken for damage): {string.Join("; ", recovered.Recovery.Segments.Select(s => $"segment {s.Id}: {s.Kind}, {s.Detail}"))}";
            }
            recovered.Read(0, t_content);
            return oracle.Check(point, t_content);
        }
        finally
        {
            recovered.Abandon();
        }
    }

    /// <summary>
    /// Crashes recovery itself: recovers the state once with its devices recorded, then, at every point of
    /// recovery's own I/O, makes the crash states the model allows (durable part, nothing / everything / a random
    /// mix of the rest), recovers again, and checks the same oracle. Returns the states checked and the first problem.
    /// </summary>
    private static (int States, string? Problem) CrashDuringRecovery(CampaignSpec spec, Geometry geometry, Oracle oracle, BlockTimeline backingTimeline, BlockTimeline cacheTimeline, PmemTimeline pmemTimeline, int point, int variant, Mutant mutant)
    {
        (PagedBlockDevice backing, PagedBlockDevice cache, MemoryPmemRegion? pmem) = BuildState(spec, geometry, backingTimeline, cacheTimeline, pmemTimeline, point, variant);
        byte[] backingImage = Materialize(backing.Image);
        byte[] cacheImage = Materialize(cache.Image);
        byte[] pmemImage = pmem is null ? [] : Materialize(pmem.Image);

        CrashLog recovery = new();
        MemoryBlockDevice recordedBacking = new(backingImage.Length, name: "backing");
        MemoryBlockDevice recordedCache = new(cacheImage.Length, name: "cache");
        backingImage.CopyTo(recordedBacking.Media);
        cacheImage.CopyTo(recordedCache.Media);
        RecordingPmemRegion? recordedPmem = pmem is null ? null : new RecordingPmemRegion(new MemoryPmemRegion(pmemImage.Length, pmemImage.ToArray()), recovery);
        WriteboostOptions options = new() { BufferPoolSize = PoolSize, WithoutWorkers = true, Mutant = mutant };
        try
        {
            WriteboostDevice.Open(
                new RecordingBlockDevice(recordedBacking, recovery, DeviceId.Backing),
                new RecordingBlockDevice(recordedCache, recovery, DeviceId.Cache),
                new Tunables(geometry.Keys), options, recordedPmem).Abandon();
        }
#pragma warning disable CA1031 // Any exception out of recovery is a violation to report.
        catch (Exception error)
        {
            return (1, $"recovery threw {error.GetType().Name}: {error.Message}");
        }
#pragma warning restore CA1031

        BlockTimeline b = new(DeviceId.Backing, backingImage.ToArray());
        BlockTimeline c = new(DeviceId.Cache, cacheImage.ToArray());
        PmemTimeline p = new(pmemImage.ToArray());
        CampaignSpec inner = spec with { Mode = pmem is null ? CacheMode.Volatile : CacheMode.Persistent };
        int states = 0;
        IReadOnlyList<CrashEvent> events = recovery.Events;
        for (int q = 0; q <= events.Count; q++)
        {
            if (q > 0)
            {
                b.Apply(q - 1, events[q - 1]);
                c.Apply(q - 1, events[q - 1]);
                p.Apply(events[q - 1]);
            }
            int variants = b.NotDurable.Count + c.NotDurable.Count + p.PendingLines.Count == 0 ? 1 : 3;
            for (int v = 0; v < variants; v++)
            {
                // Variants 0 and 1 as usual; 2 is a seeded random mix (variant numbers past the subset range).
                (PagedBlockDevice sb, PagedBlockDevice sc, MemoryPmemRegion? sp) = BuildState(inner, geometry, b, c, p, point * 7919 + q, v < 2 ? v : 1000);
                states++;
                if (RecoverAndCheck(geometry, oracle, point, mutant, sb, sc, sp) is { } problem)
                {
                    return (states, $"after a crash at event {q} of recovery's own I/O: {problem}");
                }
            }
        }
        return (states, null);
    }

    internal static byte[] Materialize(PagedImage image)
    {
        byte[] bytes = new byte[image.LengthBytes];
        image.Read(0, bytes);
        return bytes;
    }

    private static void ApplyPmem(MemoryPmemRegion? pmem, PmemTimeline timeline, Random random, bool all)
    {
        if (pmem is null)
        {
            return;
        }
        byte[] line = new byte[PmemTimeline.LineBytes];
        foreach ((long index, List<(int OffsetInLine, byte[] Bytes)> stores) in timeline.PendingLines)
        {
            int count = all ? stores.Count : random.Next(stores.Count + 1);
            if (count == 0)
            {
                continue;
            }
            pmem.Read(index * PmemTimeline.LineBytes, line);
            PmemTimeline.ApplyPrefix(line.AsSpan(), 0, stores, count);
            pmem.Write(index * PmemTimeline.LineBytes, line);
        }
    }
}
