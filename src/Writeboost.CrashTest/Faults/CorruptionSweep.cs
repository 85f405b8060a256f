using System.Diagnostics;
using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Inspect;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Table;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.States;
using Writeboost.Devices;

namespace Writeboost.CrashTest.Faults;

/// <summary>One corruption sweep: the media a workload left (crashed), damaged one way at a time.</summary>
/// <param name="Mutant">"none", or a crash-harness mutant whose recovery bug the sweep must catch (see <see cref="Mutants"/>).</param>
public sealed record CorruptionSweepSpec(CacheMode Mode, Workload Workload, int Seed, int Ops, int DataSamples = 200, string Mutant = "none");

/// <summary>How one area of the media fared.</summary>
/// <param name="Undetectable">Lost the newest segments with nothing after them: indistinguishable from a crash before they were written.</param>
public sealed record CorruptionAreaResult(string Area, int Tried, int Changed, int Refused, int Undetectable, int Violations);

/// <summary>What a sweep found.</summary>
public sealed record CorruptionSweepResult(
    CorruptionSweepSpec Spec,
    IReadOnlyList<CorruptionAreaResult> Areas,
    int Tried,
    int Changed,
    int Refused,
    int Violations,
    string? FirstViolation,
    double Seconds)
{
    /// <summary>The first few violations, each with the damage that caused it.</summary>
    public IReadOnlyList<string> ViolationSamples { get; init; } = [];
}

/// <summary>
/// Damaged media, systematically: every byte of the superblock (sector 0 and the record), of every segment's
/// header and metablocks and of the pmem buffer's metadata gets a bit flipped, one at a time; every metadata
/// sector is zeroed; data bytes of the cache and pmem are flipped at random; a segment slot is put back to what an
/// earlier lap of the ring left there; the tail of the cache is zeroed; the cache and pmem are shrunk. After each,
/// recovery runs and is judged:
/// <list type="number">
/// <item>no exception escapes but a clear refusal (<see cref="InvalidDataException"/> or a table error), and a
/// refusal only where guessing would be worse (sector 0, the pmem header, a shrunk device);</item>
/// <item>never a read of data that was not written there (acknowledged data may be lost with its media);</item>
/// <item>nothing silent: when the device reads differently from the undamaged recovery, the recovery report says
/// what was discarded, and <c>wb check</c> (<see cref="CacheInspector"/>) flags the damage on the cache device;</item>
/// <item>recovery is idempotent: recovering the recovered media again reads the same.</item>
/// </list>
/// </summary>
public static class CorruptionSweep
{
    /// <summary>The seeded recovery bugs this sweep must catch (the crash harness's), with the workload that shows each.</summary>
    public static IReadOnlyList<(string Name, CacheMode Mode, Workload Workload)> Mutants { get; } =
    [
        ("trust-segment-without-checksum", CacheMode.Volatile, Workload.Wrap),
        ("replay-stale-after-gap", CacheMode.Volatile, Workload.Wrap),
    ];

    private sealed record Media(byte[] Backing, byte[] Cache, byte[] Pmem);

    /// <summary>One way of damaging the media.</summary>
    private sealed record Damage(string Area, string What, Action<Media> Apply, bool MayRefuse, bool OnCacheDevice)
    {
        /// <summary>Set: the device is presented this many bytes long (a shrunk file), and must be refused.</summary>
        public long ShrunkCacheBytes { get; init; } = -1;
        public long ShrunkPmemBytes { get; init; } = -1;
        public bool Shrinks => ShrunkCacheBytes >= 0 || ShrunkPmemBytes >= 0;
    }

