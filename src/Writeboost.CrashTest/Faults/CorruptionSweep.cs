using System.Diagnostics;
using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Inspect;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Recovery;
using Writeboost.Cache.Table;
using Writeboost.CrashTest.Mutants;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.States;
using Writeboost.CrashTest.Targets;
using Writeboost.Devices;

namespace Writeboost.CrashTest.Faults;

/// <summary>One corruption sweep: the media a workload left (crashed), damaged one way at a time.</summary>
/// <param name="Mutant">"none", or a seeded recovery bug the sweep must catch (see <see cref="MutantCatalogue"/>).</param>
/// <param name="StopAtFirst">Stop at the first violation (enough to show a mutant is caught).</param>
public sealed record CorruptionSweepSpec(CacheMode Mode, Workload Workload, int Seed, int Ops, int DataSamples = 200, string Mutant = "none", bool StopAtFirst = false)
{
    /// <summary>
    /// A design of one's own to sweep instead of the writeboost device (<see cref="Mode"/> and <see cref="Mutant"/>
    /// are then not used): its metadata regions (<see cref="ICrashTarget.MetadataRegions"/>) bit by bit, its cache
    /// device and pmem region at random, judged through its requests (<see cref="DesignCorruptionSweep"/>).
    /// </summary>
    public ICrashTarget? Target { get; init; }

    /// <summary>For a design of one's own: the bound on one damage's recovery and reads; past it, the sweep stops with a violation (a hang).</summary>
    public TimeSpan RecoveryBound { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>How one area of the media fared.</summary>
/// <param name="Undetectable">Lost durable data that nothing left on the media vouches for: what a crash just before it became durable leaves.</param>
public sealed record CorruptionAreaResult(string Area, int Tried, int Changed, int Refused, int Undetectable, int Violations)
{
    /// <summary>Damages after which some sector reads as an error (its newest durable copy lost, and said so).</summary>
    public int ReadErrors { get; init; }

    /// <summary>Damages after which some sector silently reads an older value than its last durable one, outside the undetectable cases.</summary>
    public int SilentReverts { get; init; }

    /// <summary>Damages after which a read-only open (wb status) wrote to a device.</summary>
    public int LookingWrote { get; init; }

    /// <summary>Damages after which a flipped bit of the data was read back as damaged (a design that keeps no checksum of its data; never the writeboost device).</summary>
    public int UncheckedData { get; init; }
}

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
    public int ReadErrors => Areas.Sum(a => a.ReadErrors);
    public int SilentReverts => Areas.Sum(a => a.SilentReverts);
    public int Undetectable => Areas.Sum(a => a.Undetectable);
    public int LookingWrote => Areas.Sum(a => a.LookingWrote);
    public int UncheckedData => Areas.Sum(a => a.UncheckedData);
}

/// <summary>
/// Damaged media, systematically: every byte of the superblock (sector 0 and the record), of every segment's
/// header (ours included) and metablocks and of the pmem buffer's metadata gets a bit flipped, one at a time; every
/// metadata sector is zeroed; data bytes of the cache and pmem are flipped at random; a segment slot is put back to
/// what an earlier lap of the ring left there; the tail of the cache is zeroed; the cache and pmem are shrunk.
/// After each, recovery runs and is judged (docs/crash-model.md, "Damaged media"):
/// <list type="number">
/// <item>no exception escapes but a clear refusal (<see cref="InvalidDataException"/> or a table error); a
/// refusal only where guessing would be worse (sector 0, the pmem header, a shrunk device) or where the damage
/// took the block list of a segment that was durable — and then the segment it names was durable, and opening
/// with the loss accepted works;</item>
/// <item>never a read of data that was not written there;</item>
/// <item>every sector reads its last durable value or a later one, or fails (poisoned) — never an older value
/// silently — except when the damage hit only durable writes nothing left on the media vouches for: no segment
/// header (pmem record) written after they became durable survives, so the media are what a crash just before
/// then leaves, and no one could tell (counted as undetectable);</item>
/// <item>nothing silent: when the device reads differently from the undamaged recovery, the recovery report
/// says so and <c>wb check</c> (<see cref="CacheInspector"/>) flags the damage;</item>
/// <item>looking never writes: a read-only open reads the same and leaves every device untouched;</item>
/// <item>recovery is idempotent: recovering the recovered media again reads the same.</item>
/// </list>
/// </summary>
public static class CorruptionSweep
{
    private sealed record Media(byte[] Backing, byte[] Cache, byte[] Pmem);

    /// <summary>One way of damaging the media.</summary>
    /// <param name="MayRefuse">Recovery may refuse outright (sector 0, the pmem header).</param>
    /// <param name="MayLoseBlockList">The damage may take a durable segment's block list (or an acknowledged pmem record's fields): recovery may refuse unless the loss is accepted.</param>
    private sealed record Damage(string Area, string What, Action<Media> Apply, bool MayRefuse, bool OnCacheDevice, bool MayLoseBlockList = false)
    {
        /// <summary>Set: the device is presented this many bytes long (a shrunk file), and must be refused.</summary>
        public long ShrunkCacheBytes { get; init; } = -1;
        public long ShrunkPmemBytes { get; init; } = -1;
        public bool Shrinks => ShrunkCacheBytes >= 0 || ShrunkPmemBytes >= 0;
    }

