using System.Diagnostics;
using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Devices;

namespace Writeboost.Bench;

/// <summary>What <c>wb bench fua</c> measured (JSON names per the CLI contract).</summary>
public sealed record FuaBenchResult(
    int Mode, long Ops, double Seconds, double Iops, double MeanUs, double P50Us, double P99Us, double P999Us,
    long UserBytes, long CacheBytesWritten, double CacheBytesPerUserByte, long FullSegments, long PartialSegments,
    double FullSegmentShare, long CacheFlushes)
{
    /// <summary>Every write's latency, for plots (not in the JSON).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public IReadOnlyList<long> LatenciesNs { get; init; } = [];

    /// <summary>How many threads wrote (each waiting for its own FUA writes); <see cref="Iops"/> is their sum.</summary>
    public int Writers { get; init; } = 1;

    /// <summary>How many devices the writers wrote to (writer w to device w mod devices): 1, or one per writer for the reference.</summary>
    public int Devices { get; init; } = 1;

    /// <summary><c>--independent</c>: the same writers, each on a device of its own, at the same time (else null).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public FuaBenchResult? Independent { get; init; }

    /// <summary><c>--independent</c>: <see cref="Iops"/> over <see cref="Independent"/>'s (else null).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public double? IopsRatioToIndependent { get; init; }

    /// <summary>How many rounds were measured; the fields above are the median round's (by IOPS, or by the ratio to the independent reference).</summary>
    public int Rounds { get; init; } = 1;

    /// <summary>Over the rounds (null for a single result not yet summarised).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public Spread? IopsSpread { get; init; }

    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public Spread? P50Spread { get; init; }

    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public Spread? P99Spread { get; init; }

    /// <summary><c>--independent</c>: the ratio over the rounds, each round measuring both (alternating which goes first).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public Spread? IopsRatioToIndependentSpread { get; init; }

    /// <summary>A line per figure whose rounds disagree by more than <see cref="Spread.WideAbove"/>.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary><c>--target</c>: the design measured instead of the writeboost device (its name; <see cref="Mode"/> is then -1).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Target { get; init; }

    /// <summary>The floor measured in the same round: a bare 4 KiB write+persist of the same pmem file through the Pmem API (p50, µs), or null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public double? FloorP50Us { get; init; }

    /// <summary>FUA p50 over the floor's, over the rounds (null without a floor).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public Spread? P50OverFloorSpread { get; init; }

    /// <summary>The rounds summarised: the median round whole, each figure's spread, and warnings for wide ones.</summary>
    public static FuaBenchResult OfRounds(IReadOnlyList<FuaBenchResult> rounds)
    {
        ArgumentNullException.ThrowIfNull(rounds);
        bool reference = rounds.All(r => r.IopsRatioToIndependent is not null);
        FuaBenchResult median = Spread.MedianRound(rounds, r => reference ? r.IopsRatioToIndependent!.Value : r.Iops);
        Dictionary<string, Spread> spreads = new()
        {
            ["FUA IOPS"] = Spread.Of(rounds.Select(r => r.Iops)),
            ["FUA p50"] = Spread.Of(rounds.Select(r => r.P50Us)),
            ["FUA p99"] = Spread.Of(rounds.Select(r => r.P99Us)),
        };
        if (reference)
        {
            spreads["IOPS ratio to the independent devices"] = Spread.Of(rounds.Select(r => r.IopsRatioToIndependent!.Value));
        }
        bool floor = rounds.All(r => r.FloorP50Us is > 0);
        if (floor)
        {
            spreads["FUA p50 / floor p50"] = Spread.Of(rounds.Select(r => r.P50Us / r.FloorP50Us!.Value));
        }
        return median with
        {
            Rounds = rounds.Count,
            IopsSpread = spreads["FUA IOPS"],
            P50Spread = spreads["FUA p50"],
            P99Spread = spreads["FUA p99"],
            IopsRatioToIndependentSpread = reference ? spreads["IOPS ratio to the independent devices"] : null,
            P50OverFloorSpread = floor ? spreads["FUA p50 / floor p50"] : null,
            Warnings = Spread.WarningsOf(spreads),
        };
    }
}