    public static CorruptionSweepResult Run(CorruptionSweepSpec spec, Action<long, long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Stopwatch clock = Stopwatch.StartNew();
        CampaignSpec campaign = new(spec.Mode, spec.Workload, spec.Seed, spec.Ops, 0);
        Campaign.Geometry geometry = Campaign.GeometryFor(spec.Workload);
        CrashLog log = Campaign.Record(campaign);
        Oracle oracle = new(log.Events);
        (Media earlier, Media final) = Snapshots(campaign, geometry, log);

        Mutant mutant = Campaign.ParseMutant(spec.Mutant);
        Outcome baseline = Recover(geometry, final, spec.Mode);
        if (baseline.Error is not null || oracle.Check(log.Events.Count, baseline.Content!) is { } wrong)
        {
            string problem = baseline.Error ?? oracle.Check(log.Events.Count, baseline.Content!)!;
            return new CorruptionSweepResult(spec, [], 0, 0, 0, 1, $"the undamaged media do not recover: {problem}", clock.Elapsed.TotalSeconds);
        }

        List<Damage> damages = Plan(spec, geometry, final, earlier);
        int baselineProblems = Check(final, spec.Mode).Problems;
        Dictionary<string, (int Tried, int Changed, int Refused, int Undetectable, int Violations)> areas = [];
        string? firstViolation = null;
        List<string> samples = [];
        int done = 0;
        foreach (Damage damage in damages)
        {
            // Only the device a damage touches is copied; the others are shared (recovery writes copy-on-write).
            Media damaged = damage.OnCacheDevice ? final with { Cache = final.Cache.ToArray() } : final with { Pmem = final.Pmem.ToArray() };
            damage.Apply(damaged);
            Verdict verdict = Judge(geometry, spec.Mode, mutant, oracle, baseline, baselineProblems, damage, damaged);
            string? violation = verdict.Violation;
            (int tried, int changedCount, int refusedCount, int undetectable, int violations) = areas.GetValueOrDefault(damage.Area);
            areas[damage.Area] = (tried + 1, changedCount + (verdict.Changed ? 1 : 0), refusedCount + (verdict.Refused ? 1 : 0),
                undetectable + (verdict.Undetectable ? 1 : 0), violations + (violation is null ? 0 : 1));
            if (violation is not null)
            {
                firstViolation ??= $"{damage.Area}, {damage.What}: {violation}";
                if (samples.Count < 20)
                {
                    samples.Add($"{damage.Area}, {damage.What}: {violation}");
                }
            }
            if (++done % 64 == 0)
            {
                progress?.Invoke(done, damages.Count);
            }
        }
        List<CorruptionAreaResult> results = areas.Select(a => new CorruptionAreaResult(a.Key, a.Value.Tried, a.Value.Changed, a.Value.Refused, a.Value.Undetectable, a.Value.Violations)).ToList();
        return new CorruptionSweepResult(spec, results, results.Sum(a => a.Tried), results.Sum(a => a.Changed), results.Sum(a => a.Refused),
            results.Sum(a => a.Violations), firstViolation, clock.Elapsed.TotalSeconds) { ViolationSamples = samples };
    }

    /// <summary>The media halfway through the workload (an earlier lap of the ring) and at its end, every write landed.</summary>
    private static (Media Earlier, Media Final) Snapshots(CampaignSpec spec, Campaign.Geometry geometry, CrashLog log)
    {
        BlockTimeline backing = new(DeviceId.Backing, geometry.BackingBytes);
        BlockTimeline cache = new(DeviceId.Cache, geometry.CacheBytes);
        PmemTimeline pmem = new(geometry.PmemBytes);
        IReadOnlyList<CrashEvent> events = log.Events;
        Media? earlier = null;
        for (int i = 0; i <= events.Count; i++)
        {
            if (i == events.Count / 2 || i == events.Count)
            {
                (PagedBlockDevice b, PagedBlockDevice c, MemoryPmemRegion? p) = Campaign.BuildState(spec, geometry, backing, cache, pmem, i, 1);
                Media media = new(Campaign.Materialize(b.Image), Campaign.Materialize(c.Image), p is null ? [] : Campaign.Materialize(p.Image));
                if (i == events.Count)
                {
                    return (earlier ?? media, media);
                }
                earlier = media;
            }
            if (i < events.Count)
            {
                backing.Apply(i, events[i]);
                cache.Apply(i, events[i]);
                pmem.Apply(events[i]);
            }
        }
        throw new UnreachableException();
    }