    /// <param name="cancel">Stops the sweep after the damage in progress (an interrupted sweep): the result counts the damages tried.</param>
    public static CorruptionSweepResult Run(CorruptionSweepSpec spec, Action<long, long>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Target is { } design)
        {
            return DesignCorruptionSweep.Run(spec, design, progress, cancel);
        }
        Stopwatch clock = Stopwatch.StartNew();
        SeededBug? bug = MutantCatalogue.Find(spec.Mutant);
        FaultHooks mutant = bug?.Hooks ?? FaultHooks.None;
        // A bug in what the device writes (its claims) is planted in the recorded workload too.
        CampaignSpec campaign = new(spec.Mode, spec.Workload, spec.Seed, spec.Ops, 0, bug is { InWhatItWrites: true } ? spec.Mutant : "none");
        Campaign.Geometry geometry = Campaign.GeometryFor(spec.Workload);
        CrashLog log = Campaign.Record(campaign);
        Oracle oracle = new(log.Events);
        int crashPoint = ChooseCrashPoint(campaign, geometry, log, oracle);
        (Media earlier, Media final) = Snapshots(campaign, geometry, log, crashPoint);
        Provenance provenance = new(log.Events, crashPoint, geometry, spec.Mode);

        Outcome baseline = Recover(geometry, final, spec.Mode);
        string? baselineProblem = baseline.Error ?? (baseline.Refused ? $"refused: {baseline.RefusalMessage}" : null)
            ?? (baseline.Failed.Count > 0 ? $"{baseline.Failed.Count} sector(s) read as errors" : null)
            ?? oracle.Check(crashPoint, baseline.Content!);
        if (baselineProblem is not null)
        {
            return new CorruptionSweepResult(spec, [], 0, 0, 0, 1, $"the undamaged media do not recover: {baselineProblem}", clock.Elapsed.TotalSeconds);
        }

        List<Damage> damages = Plan(spec, geometry, final, earlier);
        int baselineProblems = Check(final, spec.Mode).Problems;
        Dictionary<string, CorruptionAreaResult> areas = [];
        string? firstViolation = null;
        List<string> samples = [];
        int done = 0;
        Judge judge = new(geometry, spec.Mode, mutant, oracle, provenance, baseline, baselineProblems, final, crashPoint);
        foreach (Damage damage in damages)
        {
            if (cancel.IsCancellationRequested)
            {
                break;
            }
            // Only the device a damage touches is copied; the others are shared (recovery writes copy-on-write).
            Media damaged = damage.OnCacheDevice ? final with { Cache = final.Cache.ToArray() } : final with { Pmem = final.Pmem.ToArray() };
            damage.Apply(damaged);
            Verdict verdict = judge.Run(damage, damaged);
            CorruptionAreaResult area = areas.GetValueOrDefault(damage.Area) ?? new CorruptionAreaResult(damage.Area, 0, 0, 0, 0, 0);
            areas[damage.Area] = area with
            {
                Tried = area.Tried + 1,
                Changed = area.Changed + (verdict.Changed ? 1 : 0),
                Refused = area.Refused + (verdict.Refused ? 1 : 0),
                Undetectable = area.Undetectable + (verdict.Undetectable ? 1 : 0),
                Violations = area.Violations + (verdict.Violation is null ? 0 : 1),
                ReadErrors = area.ReadErrors + (verdict.ReadErrors ? 1 : 0),
                SilentReverts = area.SilentReverts + (verdict.SilentRevert ? 1 : 0),
                LookingWrote = area.LookingWrote + (verdict.LookingWrote ? 1 : 0),
            };
            if (verdict.Violation is { } violation)
            {
                firstViolation ??= $"{damage.Area}, {damage.What}: {violation}";
                if (samples.Count < 20)
                {
                    samples.Add($"{damage.Area}, {damage.What}: {violation}");
                }
                if (spec.StopAtFirst)
                {
                    break;
                }
            }
            if (++done % 64 == 0)
            {
                progress?.Invoke(done, damages.Count);
            }
        }
        List<CorruptionAreaResult> results = [.. areas.Values];
        return new CorruptionSweepResult(spec, results, results.Sum(a => a.Tried), results.Sum(a => a.Changed), results.Sum(a => a.Refused),
            results.Sum(a => a.Violations), firstViolation, clock.Elapsed.TotalSeconds) { ViolationSamples = samples };
    }

    /// <summary>
    /// Where the workload "crashes". Damage matters most where recovery can tell it cost acknowledged data: a
    /// block whose last durable (user-level) write lives in a durable segment the superblock record does not cover
    /// yet, which a later segment header vouches for — or, in mode 1, in a pmem record a later record of its buffer
    /// vouches for, of a segment the cache device holds no intact copy of. Whether the end of a run has such blocks
    /// depends on when writeback last ran (a thread), so the crash point is chosen from the recorded log: the latest
    /// acknowledgement after which the media hold some (in mode 1, of both kinds if any point has both), else the end.
    /// </summary>
    private static int ChooseCrashPoint(CampaignSpec spec, Campaign.Geometry geometry, CrashLog log, Oracle oracle)
    {
        IReadOnlyList<CrashEvent> events = log.Events;
        List<int> candidates = [events.Count, .. oracle.AcknowledgementPoints.Where(p => p < events.Count).Reverse()];
        int? withPmem = null;
        int? withCache = null;
        foreach (int point in candidates)
        {
            (Media _, Media media) = Snapshots(spec, geometry, log, point);
            Provenance provenance = new(events, point, geometry, spec.Mode);
            (int cache, int pmem) = provenance.Opportunities(media, oracle, point);
            if (cache > 0 && (spec.Mode == CacheMode.Volatile || pmem > 0))
            {
                return point;
            }
            withPmem ??= pmem > 0 ? point : null;
            withCache ??= cache > 0 ? point : null;
        }
        return withPmem ?? withCache ?? events.Count;
    }