/// <summary>What <c>wb bench randwrite</c> measured, with its same-run reference.</summary>
public sealed record RandWriteBenchResult(
    int Mode, long Ops, double Seconds, double Iops, double BytesPerSecond, long UserBytes, long CacheBytesWritten,
    long FullSegments, long PartialSegments, double CacheSequentialBytesPerSecond, double RatioToCacheSequential)
{
    /// <summary>How many rounds (reference, then benchmark) were measured; the fields above are the median round's.</summary>
    public int Rounds { get; init; } = 1;

    /// <summary>Over the rounds (null for a single result not yet summarised).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public Spread? RatioSpread { get; init; }

    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public Spread? IopsSpread { get; init; }

    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public Spread? CacheSequentialSpread { get; init; }

    /// <summary>One line per figure whose rounds disagree by more than <see cref="Spread.WideAbove"/>.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>A design of one's own (<c>--target</c>): its name; null for the writeboost device (then <see cref="Mode"/> is -1 and the segment counts 0).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Target { get; init; }

    /// <summary>
    /// For a design of one's own, which device's sequential bandwidth the reference is: its cache device's, or its
    /// backing device's when it has none (<see cref="CacheSequentialBytesPerSecond"/> holds it either way).
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? ReferenceDevice { get; init; }

    /// <summary>The median round (by ratio to the reference) with every figure's spread over <paramref name="rounds"/>.</summary>
    public static RandWriteBenchResult OfRounds(IReadOnlyList<RandWriteBenchResult> rounds)
    {
        RandWriteBenchResult median = Spread.MedianRound(rounds, r => r.RatioToCacheSequential);
        string reference = $"{median.ReferenceDevice ?? "cache"} sequential bandwidth";
        Dictionary<string, Spread> spreads = new()
        {
            ["random-write / sequential ratio"] = Spread.Of(rounds.Select(r => r.RatioToCacheSequential)),
            ["random-write IOPS"] = Spread.Of(rounds.Select(r => r.Iops)),
            [reference] = Spread.Of(rounds.Select(r => r.CacheSequentialBytesPerSecond)),
        };
        return median with
        {
            Rounds = rounds.Count,
            RatioSpread = spreads["random-write / sequential ratio"],
            IopsSpread = spreads["random-write IOPS"],
            CacheSequentialSpread = spreads[reference],
            Warnings = Spread.WarningsOf(spreads),
        };
    }
}

/// <summary>The macro benchmarks of a writeboost device, through the library API.</summary>
public static class CacheBenchmarks
{
    /// <summary>
    /// The RFC's worst case: every write a 4 KiB FUA write at a random 4 KiB-aligned offset, each waited for
    /// before its writer's next. <paramref name="writers"/> threads share the <paramref name="ops"/> (each its own
    /// random stream); IOPS is their sum. Latency is per write, including the wait for durability.
    /// </summary>
    public static FuaBenchResult Fua(WriteboostDevice device, int mode, long ops, double maxSeconds, int seed = 1, Action<double>? progress = null, int writers = 1, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        return Fua([device], mode, ops, maxSeconds, seed, progress, writers, cancel);
    }