    private static List<Damage> Plan(CorruptionSweepSpec spec, Campaign.Geometry geometry, Media final, Media earlier)
    {
        List<Damage> plan = [];
        CacheGeometry cache = CacheGeometry.For(geometry.CacheBytes, (int)geometry.Keys["segment_size_order"]);

        // Sector 0: magic, extension (order, flags, identity, sizes, checksum) and the padding after it.
        AddBitFlips(plan, "superblock", 0, Units.SectorBytes, mayRefuse: true, onCache: true);
        AddZeroSector(plan, "superblock", 0, mayRefuse: true);
        long record = SuperblockRecordOnDisk.WriteOffsetBytes + SuperblockRecordOnDisk.RecordOffsetInWrite;
        AddBitFlips(plan, "superblock record", record, 16, mayRefuse: false, onCache: true);
        AddZeroSector(plan, "superblock record", record, mayRefuse: false);

        Random random = new(spec.Seed ^ 0xDA7A);
        int entryBytes = cache.SegmentSizeOrder == CacheGeometry.MaxSegmentSizeOrder ? MetablockOnDisk.CompactSizeBytes : MetablockOnDisk.WideSizeBytes;
        for (long slot = 0; slot < cache.NrSegments; slot++)
        {
            long start = cache.SegmentStartBytes(slot);
            SegmentHeaderOnDisk header = SegmentHeaderOnDisk.Read(final.Cache.AsSpan((int)start, SegmentHeaderOnDisk.SizeBytes));
            if (header.Id == 0)
            {
                continue;
            }
            AddBitFlips(plan, "segment header", start, 13, mayRefuse: false, onCache: true);
            AddBitFlips(plan, "metablocks", start + SegmentHeaderOnDisk.SizeBytes, cache.BlocksPerSegment * entryBytes, mayRefuse: false, onCache: true);
            for (int sector = 0; sector < Units.SectorsPerBlock; sector++)
            {
                AddZeroSector(plan, "segment header", start + sector * Units.SectorBytes, mayRefuse: false);
            }
            for (int i = 0; i < spec.DataSamples / Math.Max(1, (int)cache.NrSegments) + 1; i++)
            {
                long at = cache.DataBlockBytes(slot, random.Next(Math.Max(1, (int)header.Length))) + random.Next(Units.BlockBytes);
                int bit = random.Next(8);
                plan.Add(new Damage("cache data", $"bit {bit} of byte {at}", m => m.Cache[at] ^= (byte)(1 << bit), false, true));
            }
            long slotBytes = cache.SegmentSizeBytes;
            if (!earlier.Cache.AsSpan((int)start, (int)slotBytes).SequenceEqual(final.Cache.AsSpan((int)start, (int)slotBytes)))
            {
                plan.Add(new Damage("stale segment", $"slot {slot} as an earlier lap left it",
                    m => earlier.Cache.AsSpan((int)start, (int)slotBytes).CopyTo(m.Cache.AsSpan((int)start)), false, true));
            }
        }
        long tail = geometry.CacheBytes / 2 / Units.BlockBytes * Units.BlockBytes;
        plan.Add(new Damage("truncation", $"cache zeroed from byte {tail} on (truncated and re-extended)", m => m.Cache.AsSpan((int)tail).Clear(), false, true));
        plan.Add(new Damage("truncation", "cache shrunk by 4 KiB", _ => { }, true, true) { ShrunkCacheBytes = geometry.CacheBytes - Units.BlockBytes });

        if (spec.Mode == CacheMode.Persistent)
        {
            PmemLayout layout = new(cache.SegmentSizeOrder, Campaign.PoolSize, cache.BlocksPerSegment);
            AddBitFlips(plan, "pmem header", 0, 64, mayRefuse: true, onCache: false, pmem: true);
            plan.Add(new Damage("truncation", "pmem shrunk by 4 KiB", _ => { }, true, false) { ShrunkPmemBytes = geometry.PmemBytes - Units.BlockBytes });
            plan.Add(new Damage("pmem header", "pmem header zeroed", m => m.Pmem.AsSpan(0, PmemLayout.RegionHeaderBytes).Clear(), true, false));
            for (int buffer = 0; buffer < layout.PoolSize; buffer++)
            {
                AddBitFlips(plan, "pmem buffer headers", layout.BufferHeaderOffset(buffer), sizeof(ulong), mayRefuse: false, onCache: false, pmem: true);
                AddBitFlips(plan, "pmem records", layout.RecordOffset(buffer, 0), layout.BlocksPerSegment * PmemLayout.RecordBytes, mayRefuse: false, onCache: false, pmem: true);
                for (int i = 0; i < spec.DataSamples / layout.PoolSize / 4 + 1; i++)
                {
                    long at = layout.DataOffset(buffer, random.Next(layout.BlocksPerSegment)) + random.Next(Units.BlockBytes);
                    int bit = random.Next(8);
                    plan.Add(new Damage("pmem data", $"bit {bit} of pmem byte {at}", m => m.Pmem[at] ^= (byte)(1 << bit), false, false));
                }
            }
        }
        return plan;
    }

    private static void AddBitFlips(List<Damage> plan, string area, long offsetBytes, int lengthBytes, bool mayRefuse, bool onCache, bool pmem = false)
    {
        for (int i = 0; i < lengthBytes; i++)
        {
            long at = offsetBytes + i;
            int bit = i % 8;
            plan.Add(new Damage(area, $"bit {bit} of {(pmem ? "pmem " : "")}byte {at}",
                pmem ? m => m.Pmem[at] ^= (byte)(1 << bit) : m => m.Cache[at] ^= (byte)(1 << bit), mayRefuse, onCache));
        }
    }