    /// <summary>The media halfway to the crash point (an earlier lap of the ring) and at it, every write issued before it landed.</summary>
    private static (Media Earlier, Media Final) Snapshots(CampaignSpec spec, Campaign.Geometry geometry, CrashLog log, int crashPoint)
    {
        Timelines timelines = new(States.Media.Blank(geometry.BackingBytes, geometry.CacheBytes, geometry.PmemBytes), Campaign.PmemModelOf(spec));
        Media Landed(int point)
        {
            timelines.AdvanceTo(log.Events, point);
            CrashState landed = CrashStates.Build(timelines, CrashStates.ExtraKinds(timelines), geometry.PmemBytes, spec.Seed, point, 1);
            return new Media(Campaign.Materialize(landed.Backing.Image), Campaign.Materialize(landed.Cache.Image), landed.PmemImage is { } pmem ? Campaign.Materialize(pmem) : []);
        }
        Media earlier = Landed(crashPoint / 2);
        return (earlier, Landed(crashPoint));
    }

    private static List<Damage> Plan(CorruptionSweepSpec spec, Campaign.Geometry geometry, Media final, Media earlier)
    {
        List<Damage> plan = [];
        CacheGeometry cache = CacheGeometry.For(geometry.CacheBytes, (int)geometry.Keys["segment_size_order"]);

        // Sector 0: magic, extension (order, flags, identity, sizes, checksum) and the padding after it.
        AddBitFlips(plan, "superblock", 0, Units.SectorBytes, mayRefuse: true, onCache: true);
        AddZeroSector(plan, "superblock", 0, mayRefuse: true);
        long record = SuperblockRecordOnDisk.WriteOffsetBytes + SuperblockRecordOnDisk.RecordOffsetInWrite;
        AddBitFlips(plan, "superblock record", record, 32, mayRefuse: false, onCache: true); // id, its crc, the durable id, its crc
        AddZeroSector(plan, "superblock record", record, mayRefuse: false);

        Random random = new(spec.Seed ^ 0xDA7A);
        int entryBytes = cache.MetablockBytes; // the geometry's rule, the one the device seals with
        for (long slot = 0; slot < cache.NrSegments; slot++)
        {
            long start = cache.SegmentStartBytes(slot);
            SegmentHeaderOnDisk header = SegmentHeaderOnDisk.Read(final.Cache.AsSpan((int)start, SegmentHeaderOnDisk.SizeBytes));
            if (header.Id == 0)
            {
                continue;
            }
            // The kernel's 13 bytes (id, checksum, length), the padding up to ours, and our extension (bytes 16..72).
            AddBitFlips(plan, "segment header", start, HeaderBytesCovered, mayRefuse: false, onCache: true, mayLoseBlockList: true);
            AddBitFlips(plan, "metablocks", start + SegmentHeaderOnDisk.SizeBytes, cache.BlocksPerSegment * entryBytes, mayRefuse: false, onCache: true, mayLoseBlockList: true);
            for (int sector = 0; sector < Units.SectorsPerBlock; sector++)
            {
                AddZeroSector(plan, "segment header", start + sector * Units.SectorBytes, mayRefuse: false, mayLoseBlockList: true);
            }
            // One bit of every data block the segment holds, then random ones.
            for (int i = 0; i < header.Length + spec.DataSamples / Math.Max(1, (int)cache.NrSegments) + 1; i++)
            {
                long at = cache.DataBlockBytes(slot, i < header.Length ? i : random.Next(Math.Max(1, (int)header.Length))) + random.Next(Units.BlockBytes);
                int bit = random.Next(8);
                plan.Add(new Damage("cache data", $"bit {bit} of byte {at}", m => m.Cache[at] ^= (byte)(1 << bit), false, true));
            }
            long slotBytes = cache.SegmentSizeBytes;
            if (!earlier.Cache.AsSpan((int)start, (int)slotBytes).SequenceEqual(final.Cache.AsSpan((int)start, (int)slotBytes)))
            {
                plan.Add(new Damage("stale segment", $"slot {slot} as an earlier lap left it",
                    m => earlier.Cache.AsSpan((int)start, (int)slotBytes).CopyTo(m.Cache.AsSpan((int)start)), false, true, MayLoseBlockList: true));
            }
        }
        long tail = geometry.CacheBytes / 2 / Units.BlockBytes * Units.BlockBytes;
        plan.Add(new Damage("truncation", $"cache zeroed from byte {tail} on (truncated and re-extended)", m => m.Cache.AsSpan((int)tail).Clear(), false, true, MayLoseBlockList: true));
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
                AddBitFlips(plan, "pmem records", layout.RecordOffset(buffer, 0), layout.BlocksPerSegment * PmemLayout.RecordBytes, mayRefuse: false, onCache: false, pmem: true, mayLoseBlockList: true);
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

    /// <summary>The bytes of a segment header the sweep damages: the kernel's 13, the padding up to ours, our extension.</summary>
    private const int HeaderBytesCovered = 72;

    private static void AddBitFlips(List<Damage> plan, string area, long offsetBytes, int lengthBytes, bool mayRefuse, bool onCache, bool pmem = false, bool mayLoseBlockList = false)
    {
        for (int i = 0; i < lengthBytes; i++)
        {
            long at = offsetBytes + i;
            int bit = i % 8;
            plan.Add(new Damage(area, $"bit {bit} of {(pmem ? "pmem " : "")}byte {at}",
                pmem ? m => m.Pmem[at] ^= (byte)(1 << bit) : m => m.Cache[at] ^= (byte)(1 << bit), mayRefuse, onCache, mayLoseBlockList));
        }
    }

    private static void AddZeroSector(List<Damage> plan, string area, long offsetBytes, bool mayRefuse, bool mayLoseBlockList = false)
    {
        long sector = offsetBytes / Units.SectorBytes * Units.SectorBytes;
        plan.Add(new Damage(area, $"sector at byte {sector} zeroed", m => m.Cache.AsSpan((int)sector, Units.SectorBytes).Clear(), mayRefuse, true, mayLoseBlockList));
    }

    /// <summary>What a recovery gave back: the content (zeros where a sector failed), the sectors that failed, the report.</summary>
    private sealed record Outcome(byte[]? Content, RecoveryReport? Report, string? Error, bool Refused, PagedBlockDevice? Backing, PagedBlockDevice? Cache, MemoryPmemRegion? Pmem)
    {
        public string? RefusalMessage { get; init; }
        public HashSet<long> Failed { get; init; } = [];
    }

    private static Outcome Recover(Campaign.Geometry geometry, Media media, CacheMode mode, long cacheBytes = -1, long pmemBytes = -1, FaultHooks? mutant = null, bool acceptLoss = false, bool readOnly = false)
    {
        PagedBlockDevice backing = new(media.Backing, "backing");
        IBlockDevice cacheDevice;
        PagedBlockDevice cache = new(media.Cache, "cache");
        cacheDevice = cacheBytes < 0 ? cache : new ShrunkBlockDevice(cache, cacheBytes);
        MemoryPmemRegion? pmem = mode != CacheMode.Persistent ? null
            : pmemBytes < 0 ? new MemoryPmemRegion(media.Pmem.Length, media.Pmem)
            : new MemoryPmemRegion(pmemBytes, media.Pmem[..(int)pmemBytes]);
        WriteboostOptions options = new() { BufferPoolSize = Campaign.PoolSize, WithoutWorkers = true, Faults = mutant ?? FaultHooks.None, AcceptDataLoss = acceptLoss, ReadOnly = readOnly };
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
            (byte[] content, HashSet<long> failed) = ReadAll(device);
            return new Outcome(content, device.Recovery, null, false, backing, cache, pmem) { Failed = failed };
        }
        finally
        {
            device.Abandon();
        }
    }