    /// <summary>
    /// As <see cref="Fua(WriteboostDevice, int, long, double, int, Action{double}?, int, CancellationToken)"/>, with writer w writing to
    /// <c>devices[w % devices.Count]</c>, all starting together. One device per writer is the reference for
    /// several writers on one device: the same work with nothing shared but the machine. The counters are the
    /// devices' sums. Any block device can be measured (a design of one's own); the writeboost device's counters
    /// (cache bytes, segments, flushes) are 0 for others.
    /// </summary>
    /// <param name="cancel">Ends the writers early (an interrupted run): the result is what they measured until then.</param>
    public static FuaBenchResult Fua(IReadOnlyList<IBlockDevice> devices, int mode, long ops, double maxSeconds, int seed = 1, Action<double>? progress = null, int writers = 1, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(devices);
        ArgumentOutOfRangeException.ThrowIfLessThan(devices.Count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(writers, 1);
        WriteboostStatus[] before = StatusOf(devices);
        long opsPerWriter = Math.Max(1, ops / writers);
        LatencyRecorder[] latencies = new LatencyRecorder[writers];
        long deadline = Stopwatch.GetTimestamp() + (long)(maxSeconds * Stopwatch.Frequency);
        using Barrier go = new(writers + 1);
        long start = 0;
        long[] ends = new long[writers];
        Exception? failure = null;
        Thread[] threads = new Thread[writers];
        for (int w = 0; w < writers; w++)
        {
            int writer = w;
            IBlockDevice device = devices[writer % devices.Count];
            long blocks = device.SizeBytes / Units.BlockBytes;
            latencies[writer] = new LatencyRecorder((int)Math.Min(opsPerWriter, int.MaxValue));
            threads[writer] = new Thread(() =>
            {
                try
                {
                    ends[writer] = WriteFuaLoop(device, blocks, opsPerWriter, deadline, new Random(seed + writer), latencies[writer], go,
                        writer == 0 ? progress : null, cancel);
                }
                catch (Exception error)
                {
                    Interlocked.CompareExchange(ref failure, error, null);
                }
            }) { Name = $"fua-writer-{writer}", IsBackground = true };
            threads[writer].Start();
        }
        go.SignalAndWait(CancellationToken.None);
        start = Stopwatch.GetTimestamp();
        foreach (Thread thread in threads)
        {
            thread.Join();
        }
        if (failure is not null)
        {
            throw new IOException("a FUA writer failed", failure);
        }
        double seconds = (ends.Max() - start) / (double)Stopwatch.Frequency;
        WriteboostStatus[] after = StatusOf(devices);
        LatencyRecorder all = new(latencies.Sum(l => l.Count));
        foreach (LatencyRecorder recorder in latencies)
        {
            all.AddAll(recorder);
        }
        LatencySummary summary = all.Summarize();
        long userBytes = summary.Count * Units.BlockBytes;
        long cacheBytes = Delta(before, after, s => s.CacheBytesWritten);
        long full = Delta(before, after, s => s.FullSegments);
        long partial = Delta(before, after, s => s.PartialSegments);
        return new FuaBenchResult(
            mode, summary.Count, seconds, summary.Count / seconds, summary.MeanNs / 1000, summary.P50Ns / 1000.0,
            summary.P99Ns / 1000.0, summary.P999Ns / 1000.0, userBytes, cacheBytes, cacheBytes / (double)Math.Max(1, userBytes),
            full, partial, full + partial == 0 ? 0 : full / (double)(full + partial), Delta(before, after, s => s.CacheFlushes))
        {
            LatenciesNs = [.. all.AllNs()],
            Writers = writers,
            Devices = devices.Count,
        };
    }

    /// <summary>The writeboost devices' counters (none for another design).</summary>
    private static WriteboostStatus[] StatusOf(IReadOnlyList<IBlockDevice> devices) => [.. devices.OfType<WriteboostDevice>().Select(d => d.Status())];

    private static long Delta(WriteboostStatus[] before, WriteboostStatus[] after, Func<WriteboostStatus, long> counter) =>
        after.Zip(before, (a, b) => counter(a) - counter(b)).Sum();

    /// <summary>One writer's loop: starts with the others, returns the timestamp of its last completion.</summary>
    private static long WriteFuaLoop(IBlockDevice device, long blocks, long ops, long deadline, Random random, LatencyRecorder latencies, Barrier go, Action<double>? progress, CancellationToken cancel)
    {
        byte[] block = new byte[Units.BlockBytes];
        random.NextBytes(block);
        go.SignalAndWait(CancellationToken.None);
        long start = Stopwatch.GetTimestamp();
        long now = start;
        double maxTicks = deadline - start;
        for (long op = 0; op < ops && now < deadline && !cancel.IsCancellationRequested; op++)
        {
            block[0] = (byte)op;
            device.Write(random.NextInt64(blocks) * Units.BlockBytes, block, WriteOptions.Fua);
            long after = Stopwatch.GetTimestamp();
            latencies.Add(after - now);
            now = after;
            if ((op & 1023) == 0)
            {
                progress?.Invoke(Math.Max(op / (double)ops, (now - start) / maxTicks));
            }
        }
        return now;
    }

    /// <summary>
    /// 4 KiB writes at random 4 KiB-aligned offsets, no FUA, then one flush; bytes per second of user data
    /// against <paramref name="cacheSequentialBytesPerSecond"/>, the cache device's own sequential write
    /// bandwidth measured just before on the same device (<see cref="MeasureSequentialWrite"/>).
    /// </summary>
    /// <param name="cancel">Ends the writes early (an interrupted run): the flush and the figures cover the writes made.</param>
    public static RandWriteBenchResult RandWrite(WriteboostDevice device, int mode, long ops, double cacheSequentialBytesPerSecond, int seed = 1, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        WriteboostStatus before = device.Status();
        RandWriteBenchResult result = RandWrite((IBlockDevice)device, ops, cacheSequentialBytesPerSecond, seed, cancel) with { Mode = mode };
        WriteboostStatus after = device.Status();
        return result with
        {
            CacheBytesWritten = after.CacheBytesWritten - before.CacheBytesWritten,
            FullSegments = after.FullSegments - before.FullSegments,
            PartialSegments = after.PartialSegments - before.PartialSegments,
        };
    }

    /// <summary>
    /// Random 4 KiB writes at 4 KiB-aligned offsets of any block device (a design of one's own), one flush at the
    /// end, timed with it; against <paramref name="referenceBytesPerSecond"/> measured in the same run. The device's
    /// own counters (segments, cache bytes) are the caller's to add: 0 here, mode -1.
    /// </summary>
    public static RandWriteBenchResult RandWrite(IBlockDevice device, long ops, double referenceBytesPerSecond, int seed = 1, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        long blocks = device.SizeBytes / Units.BlockBytes;
        byte[] block = new byte[Units.BlockBytes];
        Random random = new(seed);
        random.NextBytes(block);
        long[] offsets = new long[ops];
        for (long i = 0; i < ops; i++)
        {
            offsets[i] = random.NextInt64(blocks) * Units.BlockBytes;
        }
        long start = Stopwatch.GetTimestamp();
        long done = 0;
        for (; done < ops && !cancel.IsCancellationRequested; done++)
        {
            block[0] = (byte)done;
            device.Write(offsets[done], block);
        }
        device.Flush();
        ops = Math.Max(1, done);
        double seconds = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
        long userBytes = ops * Units.BlockBytes;
        double bytesPerSecond = userBytes / seconds;
        return new RandWriteBenchResult(-1, ops, seconds, ops / seconds, bytesPerSecond, userBytes, 0, 0, 0,
            referenceBytesPerSecond, bytesPerSecond / referenceBytesPerSecond);
    }

    /// <summary>
    /// The reference for <see cref="RandWrite"/>: writes <paramref name="totalBytes"/> sequentially in
    /// <paramref name="chunkBytes"/> writes from <paramref name="startBytes"/> (the cache's segment area, in
    /// segment-sized writes — the best the cache device can do for the flush worker), then one flush.
    /// Destroys what was there: run it before formatting. Timed on a second pass (see below).
    /// </summary>
    public static double MeasureSequentialWrite(IBlockDevice device, long startBytes, long totalBytes, int chunkBytes)
    {
        ArgumentNullException.ThrowIfNull(device);
        // Pinned and 4 KiB aligned, as the flush worker's segment buffers are: O_DIRECT needs no bounce copy.
        Memory<byte> chunk = AlignedMemory.Allocate(chunkBytes);
        Random.Shared.NextBytes(chunk.Span);
        long usable = (device.SizeBytes - startBytes) / chunkBytes * chunkBytes;
        void Pass()
        {
            for (long done = 0; done < totalBytes; done += chunkBytes)
            {
                device.Write(startBytes + done % usable, chunk.Span);
            }
            device.Flush();
        }
        // An untimed pass first: a sparse file allocates its blocks on first write, and the benchmark after
        // this reuses them; both timed runs must see the same allocated blocks.
        Pass();
        long start = Stopwatch.GetTimestamp();
        Pass();
        double seconds = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
        return totalBytes / seconds;
    }

}
