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
}

/// <summary>What <c>wb bench randwrite</c> measured, with its same-run reference.</summary>
public sealed record RandWriteBenchResult(
    int Mode, long Ops, double Seconds, double Iops, double BytesPerSecond, long UserBytes, long CacheBytesWritten,
    long FullSegments, long PartialSegments, double CacheSequentialBytesPerSecond, double RatioToCacheSequential);

/// <summary>The macro benchmarks of a writeboost device, through the library API.</summary>
public static class CacheBenchmarks
{
    /// <summary>
    /// The RFC's worst case: one writer, every write a 4 KiB FUA write at a random 4 KiB-aligned offset, each
    /// waited for before the next. Latency is per write, including the wait for durability.
    /// </summary>
    public static FuaBenchResult Fua(WriteboostDevice device, int mode, long ops, double maxSeconds, int seed = 1, Action<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        long blocks = device.SizeBytes / Units.BlockBytes;
        byte[] block = new byte[Units.BlockBytes];
        Random random = new(seed);
        random.NextBytes(block);
        WriteboostStatus before = device.Status();
        LatencyRecorder latencies = new((int)Math.Min(ops, int.MaxValue));
        long deadline = Stopwatch.GetTimestamp() + (long)(maxSeconds * Stopwatch.Frequency);
        long start = Stopwatch.GetTimestamp();
        long now = start;
        for (long op = 0; op < ops && now < deadline; op++)
        {
            block[0] = (byte)op;
            device.Write(random.NextInt64(blocks) * Units.BlockBytes, block, WriteOptions.Fua);
            long after = Stopwatch.GetTimestamp();
            latencies.Add(after - now);
            now = after;
            if ((op & 1023) == 0)
            {
                progress?.Invoke(Math.Max(op / (double)ops, (now - start) / (maxSeconds * Stopwatch.Frequency)));
            }
        }
        double seconds = (now - start) / (double)Stopwatch.Frequency;
        WriteboostStatus after_ = device.Status();
        LatencySummary summary = latencies.Summarize();
        long userBytes = summary.Count * Units.BlockBytes;
        long cacheBytes = after_.CacheBytesWritten - before.CacheBytesWritten;
        long full = after_.FullSegments - before.FullSegments;
        long partial = after_.PartialSegments - before.PartialSegments;
        return new FuaBenchResult(
            mode, summary.Count, seconds, summary.Count / seconds, summary.MeanNs / 1000, summary.P50Ns / 1000.0,
            summary.P99Ns / 1000.0, summary.P999Ns / 1000.0, userBytes, cacheBytes, cacheBytes / (double)Math.Max(1, userBytes),
            full, partial, full + partial == 0 ? 0 : full / (double)(full + partial), after_.CacheFlushes - before.CacheFlushes)
        {
            LatenciesNs = [.. latencies.AllNs()],
        };
    }

    /// <summary>
    /// 4 KiB writes at random 4 KiB-aligned offsets, no FUA, then one flush; bytes per second of user data
    /// against <paramref name="cacheSequentialBytesPerSecond"/>, the cache device's own sequential write
    /// bandwidth measured just before on the same device (<see cref="MeasureSequentialWrite"/>).
    /// </summary>
    public static RandWriteBenchResult RandWrite(WriteboostDevice device, int mode, long ops, double cacheSequentialBytesPerSecond, int seed = 1)
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
        WriteboostStatus before = device.Status();
        long start = Stopwatch.GetTimestamp();
        for (long op = 0; op < ops; op++)
        {
            block[0] = (byte)op;
            device.Write(offsets[op], block);
        }
        device.Flush();
        double seconds = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
        WriteboostStatus after = device.Status();
        long userBytes = ops * Units.BlockBytes;
        double bytesPerSecond = userBytes / seconds;
        return new RandWriteBenchResult(
            mode, ops, seconds, ops / seconds, bytesPerSecond, userBytes, after.CacheBytesWritten - before.CacheBytesWritten,
            after.FullSegments - before.FullSegments, after.PartialSegments - before.PartialSegments,
            cacheSequentialBytesPerSecond, bytesPerSecond / cacheSequentialBytesPerSecond);
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