    private static void AddZeroSector(List<Damage> plan, string area, long offsetBytes, bool mayRefuse)
    {
        long sector = offsetBytes / Units.SectorBytes * Units.SectorBytes;
        plan.Add(new Damage(area, $"sector at byte {sector} zeroed", m => m.Cache.AsSpan((int)sector, Units.SectorBytes).Clear(), mayRefuse, true));
    }

    private sealed record Outcome(byte[]? Content, RecoveryReport? Report, string? Error, bool Refused, PagedBlockDevice? Backing, PagedBlockDevice? Cache, MemoryPmemRegion? Pmem)
    {
        public string? RefusalMessage { get; init; }
    }

    private static Outcome Recover(Campaign.Geometry geometry, Media media, CacheMode mode, long cacheBytes = -1, long pmemBytes = -1, Mutant mutant = Mutant.None)
    {
        PagedBlockDevice backing = new(media.Backing, "backing");
        IBlockDevice cacheDevice;
        PagedBlockDevice cache = new(media.Cache, "cache");
        cacheDevice = cacheBytes < 0 ? cache : new ShrunkBlockDevice(cache, cacheBytes);
        MemoryPmemRegion? pmem = mode != CacheMode.Persistent ? null
            : pmemBytes < 0 ? new MemoryPmemRegion(media.Pmem.Length, media.Pmem)
            : new MemoryPmemRegion(pmemBytes, media.Pmem[..(int)pmemBytes]);
        WriteboostOptions options = new() { BufferPoolSize = Campaign.PoolSize, WithoutWorkers = true, Mutant = mutant };
        WriteboostDevice device;
        try
        {
            device = WriteboostDevice.Open(backing, cacheDevice, new Tunables(geometry.Keys), options, pmem);
        }
        catch (Exception error) when (error is InvalidDataException or TableException)
        {
            return new Outcome(null, null, null, true, null, null, null) { RefusalMessage = error.Message };
        }
#pragma warning disable CA1031 // Anything else out of recovery is what this sweep exists to find.
        catch (Exception error)
        {
            return new Outcome(null, null, $"recovery threw {error.GetType().Name}: {error.Message}", false, null, null, null);
        }
#pragma warning restore CA1031
        try
        {
            byte[] content = new byte[device.SizeBytes];
            device.Read(0, content);
            return new Outcome(content, device.Recovery, null, false, backing, cache, pmem);
        }
        finally
        {
            device.Abandon();
        }
    }

    private sealed record Verdict(bool Changed, bool Refused, string? Violation)
    {
        /// <summary>Data was lost, but the media are exactly what a crash before the newest segments were written leaves.</summary>
        public bool Undetectable { get; init; }
    }

    private static Verdict Judge(Campaign.Geometry geometry, CacheMode mode, Mutant mutant, Oracle oracle, Outcome baseline, int baselineProblems, Damage damage, Media damaged)
    {
        Outcome outcome = Recover(geometry, damaged, mode, damage.ShrunkCacheBytes, damage.ShrunkPmemBytes, mutant);
        if (outcome.Error is not null)
        {
            return new Verdict(true, false, outcome.Error);
        }
        if (outcome.Refused)
        {
            return new Verdict(true, true, damage.MayRefuse ? null : $"recovery refused the media ({outcome.RefusalMessage}) where it should discard the damage and report it");
        }
        if (damage.Shrinks)
        {
            return new Verdict(true, false, $"{damage.What}: accepted");
        }
        if (oracle.CheckEverWritten(outcome.Content!) is { } garbage)
        {
            return new Verdict(true, false, $"{garbage} (recovery: {Describe(outcome.Report!)})");
        }
        bool changed = !outcome.Content!.AsSpan().SequenceEqual(baseline.Content);
        if (changed)
        {
            // wb check runs once, and only on damage that cost something.
            (int problems, int unreachable) = Check(damaged, mode);
            bool reported = Reports(outcome.Report!);
            // The replay ending before the undamaged one did with no intact segment after it is, on the cache
            // device, what a crash before the newest segments were written leaves (the user may still see older
            // data than a crash would show: a partial overwrite merged older dirty sectors into the lost segment).
            bool lostOnlyTheNewest = outcome.Report!.LastReplayedId < baseline.Report!.LastReplayedId && unreachable == 0;
            if (!reported && (lostOnlyTheNewest || LooksLikeAnEarlierCrash(oracle, outcome.Content!)))
            {
                // E.g. the newest segment's header zeroed, or the last pmem record's id made to look stale: the media
                // are exactly what a crash at an earlier point leaves. Nothing can tell the two apart; counted, not a violation.
                return new Verdict(true, false, null) { Undetectable = true };
            }
            if (!reported)
            {
                return new Verdict(true, false, $"the device reads differently from the undamaged recovery, and the recovery report says nothing was discarded (recovery: {Describe(outcome.Report!)})");
            }
            if (problems <= baselineProblems)
            {
                return new Verdict(true, false, "recovery lost data to the damage, but wb check finds nothing wrong");
            }
        }
        // Idempotent: the media recovery left behind recover to the same content.
        Media after = new(Campaign.Materialize(outcome.Backing!.Image), Campaign.Materialize(outcome.Cache!.Image), outcome.Pmem is null ? [] : Campaign.Materialize(outcome.Pmem.Image));
        Outcome again = Recover(geometry, after, mode, mutant: mutant);
        if (again.Error is not null || again.Refused || !again.Content!.AsSpan().SequenceEqual(outcome.Content))
        {
            return new Verdict(changed, false, $"recovering the recovered media again {(again.Error ?? (again.Refused ? "was refused" : "reads differently"))}");
        }
        return new Verdict(changed, false, null);
    }