    /// <summary>
    /// Reads the whole device as a user would; a block whose read fails is read sector by sector, and each sector
    /// whose read fails is an error (zeros in the content). Which sectors fail is what the reads say, not the
    /// device's own list of poisoned blocks.
    /// </summary>
    internal static (byte[] Content, HashSet<long> Failed) ReadAll(IBlockDevice device)
    {
        byte[] content = new byte[device.SizeBytes];
        HashSet<long> failed = [];
        try
        {
            device.Read(0, content);
            return (content, failed);
        }
        catch (IOException)
        {
            // Some block is poisoned: find out which sectors, one block and then one sector at a time.
        }
        for (long offset = 0; offset < content.Length; offset += Units.BlockBytes)
        {
            try
            {
                device.Read(offset, content.AsSpan((int)offset, Units.BlockBytes));
                continue;
            }
            catch (IOException)
            {
                content.AsSpan((int)offset, Units.BlockBytes).Clear();
            }
            for (long sector = offset; sector < offset + Units.BlockBytes; sector += Units.SectorBytes)
            {
                try
                {
                    device.Read(sector, content.AsSpan((int)sector, Units.SectorBytes));
                }
                catch (IOException)
                {
                    content.AsSpan((int)sector, Units.SectorBytes).Clear();
                    failed.Add(sector / Units.SectorBytes);
                }
            }
        }
        return (content, failed);
    }

    private sealed record Verdict(bool Changed, bool Refused, string? Violation)
    {
        /// <summary>Durable data was lost, but nothing left on the media vouches for it: what a crash just before it became durable leaves.</summary>
        public bool Undetectable { get; init; }
        /// <summary>Some sector reads as an error: its loss is said, not hidden.</summary>
        public bool ReadErrors { get; init; }
        /// <summary>Some sector silently reads older data than its last durable value, and the damage is not undetectable.</summary>
        public bool SilentRevert { get; init; }
        /// <summary>A read-only open wrote to a device.</summary>
        public bool LookingWrote { get; init; }
    }

    /// <summary>The rules of the sweep, applied to one damage at a time (see <see cref="CorruptionSweep"/>).</summary>
    private sealed class Judge(Campaign.Geometry geometry, CacheMode mode, FaultHooks mutant, Oracle oracle, Provenance provenance, Outcome baseline, int baselineProblems, Media final, int crashPoint)
    {
        public Verdict Run(Damage damage, Media damaged)
        {
            Outcome outcome = Recover(geometry, damaged, mode, damage.ShrunkCacheBytes, damage.ShrunkPmemBytes, mutant);
            if (outcome.Error is not null)
            {
                return new Verdict(true, false, outcome.Error);
            }
            if (outcome.Refused)
            {
                return new Verdict(true, true, JudgeRefusal(damage, damaged, outcome.RefusalMessage!));
            }
            if (damage.Shrinks)
            {
                return new Verdict(true, false, $"{damage.What}: accepted");
            }
            bool changed = outcome.Failed.Count > 0 || !outcome.Content!.AsSpan().SequenceEqual(baseline.Content);
            Verdict verdict = Judged(damage, damaged, outcome, changed);
            // A recovery that wrote nothing leaves the damaged media as they were: looking at them, or recovering
            // them again, is the same recovery on the same media (it is deterministic). Looking is judged even when
            // the recovery broke another rule, so the figures count it on its own.
            bool wrote = outcome.Backing!.Image.ModifiedPages + outcome.Cache!.Image.ModifiedPages + (outcome.Pmem?.Image.ModifiedPages ?? 0) > 0;
            if (!wrote)
            {
                return verdict;
            }
            string? looking = LookingWritesNothing(damaged, outcome, out bool lookingWrote);
            verdict = verdict with { Violation = verdict.Violation ?? looking, LookingWrote = lookingWrote };
            return verdict.Violation is null ? verdict with { Violation = Idempotent(outcome) } : verdict;
        }

