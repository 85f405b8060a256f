using Writeboost.Cache.Core;
using Writeboost.Cache.Recovery;
using Writeboost.Cache.Format;
using Writeboost.Cache.Inspect;
using Writeboost.Cache.Table;
using Writeboost.CrashTest.Configs;
using Writeboost.CrashTest.Mutants;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.CrashTest.Targets;

/// <summary>The writeboost device as a crash-test target: one mode and one configuration, maybe with a seeded bug.</summary>
public sealed record WriteboostTarget(CacheMode Mode, CrashConfig Config, string Mutant = "none") : ICrashTarget
{
    /// <summary>The modulator's "second" in the harness: periodic work runs within a workload of milliseconds.</summary>
    private static readonly TimeSpan HarnessSecond = TimeSpan.FromMilliseconds(5);

    public string Name => $"writeboost mode {(int)Mode}, {Config.Describe(Mode)}";

    /// <summary>An open shares nothing with another but a seeded bug's hooks, which keep no state; hooks given directly (the fault sweep's) may count their calls.</summary>
    public bool OpensConcurrently => Hooks is null;

    /// <summary>The device's answers at its decision points given directly (the fault sweep's); overrides <see cref="Mutant"/>.</summary>
    internal FaultHooks? Hooks { get; init; }

    public TargetGeometry GeometryFor(Workload workload) => new(
        CrashConfig.BackingBytesFor(workload),
        Config.CacheBytesFor(workload),
        Mode == CacheMode.Persistent || Config.GainsPmem(Mode) ? Config.PmemBytes : 0,
        Config.PmemBackend);

    public ICrashTargetDevice Open(TargetDevices devices, TargetOpen options)
    {
        ArgumentNullException.ThrowIfNull(devices);
        ArgumentNullException.ThrowIfNull(options);
        CrashConfig config = Config.ForLife(options.Life, options.Seed);
        WriteboostOptions open = new()
        {
            BufferPoolSize = config.PoolSize,
            WithoutWorkers = !options.Live,
            Faults = Hooks ?? MutantCatalogue.HooksFor(Mutant),
            Schedule = options.Hooks ?? ScheduleHooks.None,
            ModulatorSecond = HarnessSecond,
            RecoveryMemo = t_recoveryMemo ??= new(),
        };
        // Intact segments beyond recovery's walk are read off the media (wb check's walk) before recovery runs,
        // not taken from what recovery says it did: a careless recovery is exactly one that does not say.
        int unreachable = options.Survey && devices.Cache.SizeBytes > 0 ? Unreachable(devices.Cache) : 0;
        // A mode-0 life of a cache that gains pmem later leaves the region untouched (CrashConfig.ModeForLife).
        PmemRegion? pmem = Config.ModeForLife(Mode, options.Life) == CacheMode.Persistent ? devices.Pmem : null;
        WriteboostDevice device = WriteboostDevice.Open(devices.Backing, devices.Cache, config.CreateTunables(), open, pmem);
        return new Opened(device, unreachable);
    }

    /// <summary>What the last recovery on this thread read: the next state's recovery reads only the pages that differ.</summary>
    [ThreadStatic]
    private static RecoveryMemo? t_recoveryMemo;

    private static int Unreachable(IBlockDevice cache)
    {
        try
        {
            return CacheInspector.Inspect(cache).UnreachableIds.Count;
        }
        catch (InvalidDataException)
        {
            return 0; // blank media: nothing to inspect
        }
    }

    /// <summary>An opened writeboost device.</summary>
    private sealed class Opened(WriteboostDevice device, int unreachable) : ICrashTargetDevice
    {
        public string Name => device.Name;
        public int SectorSizeBytes => device.SectorSizeBytes;
        public long SizeBytes => device.SizeBytes;
        public bool DurabilityIsCheap => device.DurabilityIsCheap;

        public int RecoveryWork
        {
            get
            {
                RecoveryReport report = device.Recovery;
                return 4 * unreachable + 2 * report.SegmentsDiscarded + report.PmemSegmentsRebuilt + report.PmemTornRecords;
            }
        }