    /// <summary>Whether some crash right after an acknowledgement of the workload could have left exactly this content.</summary>
    private static bool LooksLikeAnEarlierCrash(Oracle oracle, byte[] content) =>
        oracle.AcknowledgementPoints.Any(point => oracle.Check(point, content) is null);

    private static string Describe(RecoveryReport r) =>
        $"record {r.SuperblockRecordId}, replayed {r.FirstReplayedId}..{r.LastReplayedId}, discarded {r.SegmentsDiscarded}, pmem rebuilt {r.PmemSegmentsRebuilt}, stop: {r.StopReason ?? "none"}; {string.Join("; ", r.Warnings)}";

    /// <summary>Whether the report names a loss (the walk always ends somewhere, so its stop reason alone does not).</summary>
    private static bool Reports(RecoveryReport report) =>
        report.Formatted || report.SegmentsDiscarded > 0 || report.Warnings.Count > 0 || report.PmemTornRecords > 0;

    /// <summary>
    /// What <c>wb check</c> (with <c>--pmem</c> in mode 1) says of the media: how many problems (damage is flagged
    /// when it adds one) and how many intact segments recovery cannot reach (-1: no readable cache at all).
    /// </summary>
    private static (int Problems, int Unreachable) Check(Media media, CacheMode mode)
    {
        CacheReport report;
        try
        {
            report = CacheInspector.Inspect(new PagedBlockDevice(media.Cache, "cache"));
        }
        catch (InvalidDataException)
        {
            return (int.MaxValue, -1); // wb check says there is no (readable) cache at all
        }
        int problems = (report.Superblock != SuperblockState.Formatted ? 1 : 0)
            + (report.RecordChecksumValid == false ? 1 : 0)
            + (report.RecordWarning is not null ? 1 : 0)
            + report.UnreachableIds.Count
            + report.Slots.Count(s => !s.IsEmpty && (!s.IdMatchesSlot || !s.ChecksumValid));
        if (mode == CacheMode.Persistent)
        {
            PmemReport pmem = CacheInspector.InspectPmem(new MemoryPmemRegion(media.Pmem.Length, media.Pmem), report);
            problems += (pmem.Header != PmemHeaderState.Ours ? 1 : 0) + (pmem.Gap is not null ? 1 : 0)
                + pmem.Buffers.Sum(b => b.DamagedRecords + b.TornRecords);
        }
        return (problems, report.UnreachableIds.Count);
    }

    /// <summary>A device that reports less than its media holds (a shrunk file or partition).</summary>
    private sealed class ShrunkBlockDevice(IBlockDevice inner, long sizeBytes) : IBlockDevice
    {
        public string Name => inner.Name;
        public int SectorSizeBytes => inner.SectorSizeBytes;
        public long SizeBytes => sizeBytes;

        public void Read(long offsetBytes, Span<byte> destination)
        {
            DeviceRange.CheckAligned(this, offsetBytes, destination.Length, "read");
            inner.Read(offsetBytes, destination);
        }

        public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
        {
            DeviceRange.CheckAligned(this, offsetBytes, source.Length, "write");
            inner.Write(offsetBytes, source, options);
        }

        public void Flush() => inner.Flush();

        public void Dispose() => inner.Dispose();
    }
}