        /// <summary>The rules for what a recovery that opened reads (garbage, silent reverts, said or not, flagged by wb check).</summary>
        private Verdict Judged(Damage damage, Media damaged, Outcome outcome, bool changed)
        {
            if (oracle.CheckEverWritten(outcome.Content!, outcome.Failed) is { } garbage)
            {
                return new Verdict(changed, false, $"{garbage} (recovery: {Describe(outcome.Report!)})");
            }
            bool undetectable = false;
            if (changed)
            {
                List<long> reverted = oracle.Reverted(crashPoint, outcome.Content!, outcome.Failed);
                if (reverted.Count > 0)
                {
                    if (provenance.Vouched(damage.OnCacheDevice, final, damaged) is { } voucher)
                    {
                        return new Verdict(true, false, $"sector {reverted[0]} (and {reverted.Count - 1} more) silently reads an older value than its last durable one, though {voucher} (recovery: {Describe(outcome.Report!)})") { SilentRevert = true };
                    }
                    undetectable = true; // the media are what a crash just before the lost writes became durable leaves
                }
                else if (outcome.Failed.Count == 0 && !Reports(outcome.Report!))
                {
                    // Only writes that were never durable are gone, and nothing tells: what a crash at the end may leave.
                    undetectable = true;
                }
                // wb check runs once, and only on damage that cost something.
                (int problems, _) = Check(damaged, mode);
                bool reported = Reports(outcome.Report!);
                if (!reported && !undetectable)
                {
                    return new Verdict(true, false, $"the device reads differently from the undamaged recovery, and the recovery report says nothing was lost (recovery: {Describe(outcome.Report!)})");
                }
                if (reported && problems <= baselineProblems)
                {
                    return new Verdict(true, false, "recovery lost data to the damage, but wb check finds nothing wrong");
                }
            }
            return new Verdict(changed, false, null) { Undetectable = undetectable, ReadErrors = outcome.Failed.Count > 0 };
        }

        /// <summary>A refusal must be one the rules allow, and then opening with the loss accepted must work.</summary>
        private string? JudgeRefusal(Damage damage, Media damaged, string message)
        {
            if (damage.MayRefuse)
            {
                return null;
            }
            if (!damage.MayLoseBlockList)
            {
                return $"recovery refused the media ({message}) where it should replay what is intact, poison what is lost and report it";
            }
            // The segment it names must have been durable (recovery may not refuse over a crash's torn tail).
            if (provenance.NamedSegmentWasNeverDurable(message) is { } never)
            {
                return $"recovery refused the media over {never}, which was never durable: a crash's torn write, not a loss ({message})";
            }
            Outcome accepted = Recover(geometry, damaged, mode, mutant: mutant, acceptLoss: true);
            if (accepted.Error is not null || accepted.Refused)
            {
                return $"with the loss accepted, recovery still {(accepted.Error ?? $"refused: {accepted.RefusalMessage}")}";
            }
            if (oracle.CheckEverWritten(accepted.Content!, accepted.Failed) is { } garbage)
            {
                return $"with the loss accepted: {garbage}";
            }
            if (!accepted.Report!.LossAccepted)
            {
                return "with the loss accepted, the recovery report does not say what was given up";
            }
            return Idempotent(accepted);
        }

        /// <summary>A read-only open of the damaged media reads the same and writes nothing to any device: null, or what is wrong.</summary>
        private string? LookingWritesNothing(Media damaged, Outcome readWrite, out bool wrote)
        {
            wrote = false;
            Outcome looked = Recover(geometry, damaged, mode, mutant: mutant, readOnly: true);
            if (looked.Error is not null || looked.Refused)
            {
                return $"a read-only open {(looked.Error ?? $"was refused ({looked.RefusalMessage})")} where a read-write one recovered";
            }
            int pages = looked.Backing!.Image.ModifiedPages + looked.Cache!.Image.ModifiedPages + (looked.Pmem?.Image.ModifiedPages ?? 0);
            if (pages > 0)
            {
                wrote = true;
                return $"a read-only open (wb status) wrote {pages} page(s) to the devices: looking must never write";
            }
            if (!looked.Content!.AsSpan().SequenceEqual(readWrite.Content) || !looked.Failed.SetEquals(readWrite.Failed))
            {
                return "a read-only open reads differently from a read-write one";
            }
            return null;
        }

        /// <summary>Idempotent: the media recovery left behind recover to the same content (and the same errors): null, or what is wrong.</summary>
        private string? Idempotent(Outcome outcome)
        {
            Media after = new(Campaign.Materialize(outcome.Backing!.Image), Campaign.Materialize(outcome.Cache!.Image), outcome.Pmem is null ? [] : Campaign.Materialize(outcome.Pmem.Image));
            Outcome again = Recover(geometry, after, mode, mutant: mutant);
            if (again.Error is not null || again.Refused || !again.Content!.AsSpan().SequenceEqual(outcome.Content) || !again.Failed.SetEquals(outcome.Failed))
            {
                return $"recovering the recovered media again {(again.Error ?? (again.Refused ? $"was refused ({again.RefusalMessage})" : "reads differently"))}";
            }
            return null;
        }
    }

    private static string Describe(RecoveryReport r) =>
        $"record {r.SuperblockRecordId}, replayed {r.FirstReplayedId}..{r.LastReplayedId}, durable up to {r.ProvenDurableId}, dropped {r.SegmentsDiscarded}, pmem rebuilt {r.PmemSegmentsRebuilt}, poisoned {r.PoisonedBlocks}, stop: {r.StopReason ?? "none"}; {string.Join("; ", r.Segments.Select(s => $"segment {s.Id} {s.Kind}: {s.Detail}"))}; {string.Join("; ", r.Warnings)}";