        public string? RecoveryStory
        {
            get
            {
                RecoveryReport r = device.Recovery;
                if (r.Formatted)
                {
                    return r.DrainedForWriteAround
                        ? "recovery wrote back what it found dirty and formatted the cache (this life's table has write_around_mode 1)"
                        : "recovery formatted the cache (blank media)";
                }
                string replayed = r.SegmentsReplayed == 0 ? "replayed no segment" : $"replayed segments {r.FirstReplayedId}..{r.LastReplayedId}";
                string discarded = r.SegmentsDiscarded == 0 ? "" : $", discarded {r.SegmentsDiscarded}";
                string rebuilt = r.PmemSegmentsRebuilt == 0 ? "" : $", rebuilt {r.PmemSegmentsRebuilt} from pmem";
                string torn = r.PmemTornRecords == 0 ? "" : $", dropped {r.PmemTornRecords} torn pmem record(s)";
                string stop = r.StopReason is null ? "" : $" (walk ended: {r.StopReason})";
                return $"recovery started after the record ({r.SuperblockRecordId}), {replayed}{discarded}{rebuilt}{torn}{stop}";
            }
        }

        public IReadOnlyCollection<string> RecoveryDebris
        {
            get
            {
                RecoveryReport r = device.Recovery;
                List<string> debris = [];
                List<SegmentRecovery> dropped = [.. r.Segments.Where(s => s.Kind == "crash-tail")];
                List<ulong> tombstoned = [.. dropped.Where(s => s.Detail.Contains("an empty segment keeps its id", StringComparison.Ordinal)).Select(s => s.Id).Order()];
                if (tombstoned.Count > 0)
                {
                    debris.Add(DebrisKinds.Tombstone);
                }
                if (tombstoned.Zip(tombstoned.Skip(1)).Any(pair => pair.Second == pair.First + 1))
                {
                    debris.Add(DebrisKinds.TwoGapsInARow);
                }
                if (tombstoned.Contains(r.SuperblockRecordId + 1))
                {
                    debris.Add(DebrisKinds.GapAfterRecord);
                }
                if (dropped.Count > tombstoned.Count)
                {
                    debris.Add(DebrisKinds.DiscardedTail);
                }
                if (r.PmemSegmentsRebuilt > 0)
                {
                    debris.Add(DebrisKinds.RebuiltFromPmem);
                }
                if (r.PmemTornRecords > 0)
                {
                    debris.Add(DebrisKinds.TornPmemRecords);
                }
                if (unreachable > 0)
                {
                    debris.Add(DebrisKinds.Unreachable);
                }
                return debris;
            }
        }

        public string? ClaimedLoss => device.Recovery.PoisonedBlocks == 0 ? null
            : $"{device.Recovery.PoisonedBlocks} block(s) poisoned ({PoisonedSectors(device.Status().Poisoned)}): {string.Join("; ", device.Recovery.Segments.Select(s => $"segment {s.Id}: {s.Kind}, {s.Detail}"))}";

        /// <summary>The sectors of the poisoned blocks that recovery claims lost, as ranges ("sectors 8-15, 21").</summary>
        private static string PoisonedSectors(IReadOnlyList<PoisonedBlock> poisoned)
        {
            List<long> sectors = [.. poisoned.SelectMany(p => Enumerable.Range(0, Units.SectorsPerBlock).Where(bit => (p.Sectors >> bit & 1) != 0).Select(bit => p.Block * Units.SectorsPerBlock + bit)).Order()];
            List<string> ranges = [];
            for (int i = 0; i < sectors.Count;)
            {
                int j = i;
                while (j + 1 < sectors.Count && sectors[j + 1] == sectors[j] + 1)
                {
                    j++;
                }
                ranges.Add(i == j ? $"{sectors[i]}" : $"{sectors[i]}-{sectors[j]}");
                i = j + 1;
            }
            return ranges.Count == 0 ? "no sector" : $"sector{(sectors.Count == 1 ? "" : "s")} {string.Join(", ", ranges)}";
        }

        public void Read(long offsetBytes, Span<byte> destination) => device.Read(offsetBytes, destination);

        public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None) => device.Write(offsetBytes, source, options);

        public void Flush() => device.Flush();

        public void Crash() => device.Abandon();

        public void Dispose() => device.Dispose();
    }
}

/// <summary>The kinds of debris the writeboost device's recovery leaves (<see cref="ICrashTargetDevice.RecoveryDebris"/>).</summary>
public static class DebrisKinds
{
    public const string Tombstone = "tombstone";
    public const string TwoGapsInARow = "two gaps in a row";
    public const string GapAfterRecord = "a gap right after the superblock record";
    public const string DiscardedTail = "a discarded tail";
    public const string RebuiltFromPmem = "segments rebuilt from pmem";
    public const string TornPmemRecords = "torn pmem records";
    public const string Unreachable = "intact segments beyond the walk";
}
