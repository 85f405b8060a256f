using System.Diagnostics;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.States;
using Writeboost.CrashTest.Targets;
using Writeboost.Pmem;

namespace Writeboost.CrashTest.Faults;

/// <summary>
/// The corruption sweep for a design of one's own (<see cref="CorruptionSweepSpec.Target"/>): the media its workload
/// left (everything issued landed) damaged one way at a time — every byte of each metadata region the design names
/// (<see cref="ICrashTarget.MetadataRegions"/>) gets a bit flipped and each of its sectors (lines) is zeroed, and bits
/// all over its cache device and pmem region are flipped at random. After each, the design recovers and is read
/// whole, and is judged by what it can be judged by from the outside (docs/crash-model.md, "Damaged media"):
/// <list type="number">
/// <item>no exception escapes recovery or a read but a clear refusal of the media (<see cref="InvalidDataException"/>
/// or <see cref="IOException"/>), or a read that fails (its loss said);</item>
/// <item>never a read of data that was not written there — save a flipped bit of the data itself read back as it
/// was damaged (the design keeps no checksum of its data: counted, as <c>unchecked data</c>);</item>
/// <item>recovery ends (a bound per damage: past it the sweep stops with a violation);</item>
/// <item>recovery is idempotent: recovering the recovered media again reads the same.</item>
/// </list>
/// Older data read back silently (no read error, no <see cref="ICrashTargetDevice.ClaimedLoss"/>) is counted as a
/// silent revert: what the design's users would not be told. Whether anything on the media could have told is the
/// design's to say; the writeboost device's own sweep (<see cref="CorruptionSweep"/>) proves it for its format.
/// </summary>
internal static class DesignCorruptionSweep
{
    /// <summary>Bytes of one region whose bits are flipped; past it, this many evenly spread.</summary>
    private const int FlipsPerRegion = 4096;

    /// <summary>Sectors (lines) of one region zeroed; past it, this many evenly spread.</summary>
    private const int ZerosPerRegion = 64;

    /// <summary>With no region named, at least this many random flips: every byte is fair game.</summary>
    private const int UnnamedFlips = 2000;

    /// <summary>One way of damaging the media: where, what, and the bytes it puts there (over a layer of the final media).</summary>
    private sealed record Damage(string Area, string What, DeviceId Device, long OffsetBytes, byte[] Bytes, bool SingleBit);

    private sealed record Outcome(byte[]? Content, HashSet<long> Failed, string? Claimed, string? Refusal, string? Error);