    /// <summary>Whether the report names a loss (the walk always ends somewhere, so its stop reason alone does not).</summary>
    private static bool Reports(RecoveryReport report) =>
        report.Formatted || report.SegmentsDiscarded > 0 || report.Warnings.Count > 0 || report.PmemTornRecords > 0
        || report.Segments.Count > 0 || report.PoisonedBlocks > 0 || report.LossAccepted;

    /// <summary>
    /// What <c>wb check</c> (with <c>--pmem</c> in mode 1) says of the media: how many problems (damage is flagged
    /// when it adds one) and how many intact segments recovery cannot reach (-1: no readable cache at all).
    /// </summary>
    private static (int Problems, int Unreachable) Check(Media media, CacheMode mode)
    {
        CacheReport report;
        try
        {
            report = CacheInspector.Inspect(new PagedBlockDevice(media.Cache, "cache"), null,
                mode == CacheMode.Persistent ? new MemoryPmemRegion(media.Pmem.Length, media.Pmem) : null);
        }
        catch (InvalidDataException)
        {
            return (int.MaxValue, -1); // wb check says there is no (readable) cache at all
        }
        int problems = (report.Superblock != SuperblockState.Formatted ? 1 : 0)
            + (report.RecordChecksumValid == false ? 1 : 0)
            + (report.RecordWarning is not null ? 1 : 0)
            + report.UnreachableIds.Count
            + (report.Refusal is not null ? 1 : 0)
            + report.Warnings.Count
            + report.PoisonedBlocks.Count
            + report.Segments.Count
            + report.Slots.Count(s => !s.IsEmpty && (!s.IdMatchesSlot || !s.ChecksumValid || s.HeaderExtension == HeaderExtensionState.Damaged));
        if (report.Pmem is { } pmem)
        {
            problems += (pmem.Header != PmemHeaderState.Ours ? 1 : 0) + (pmem.Gap is not null ? 1 : 0)
                + pmem.Buffers.Sum(b => b.DamagedRecords + b.TornRecords + b.LostRecords + b.LostUnknownRecords);
        }
        return (problems, report.UnreachableIds.Count);
    }

    /// <summary>
    /// Who wrote what the final media hold, when each write became durable, and which later writes vouch for it —
    /// from the log alone, not from recovery. A segment header records what was durable when it was written (a
    /// pmem record, which slots of its buffer were), so a durable write is vouched for by any segment header (pmem
    /// record of the same buffer) whose write was issued after it became durable and is still intact on the media.
    /// Damage to durable writes no intact voucher covers leaves media no one can tell from a crash just before they
    /// became durable: the one case where older data may come back. (The superblock record also vouches, but the
    /// writeback worker may write it before it learns of a cache flush that just completed, so the judge does not
    /// count on it: it counts only on vouchers that are exact.)
    /// </summary>
    private sealed class Provenance
    {
        private readonly IReadOnlyList<CrashEvent> _events;
        private readonly int _crashPoint;
        private readonly CacheGeometry _cache;
        private readonly PmemLayout? _pmem;
        private readonly int[] _cacheProducer;  // per cache sector: the write that put the final content there (-1: never written)
        private readonly int[] _pmemProducer;   // per pmem byte: the store that did
        private readonly Dictionary<int, int> _durableAt = []; // write or store → the event at which it became durable
        private readonly List<int> _cacheVouchers = [];        // segment writes (their header carries a durable id)
        private readonly List<int> _pmemVouchers = [];         // record stores (each says which slots before it were durable)

        public Provenance(IReadOnlyList<CrashEvent> events, int crashPoint, Campaign.Geometry geometry, CacheMode mode)
        {
            _events = events;
            _crashPoint = crashPoint;
            _cache = CacheGeometry.For(geometry.CacheBytes, (int)geometry.Keys["segment_size_order"]);
            _pmem = mode == CacheMode.Persistent ? new PmemLayout(_cache.SegmentSizeOrder, Campaign.PoolSize, _cache.BlocksPerSegment) : null;
            _cacheProducer = new int[geometry.CacheBytes / Units.SectorBytes];
            _pmemProducer = new int[geometry.PmemBytes];
            Array.Fill(_cacheProducer, -1);
            Array.Fill(_pmemProducer, -1);
            // When each write and store became durable is the engine's durability model's to say (the timelines);
            // who produced what the media hold, and which writes vouch, is this type's.
            Timelines timelines = new(States.Media.Blank(geometry.BackingBytes, geometry.CacheBytes, geometry.PmemBytes), _pmem is null ? null : new PmemModel(Pmem.PmemBackend.Dax));
            timelines.Backing.BecameDurable = (write, at) => _durableAt.TryAdd(write, at);
            timelines.Cache.BecameDurable = (write, at) => _durableAt.TryAdd(write, at);
            Dictionary<int, int> piecesPending = []; // store → its lines not yet durable
            Dictionary<int, int> lastPieceAt = [];
            if (timelines.PmemLines is { } lines)
            {
                lines.BecameDurable = (store, at) =>
                {
                    lastPieceAt[store] = Math.Max(lastPieceAt.GetValueOrDefault(store), at);
                    if (--piecesPending[store] == 0)
                    {
                        _durableAt.TryAdd(store, lastPieceAt[store]); // a store spanning lines is durable once its last line is
                    }
                };
            }
            for (int i = 0; i < crashPoint; i++)
            {
                CrashEvent e = events[i];
                switch (e.Kind)
                {
                    case EventKind.Write when e.Device == DeviceId.Cache:
                        for (long sector = e.OffsetBytes / Units.SectorBytes; sector < (e.OffsetBytes + e.LengthBytes) / Units.SectorBytes; sector++)
                        {
                            _cacheProducer[sector] = i;
                        }
                        if (IsSegmentWrite(e))
                        {
                            _cacheVouchers.Add(i);
                        }
                        break;
                    case EventKind.PmemStore:
                        for (long b = e.OffsetBytes; b < e.OffsetBytes + e.LengthBytes; b++)
                        {
                            _pmemProducer[b] = i;
                        }
                        piecesPending[i] = (int)((e.OffsetBytes + e.LengthBytes - 1) / PmemTimeline.LineBytes - e.OffsetBytes / PmemTimeline.LineBytes + 1);
                        if (IsRecordStore(e))
                        {
                            _pmemVouchers.Add(i);
                        }
                        break;
                    default:
                        break;
                }
                timelines.AdvanceTo(events, i + 1);
            }
        }

