using System.Diagnostics;
using System.Runtime.InteropServices;
using Writeboost.Pmem;

namespace Writeboost.Bench;

/// <summary>What <see cref="PmemBenchmark"/> measured.</summary>
public sealed record PmemBenchResult(
    string Backend,
    string Path,
    bool IsPmem,
    string Granularity,
    int BlockBytes,
    long Ops,
    double Seconds,
    double Iops,
    double MeanNs,
    long P50Ns,
    long P99Ns,
    long P999Ns,
    long MaxNs);

/// <summary>
/// The pmem latency benchmark: one thread writes <see cref="BlockBytes"/> at random aligned offsets of the
/// region and persists each write before the next (<see cref="PmemRegion.WritePersist"/>, which is
/// pmem_memcpy_persist on the dax backend — the same work as fio's libpmem engine with --direct=1 --sync=1).
/// The region is written once end to end first, so page faults are not measured.
/// </summary>
public sealed class PmemBenchmark
{
    public int BlockBytes { get; init; } = 4096;
    public long Ops { get; init; } = 200_000;
    /// <summary>Stop early when this much time has passed (slow backends); 0 = no limit.</summary>
    public double MaxSeconds { get; init; } = 10;
    public int Seed { get; init; } = 1;
    /// <summary>Ends the run early (an interrupted benchmark): the result is what was measured until then.</summary>
    public CancellationToken Cancel { get; init; }

    public PmemBenchResult Run(PmemRegion region)
    {
        ArgumentNullException.ThrowIfNull(region);
        return RunOn(region, (offset, block) => region.WritePersist(offset, block));
    }

    /// <summary>The loop over <paramref name="region"/>, prefaulted first, with <paramref name="write"/> per block.</summary>
    private PmemBenchResult RunOn(PmemRegion region, Action<long, byte[]> write)
    {
        long slots = region.LengthBytes / BlockBytes;
        if (slots < 1)
        {
            throw new ArgumentException($"{region.Name}: the region ({region.LengthBytes} bytes) is smaller than one {BlockBytes}-byte block");
        }
        Prefault(region);
        (LatencySummary summary, double seconds) = Measure(slots, write);
        return new PmemBenchResult(
            region.Backend.ToString().ToLowerInvariant(), region.Name, region.IsPmem, GranularityName(region.Granularity),
            BlockBytes, summary.Count, seconds, summary.Count / seconds,
            summary.MeanNs, summary.P50Ns, summary.P99Ns, summary.P999Ns, summary.MaxNs);
    }

    /// <summary>
    /// What the same writes cost where the CPU caches are inside the power-fail domain (eADR): each block stored
    /// and then fenced (<see cref="PmemRegion.Write"/> then <see cref="PmemRegion.Drain"/>: the fence orders the
    /// stores, no line is written back). Measured on any dax region; meaningful where the region is pmem.
    /// </summary>
    public PmemBenchResult RunEadr(PmemRegion region)
    {
        ArgumentNullException.ThrowIfNull(region);
        return RunOn(region, (offset, block) =>
        {
            region.Write(offset, block);
            region.Drain();
        });
    }

    /// <summary>
    /// The floor of <see cref="Run"/>, in this process: the same loop with libpmem called directly —
    /// <c>pmem_map_file</c> of the whole file at <paramref name="path"/>, then
    /// <c>pmem_memcpy_persist</c> per block — with nothing of the Pmem API in between (no range check, no virtual
    /// call, no mapping of ours). Where the file is not pmem to libpmem (tmpfs without PMEM_IS_PMEM_FORCE) each block is copied and msynced, libpmem's rule and the API's.
    /// </summary>
    /// <exception cref="IOException">libpmem could not map the file (its message).</exception>
    public unsafe PmemBenchResult RunBareLibPmem(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Native.LibPmem.UnavailableReason is { } reason)
        {
            throw new DllNotFoundException(reason);
        }
        byte* mapping = (byte*)Native.LibPmem.pmem_map_file(path, 0, 0, 0, out nuint mapped, out int isPmem);
        if (mapping is null)
        {
            throw new IOException($"{path}: libpmem could not map it: {Marshal.PtrToStringUTF8(Native.LibPmem.pmem_errormsg())}");
        }
        try
        {
            long slots = (long)mapped / BlockBytes;
            new Span<byte>(mapping, (int)Math.Min((long)mapped, int.MaxValue)).Fill(1); // prefault, as Run does
            Native.LibPmem.pmem_persist(mapping, mapped);
            (LatencySummary summary, double seconds) = Measure(slots, (offset, block) =>
            {
                fixed (byte* from = block)
                {
                    if (isPmem != 0)
                    {
                        Native.LibPmem.pmem_memcpy_persist(mapping + offset, from, (nuint)block.Length);
                    }
                    else
                    {
                        // Not pmem: libpmem's own rule is a copy and msync (pmem_persist would not make it durable).
                        Buffer.MemoryCopy(from, mapping + offset, block.Length, block.Length);
                        _ = Native.LibPmem.pmem_msync(mapping + offset, (nuint)block.Length);
                    }
                }
            });
            return new PmemBenchResult("libpmem", path, isPmem != 0, isPmem != 0 ? "cache-line" : "page",
                BlockBytes, summary.Count, seconds, summary.Count / seconds,
                summary.MeanNs, summary.P50Ns, summary.P99Ns, summary.P999Ns, summary.MaxNs);
        }
        finally
        {
            _ = Native.LibPmem.pmem_unmap(mapping, mapped); // a failed unmap of a benchmark's file leaves nothing to repair
        }
    }

    /// <summary>The timed loop both measurements share: one block written and persisted per operation at seeded random offsets.</summary>
    private (LatencySummary Summary, double Seconds) Measure(long slots, Action<long, byte[]> writePersist)
    {
        byte[] block = new byte[BlockBytes];
        Random random = new(Seed);
        random.NextBytes(block);
        long[] offsets = new long[Math.Min(Ops, 1 << 20)];
        for (int i = 0; i < offsets.Length; i++)
        {
            offsets[i] = random.NextInt64(slots) * BlockBytes;
        }

        LatencyRecorder latencies = new((int)Math.Min(Ops, int.MaxValue));
        long deadline = MaxSeconds > 0 ? Stopwatch.GetTimestamp() + (long)(MaxSeconds * Stopwatch.Frequency) : long.MaxValue;
        long start = Stopwatch.GetTimestamp();
        long now = start;
        for (long op = 0; op < Ops && now < deadline && !Cancel.IsCancellationRequested; op++)
        {
            long offset = offsets[op % offsets.Length];
            block[0] = (byte)op;
            writePersist(offset, block);
            long after = Stopwatch.GetTimestamp();
            latencies.Add(after - now);
            now = after;
        }
        return (latencies.Summarize(), (now - start) / (double)Stopwatch.Frequency);
    }

    /// <summary>libpmem2's spelling of a granularity: byte, cache-line, page.</summary>
    public static string GranularityName(PmemGranularity granularity) => granularity switch
    {
        PmemGranularity.Byte => "byte",
        PmemGranularity.CacheLine => "cache-line",
        _ => "page",
    };

    private static void Prefault(PmemRegion region)
    {
        byte[] chunk = new byte[1 << 20];
        for (long offset = 0; offset < region.LengthBytes; offset += chunk.Length)
        {
            int length = (int)Math.Min(chunk.Length, region.LengthBytes - offset);
            region.Write(offset, chunk.AsSpan(0, length));
        }
        region.Persist(0, region.LengthBytes);
    }
}