    public static CorruptionSweepResult Run(CorruptionSweepSpec spec, ICrashTarget target, Action<long, long>? progress, CancellationToken cancel)
    {
        Stopwatch clock = Stopwatch.StartNew();
        CampaignSpec campaign = CampaignSpec.For(target, spec.Workload, spec.Seed, spec.Ops, 0);
        TargetGeometry geometry = campaign.Geometry;
        PmemModel? model = Campaign.PmemModelOf(campaign);
        CrashLog log = Campaign.Record(campaign);
        Oracle oracle = new(log.Events);
        int crashPoint = ChooseCrashPoint(target, geometry, model, log, oracle, spec.Seed);

        Timelines timelines = new(Media.Blank(geometry.BackingBytes, geometry.CacheBytes, geometry.PmemBytes), model);
        timelines.AdvanceTo(log.Events, crashPoint);
        CrashState landed = CrashStates.Build(timelines, CrashStates.ExtraKinds(timelines), geometry.PmemBytes, spec.Seed, crashPoint, 1);
        // What every damage starts from: frozen, and each damage is recovered on layers over it.
        Media final = new(landed.Backing.Image, landed.Cache.Image, landed.PmemImage ?? new PagedImage([]));
        CrashState Fresh() => new(new Timelines(final, model), geometry.PmemBytes);

        Outcome baseline = Recover(target, Fresh(), spec.Seed);
        string? baselineProblem = baseline.Error ?? (baseline.Refusal is { } refused ? $"refused: {refused}" : null)
            ?? (baseline.Failed.Count > 0 ? $"{baseline.Failed.Count} sector(s) read as errors" : null)
            ?? oracle.Check(crashPoint, baseline.Content!);
        if (baselineProblem is not null)
        {
            return new CorruptionSweepResult(spec, [], 0, 0, 0, 1, $"the undamaged media do not recover: {baselineProblem}", clock.Elapsed.TotalSeconds);
        }

        List<Damage> damages = Plan(spec, target, geometry, model, Fresh(), final);
        Dictionary<string, CorruptionAreaResult> areas = [];
        List<string> samples = [];
        string? firstViolation = null;
        int done = 0;
        string? hung = null;
        bool stop = false; // set once the judge is seen hung: it judges nothing more when (if) it comes back
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? failed = null; // the sweep's own failure, thrown on the caller's thread
        // The judge runs on a thread of its own: a recovery that never ends is seen, not suffered.
        Thread judge = new(() =>
        {
            try
            {
                JudgeAll();
            }
#pragma warning disable CA1031 // Rethrown on the caller's thread below: a background thread's exception would end the process.
            catch (Exception error)
            {
                failed = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error);
            }
#pragma warning restore CA1031
        }) { IsBackground = true, Name = "wb-corrupt-design" };
        void JudgeAll()
        {
            foreach (Damage damage in damages)
            {
                if (cancel.IsCancellationRequested || Volatile.Read(ref stop))
                {
                    break;
                }
                CrashState state = Fresh();
                ImageOf(state, damage.Device).Write(damage.OffsetBytes, damage.Bytes);
                (bool changed, bool refused, bool readErrors, bool silentRevert, bool uncheckedData, string? violation) = Judge(target, spec.Seed, oracle, crashPoint, baseline, state, damage);
                lock (areas)
                {
                    CorruptionAreaResult area = areas.GetValueOrDefault(damage.Area) ?? new CorruptionAreaResult(damage.Area, 0, 0, 0, 0, 0);
                    areas[damage.Area] = area with
                    {
                        Tried = area.Tried + 1,
                        Changed = area.Changed + (changed ? 1 : 0),
                        Refused = area.Refused + (refused ? 1 : 0),
                        Violations = area.Violations + (violation is null ? 0 : 1),
                        ReadErrors = area.ReadErrors + (readErrors ? 1 : 0),
                        SilentReverts = area.SilentReverts + (silentRevert ? 1 : 0),
                        UncheckedData = area.UncheckedData + (uncheckedData ? 1 : 0),
                    };
                    if (violation is not null)
                    {
                        firstViolation ??= $"{damage.Area}, {damage.What}: {violation}";
                        if (samples.Count < 20)
                        {
                            samples.Add($"{damage.Area}, {damage.What}: {violation}");
                        }
                    }
                }
                if (violation is not null && spec.StopAtFirst)
                {
                    break;
                }
                if (Interlocked.Increment(ref done) % 64 == 0)
                {
                    progress?.Invoke(done, damages.Count);
                }
            }
        }
        judge.Start();
        int seen = -1;
        while (!judge.Join(spec.RecoveryBound))
        {
            int now = Volatile.Read(ref done);
            if (now == seen)
            {
                Volatile.Write(ref stop, true);
                hung = $"hung: no damage was judged for {spec.RecoveryBound.TotalSeconds:F0} s after damage {now + 1} of {damages.Count} ({damages[now].Area}, {damages[now].What}): recovery or a read of the damaged media never ended";
                break;
            }
            seen = now;
        }
        failed?.Throw();
        lock (areas)
        {
            List<CorruptionAreaResult> results = [.. areas.Values];
            int violations = results.Sum(a => a.Violations) + (hung is null ? 0 : 1);
            return new CorruptionSweepResult(spec, results, results.Sum(a => a.Tried), results.Sum(a => a.Changed), results.Sum(a => a.Refused),
                violations, hung ?? firstViolation, clock.Elapsed.TotalSeconds) { ViolationSamples = hung is null ? [.. samples] : [hung, .. samples] };
        }
    }

    /// <summary>
    /// Where the workload "crashes" (everything issued before it landed): of the points right after an
    /// acknowledgement and the end, the one where the design names the most metadata (the latest of equals) — a log
    /// that was just emptied names little to damage. The end when the design names none.
    /// </summary>
    private static int ChooseCrashPoint(ICrashTarget target, TargetGeometry geometry, PmemModel? model, CrashLog log, Oracle oracle, int seed)
    {
        IReadOnlyList<CrashEvent> events = log.Events;
        Timelines timelines = new(Media.Blank(geometry.BackingBytes, geometry.CacheBytes, geometry.PmemBytes), model);
        (int Point, long Bytes) best = (events.Count, -1);
        foreach (int point in oracle.AcknowledgementPoints.Where(p => p < events.Count).Append(events.Count))
        {
            timelines.AdvanceTo(events, point);
            CrashState landed = CrashStates.Build(timelines, CrashStates.ExtraKinds(timelines), geometry.PmemBytes, seed, point, 1);
            long bytes = target.MetadataRegions(new TargetDevices(landed.Backing, landed.Cache, landed.Pmem)).Sum(r => r.LengthBytes);
            if (bytes >= best.Bytes)
            {
                best = (point, bytes);
            }
        }
        return best.Point;
    }

    /// <summary>The rules of the sweep (see <see cref="DesignCorruptionSweep"/>) for one damaged state.</summary>
    private static (bool Changed, bool Refused, bool ReadErrors, bool SilentRevert, bool UncheckedData, string? Violation) Judge(
        ICrashTarget target, int seed, Oracle oracle, int crashPoint, Outcome baseline, CrashState state, Damage damage)
    {
        long damaged = WritesTo(state);
        Outcome outcome = Recover(target, state, seed);
        if (outcome.Error is not null)
        {
            return (true, false, false, false, false, outcome.Error);
        }
        if (outcome.Refusal is not null)
        {
            return (true, true, false, false, false, null);
        }
        byte[] content = outcome.Content!;
        bool changed = outcome.Failed.Count > 0 || !content.AsSpan().SequenceEqual(baseline.Content);
        bool uncheckedData = false;
        List<long> wrong = changed ? oracle.NeverWritten(content, outcome.Failed) : [];
        if (wrong.Count > 0)
        {
            // A flipped bit read back in the data it flipped is the design keeping no checksum of its data; anything
            // else — data from the wrong place, a zeroed sector surfacing as data — is garbage.
            ReadOnlySpan<byte> Sector(long s) => content.AsSpan((int)(s * SectorBytes), SectorBytes);
            List<long> garbage = damage.SingleBit ? [.. wrong.Where(s => !oracle.OneBitFromWritten(s, Sector(s)))] : wrong;
            if (garbage.Count > 0)
            {
                return (true, false, outcome.Failed.Count > 0, false, false,
                    $"sector {garbage[0]} holds data that was never written there{(garbage.Count > 1 ? $" (and {garbage.Count - 1} more)" : "")} (recovery: {outcome.Claimed ?? "claims no loss"})");
            }
            uncheckedData = true;
        }
        // Older data, silently: sectors that read neither their last durable value nor a later one, other than the
        // flipped data counted above.
        bool silentRevert = changed && outcome.Failed.Count == 0 && outcome.Claimed is null && oracle.Reverted(crashPoint, content, outcome.Failed).Except(wrong).Any();
        // Recovering what recovery left again reads the same (only needed when it wrote something).
        if (WritesTo(state) > damaged)
        {
            Outcome again = Recover(target, state.Snapshot(), seed);
            if (again.Error is not null || again.Refusal is not null || !again.Content!.AsSpan().SequenceEqual(content) || !again.Failed.SetEquals(outcome.Failed))
            {
                return (changed, false, outcome.Failed.Count > 0, silentRevert, uncheckedData,
                    $"recovering the recovered media again {again.Error ?? (again.Refusal is { } r ? $"was refused ({r})" : "reads differently")}");
            }
        }
        return (changed, false, outcome.Failed.Count > 0, silentRevert, uncheckedData, null);
    }

    private const int SectorBytes = 512;

    /// <summary>Writes made to the state's devices: the damage's, and recovery's.</summary>
    private static long WritesTo(CrashState state) => state.Backing.Image.Writes + state.Cache.Image.Writes + (state.PmemImage?.Writes ?? 0);

    private static Outcome Recover(ICrashTarget target, CrashState state, int seed)
    {
        ICrashTargetDevice device;
        try
        {
            device = target.Open(new TargetDevices(state.Backing, state.Cache, state.Pmem), new TargetOpen(Live: false, 0, seed));
        }
        catch (Exception error) when (error is InvalidDataException or IOException)
        {
            return new Outcome(null, [], null, error.Message, null);
        }
#pragma warning disable CA1031 // Anything else out of recovery or a read is what this sweep exists to find.
        catch (Exception error)
        {
            return new Outcome(null, [], null, null, $"recovery threw {error.GetType().Name}: {error.Message}");
        }
        try
        {
            (byte[] content, HashSet<long> failed) = CorruptionSweep.ReadAll(device);
            return new Outcome(content, failed, device.ClaimedLoss, null, null);
        }
        catch (Exception error)
        {
            return new Outcome(null, [], null, null, $"a read threw {error.GetType().Name}: {error.Message}");
        }
#pragma warning restore CA1031
        finally
        {
            device.Crash();
        }
    }

    private static PagedImage ImageOf(CrashState state, DeviceId device) => device switch
    {
        DeviceId.Backing => state.Backing.Image,
        DeviceId.Cache => state.Cache.Image,
        _ => state.PmemImage!,
    };

    private static List<Damage> Plan(CorruptionSweepSpec spec, ICrashTarget target, TargetGeometry geometry, PmemModel? model, CrashState media, Media final)
    {
        IReadOnlyList<MetadataRegion> regions = target.MetadataRegions(new TargetDevices(media.Backing, media.Cache, media.Pmem));
        foreach (MetadataRegion region in regions)
        {
            long length = region.Device switch
            {
                DeviceId.Backing => geometry.BackingBytes,
                DeviceId.Cache => geometry.CacheBytes,
                DeviceId.Pmem => geometry.PmemBytes,
                _ => throw new ArgumentException($"{target.Name}: metadata region '{region.Name}' is on {region.Device}, which has no media (backing, cache or pmem)"),
            };
            if (region.OffsetBytes < 0 || region.LengthBytes <= 0 || region.OffsetBytes + region.LengthBytes > length)
            {
                throw new ArgumentException($"{target.Name}: metadata region '{region.Name}' (bytes {region.OffsetBytes}..{region.OffsetBytes + region.LengthBytes} of {region.Device}) is not inside its {length}-byte device");
            }
        }
        List<Damage> plan = [];
        byte Original(DeviceId device, long at) => (device switch { DeviceId.Backing => final.Backing, DeviceId.Cache => final.Cache, _ => final.Pmem })[at];
        foreach (MetadataRegion region in regions)
        {
            string device = region.Device.ToString().ToLowerInvariant();
            long flips = Math.Min(region.LengthBytes, FlipsPerRegion);
            for (long i = 0; i < flips; i++)
            {
                long at = region.OffsetBytes + i * region.LengthBytes / flips;
                int bit = (int)(i % 8);
                plan.Add(new Damage(region.Name, $"bit {bit} of {device} byte {at}", region.Device, at, [(byte)(Original(region.Device, at) ^ (1 << bit))], SingleBit: true));
            }
            int unit = region.Device == DeviceId.Pmem && model?.Backend == PmemBackend.Dax ? PmemRegion.CacheLineBytes : SectorBytes;
            long first = region.OffsetBytes / unit;
            long units = (region.OffsetBytes + region.LengthBytes + unit - 1) / unit - first;
            long zeros = Math.Min(units, ZerosPerRegion);
            for (long i = 0; i < zeros; i++)
            {
                long at = (first + i * units / zeros) * unit;
                plan.Add(new Damage(region.Name, $"{(unit == SectorBytes ? "sector" : "line")} at {device} byte {at} zeroed", region.Device, at, new byte[unit], SingleBit: false));
            }
        }
        // The rest of the cache device and the pmem region, at random (the backing store is the user's disk: its
        // integrity is not a cache's to keep, unless the design names a region of it).
        List<(DeviceId Device, long Bytes)> devices = [.. ((DeviceId, long)[])[(DeviceId.Cache, geometry.CacheBytes), (DeviceId.Pmem, geometry.PmemBytes)]];
        devices.RemoveAll(d => d.Bytes == 0);
        long total = devices.Sum(d => d.Bytes);
        int samples = regions.Count == 0 ? Math.Max(spec.DataSamples, UnnamedFlips) : spec.DataSamples;
        Random random = new(spec.Seed ^ 0xDA7A);
        for (int i = 0; i < samples && total > 0; i++)
        {
            long pick = random.NextInt64(total);
            (DeviceId device, long bytes) = devices.First(d => (pick -= d.Bytes) < 0);
            long at = random.NextInt64(bytes);
            if (regions.Any(r => r.Device == device && at >= r.OffsetBytes && at < r.OffsetBytes + r.LengthBytes))
            {
                continue; // named: swept byte by byte above
            }
            int bit = random.Next(8);
            string name = device.ToString().ToLowerInvariant();
            plan.Add(new Damage(regions.Count == 0 ? $"{name} (any byte)" : $"{name} (unnamed bytes)", $"bit {bit} of {name} byte {at}", device, at, [(byte)(Original(device, at) ^ (1 << bit))], SingleBit: true));
        }
        return plan;
    }
}