        private bool IsSegmentWrite(CrashEvent e)
        {
            long relative = e.OffsetBytes - CacheGeometry.SuperblockRegionBytes;
            return relative >= 0 && relative % _cache.SegmentSizeBytes == 0 && e.LengthBytes >= Units.BlockBytes;
        }

        private bool IsRecordStore(CrashEvent e)
        {
            if (_pmem is null || e.LengthBytes != PmemLayout.RecordBytes)
            {
                return false;
            }
            for (int k = 0; k < _pmem.PoolSize; k++)
            {
                long first = _pmem.RecordOffset(k, 0);
                if (e.OffsetBytes >= first && e.OffsetBytes < first + _cache.BlocksPerSegment * PmemLayout.RecordBytes)
                {
                    return true;
                }
            }
            return false;
        }

        private int BufferOf(long pmemOffset) =>
            _pmem is null || pmemOffset < PmemLayout.RegionHeaderBytes ? -1 : (int)((pmemOffset - PmemLayout.RegionHeaderBytes) / _pmem.BufferBytes);

        /// <summary>
        /// Null when the damage (what differs between <paramref name="final"/> and <paramref name="damaged"/>) hit
        /// only writes that were not durable, or durable ones no intact voucher covers; else what vouches for one.
        /// Only writes that still own the start of what they wrote count: an earlier lap's data beyond the length
        /// of the segment now in its slot is nobody's.
        /// </summary>
        public string? Vouched(bool onCache, Media final, Media damaged)
        {
            byte[] before = onCache ? final.Cache : final.Pmem;
            byte[] after = onCache ? damaged.Cache : damaged.Pmem;
            int unit = onCache ? Units.SectorBytes : 1;
            int[] producer = onCache ? _cacheProducer : _pmemProducer;
            HashSet<int> hit = [];
            int length = Math.Min(before.Length, after.Length);
            for (int at = 0; at < length; at += unit)
            {
                if (!before.AsSpan(at, unit).SequenceEqual(after.AsSpan(at, unit)) && producer[at / unit] is >= 0 and int w)
                {
                    hit.Add(w);
                }
            }
            foreach (int w in hit.Order())
            {
                CrashEvent write = _events[w];
                if (!_durableAt.TryGetValue(w, out int durable) || producer[write.OffsetBytes / unit] != w)
                {
                    continue; // never durable (a crash may lose it anyway), or no longer its own (overwritten at its start)
                }
                List<int> vouchers = onCache ? _cacheVouchers : _pmemVouchers;
                foreach (int c in vouchers)
                {
                    CrashEvent voucher = _events[c];
                    if (c <= durable || (!onCache && BufferOf(voucher.OffsetBytes) != BufferOf(write.OffsetBytes)))
                    {
                        continue;
                    }
                    int start = (int)voucher.OffsetBytes;
                    int span = onCache ? Units.SectorBytes : PmemLayout.RecordBytes;
                    bool owns = producer[start / unit] == c && (onCache || producer[start + span - 1] == c);
                    if (owns && after.AsSpan(start, span).SequenceEqual(voucher.Data.AsSpan(0, span)))
                    {
                        return onCache
                            ? $"the segment header written at event {c} (slot {(voucher.OffsetBytes - CacheGeometry.SuperblockRegionBytes) / _cache.SegmentSizeBytes}) is intact and was written after the damaged write (event {w}) became durable (event {durable})"
                            : $"the pmem record written at event {c} is intact and was written after the damaged store (event {w}) became durable (event {durable})";
                    }
                }
            }
            return null;
        }

        /// <summary>
        /// How many data blocks of <paramref name="media"/> hold the last durable (user-level) value of some sector
        /// in a place a correct recovery can tell apart from a crash: a durable segment after the record that a later
        /// segment write vouches for (and no later segment holds the block); in mode 1, a valid pmem record with a
        /// later valid record in its buffer, of a segment with no intact copy on the cache device.
        /// </summary>
        public (int Cache, int Pmem) Opportunities(Media media, Oracle oracle, int point)
        {
            int cache = 0;
            int pmem = 0;
            byte[] recordBlock = media.Cache.AsSpan((int)SuperblockRecordOnDisk.WriteOffsetBytes, Units.BlockBytes).ToArray();
            ulong record = SuperblockRecordOnDisk.Read(recordBlock).LastWritebackId;
            Dictionary<ulong, long> intact = [];
            Dictionary<long, ulong> newestCopy = [];
            for (long slot = 0; slot < _cache.NrSegments; slot++)
            {
                long start = _cache.SegmentStartBytes(slot);
                SegmentSlotRead read = SegmentLogReader.Validate(media.Cache.AsSpan((int)start, (int)_cache.SegmentSizeBytes), _cache, slot);
                SegmentHeaderOnDisk header = read.Header;
                if (!read.IsValid || header.Id <= record)
                {
                    continue;
                }
                intact[header.Id] = slot;
                for (int i = 0; i < header.Length; i++)
                {
                    MetablockOnDisk entry = MetablockOnDisk.Read(media.Cache.AsSpan((int)start), i, _cache.MetablockBytes);
                    long block = entry.BackingSector / Units.SectorsPerBlock;
                    if (entry.DirtyBits != 0 && (!newestCopy.TryGetValue(block, out ulong newer) || newer < header.Id))
                    {
                        newestCopy[block] = header.Id;
                    }
                }
            }
            foreach ((ulong id, long slot) in intact)
            {
                long start = _cache.SegmentStartBytes(slot);
                int w = _cacheProducer[start / Units.SectorBytes];
                if (w < 0 || !_durableAt.TryGetValue(w, out int durable) || !_cacheVouchers.Any(c => c > durable && _cacheProducer[_events[c].OffsetBytes / Units.SectorBytes] == c))
                {
                    continue;
                }
                SegmentHeaderOnDisk header = SegmentHeaderOnDisk.Read(media.Cache.AsSpan((int)start));
                for (int i = 0; i < header.Length; i++)
                {
                    MetablockOnDisk entry = MetablockOnDisk.Read(media.Cache.AsSpan((int)start), i, _cache.MetablockBytes);
                    long block = entry.BackingSector / Units.SectorsPerBlock;
                    if (entry.DirtyBits != 0 && newestCopy[block] == id && HoldsLastDurable(oracle, point, block, entry.DirtyBits, media.Cache.AsSpan((int)_cache.DataBlockBytes(slot, i), Units.BlockBytes)))
                    {
                        cache++;
                    }
                }
            }
            if (_pmem is not null)
            {
                // The pmem buffers of segments with no intact copy on the cache device, and the newest copy of each block in them.
                List<(int K, ulong Id, List<(int Slot, PmemRecord Record)> Valid)> buffers = [];
                Dictionary<long, (ulong Id, int Slot)> newestInPmem = [];
                for (int k = 0; k < _pmem.PoolSize; k++)
                {
                    ulong id = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(media.Pmem.AsSpan((int)_pmem.BufferHeaderOffset(k)));
                    if (id <= record || intact.ContainsKey(id))
                    {
                        continue;
                    }
                    List<(int Slot, PmemRecord Record)> valid = [];
                    for (int i = 0; i < _cache.BlocksPerSegment; i++)
                    {
                        ReadOnlySpan<byte> bytes = media.Pmem.AsSpan((int)_pmem.RecordOffset(k, i), PmemLayout.RecordBytes);
                        if (PmemRecord.ReadValid(bytes, media.Pmem.AsSpan((int)_pmem.DataOffset(k, i), Units.BlockBytes), id, i) is { } r)
                        {
                            valid.Add((i, r));
                            if (!newestInPmem.TryGetValue(r.Block, out (ulong Id, int Slot) newer) || (newer.Id, newer.Slot).CompareTo((id, i)) < 0)
                            {
                                newestInPmem[r.Block] = (id, i);
                            }
                        }
                    }
                    buffers.Add((k, id, valid));
                }
                foreach ((int k, ulong id, List<(int Slot, PmemRecord Record)> valid) in buffers)
                {
                    for (int v = 0; v + 1 < valid.Count; v++)
                    {
                        (int i, PmemRecord r) = valid[v];
                        bool newest = newestInPmem[r.Block] == (id, i) && (!newestCopy.TryGetValue(r.Block, out ulong onCache) || onCache < id);
                        if (newest && HoldsLastDurable(oracle, point, r.Block, r.DirtyBits, media.Pmem.AsSpan((int)_pmem.DataOffset(k, i), Units.BlockBytes)))
                        {
                            pmem++;
                        }
                    }
                }
            }
            return (cache, pmem);
        }

        private static bool HoldsLastDurable(Oracle oracle, int point, long block, byte bits, ReadOnlySpan<byte> data)
        {
            for (int s = 0; s < Units.SectorsPerBlock; s++)
            {
                ReadOnlySpan<byte> last = oracle.LastDurable(point, block * Units.SectorsPerBlock + s);
                if (Units.HasSector(bits, s) && !last.IsEmpty && last.SequenceEqual(data.Slice(s * Units.SectorBytes, Units.SectorBytes)))
                {
                    return true;
                }
            }
            return false;
        }

        /// <summary>The segment a refusal names ("segment N (slot S) was durable"), if no write of it to the cache device was ever durable; else null.</summary>
        public string? NamedSegmentWasNeverDurable(string refusal)
        {
            System.Text.RegularExpressions.Match match = System.Text.RegularExpressions.Regex.Match(refusal, @"segment (\d+) \(slot \d+\) was durable");
            if (!match.Success)
            {
                return "no segment at all (the refusal names none)";
            }
            ulong id = ulong.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            long start = _cache.SegmentStartBytes(_cache.SlotOf(id));
            bool written = false;
            for (int i = 0; i < _crashPoint; i++)
            {
                CrashEvent e = _events[i];
                if (e.Kind == EventKind.Write && e.Device == DeviceId.Cache && e.OffsetBytes == start && e.LengthBytes >= 8
                    && System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(e.Data) == id)
                {
                    written = true;
                    if (_durableAt.ContainsKey(i))
                    {
                        return null;
                    }
                }
            }
            // Mode 1: a segment still only in pmem was acknowledged there; its records are what the refusal is about.
            return !written && refusal.Contains("pmem", StringComparison.Ordinal) ? null : $"segment {id}";
        }
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
