using System.Diagnostics;
using Writeboost.Cache.Core;
using Writeboost.Cache.Inspect;
using Writeboost.Cache.Table;
using Writeboost.CrashTest.Configs;
using Writeboost.CrashTest.Mutants;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.Schedules;
using Writeboost.CrashTest.States;
using Writeboost.CrashTest.Targets;
using Writeboost.CrashTest.Workloads;
using Writeboost.Devices;
using Writeboost.Pmem;

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
    /// <summary>The NBD server in process, driven by the harness's client with the protocol's whole write vocabulary (WRITE, WRITE_ZEROES, TRIM, each ± FUA, FLUSH, reads), pipelined; the client's requests are the marks.</summary>
    Protocol,
}

/// <summary>One campaign: a workload run in one mode and one device configuration, recorded, then crash states checked.</summary>
/// <param name="MaxStates">The state budget of the whole campaign, spread over its schedules, rounds and their logs.</param>
/// <param name="Shard">With <paramref name="Shards"/>: check only the sampled crash points whose index is this modulo that.</param>
public sealed record CampaignSpec(CacheMode Mode, Workload Workload, int Seed, int Ops, long MaxStates, string Mutant = "none", int Shard = 0, int Shards = 1)
{
    /// <summary>A campaign on a design of one's own: no writeboost mode, configuration or seeded bug to give (they are the writeboost device's).</summary>
    public static CampaignSpec For(ICrashTarget target, Workload workload, int seed, int ops, long maxStates)
    {
        ArgumentNullException.ThrowIfNull(target);
        return new CampaignSpec(CacheMode.Volatile, workload, seed, ops, maxStates) { Target = target };
    }

    public CrashConfig Config { get; init; } = CrashConfig.Default;

    /// <summary>Recorded schedules of the writers and workers: the first unperturbed, the others seeded perturbations (<see cref="PerturbedSchedule"/>).</summary>
    public int Schedules { get; init; } = 3;

    /// <summary>Lives of the device per schedule: each later round recovers a crash state of the one before and goes on writing (multi-crash histories).</summary>
    public int Rounds { get; init; } = 2;

    /// <summary>Of the workload's operations, the share (%) that are reads checked against the oracle while the device runs.</summary>
    public int ReadPercent { get; init; } = 15;

    /// <summary>What survives a power failure of the pmem region's stores: ADR (only written-back, fenced lines) or eADR (every completed store).</summary>
    public PersistenceDomain Persistence { get; init; } = PersistenceDomain.Adr;

    /// <summary>The design under test; null: the writeboost device in <see cref="Mode"/>, <see cref="Config"/>, with <see cref="Mutant"/>.</summary>
    public ICrashTarget? Target { get; init; }

    /// <summary>A scripted workload instead of the generated one: the requests of each round (their count is the rounds).</summary>
    public IReadOnlyList<IReadOnlyList<UserOp>>? Script { get; init; }

    /// <summary>The index of the first schedule: a reproducer replays the failing schedule's perturbation alone.</summary>
    public int FirstSchedule { get; init; }

    /// <summary>
    /// The focus index of <see cref="FirstSchedule"/>'s first recording (later rounds and schedules count on from
    /// it); null: the campaign's own (<see cref="Campaign.FocusIndexOf"/>). A failing history keeps the one it was
    /// recorded with, so a re-recording of its script (the minimiser's) stretches the same windows.
    /// </summary>
    internal int? FocusOfFirstRound { get; init; }

    /// <summary>
    /// Some checked states also have their recovery crashed at its own I/O (on top of the budget). Off only where
    /// a failure of another kind is being reproduced (the minimiser's runs: a drain and reformat per recovery
    /// makes those states the bulk of a run's time, and they cannot show the failure it looks for).
    /// </summary>
    internal bool CrashesRecoveries { get; init; } = true;

    /// <summary>With a <see cref="Script"/> re-running a failing history: the debris each of its rounds' carried states left, wanted again.</summary>
    internal IReadOnlyList<IReadOnlyCollection<string>>? CarriedDebrisOfRounds { get; init; }

    /// <summary>
    /// The first round whose crash states are checked (earlier rounds are recorded and carried only): the minimiser
    /// reproducing a later round's failure spends its runs there.
    /// </summary>
    internal int FirstRoundChecked { get; init; } = 1;

    /// <summary>
    /// The last round's carry candidates are surveyed too, though it carries nothing: a history whose violation
    /// the survey found (<see cref="ViolationSite.Surveyed"/>) replays and shrinks with that state checked again.
    /// </summary>
    internal bool SurveysLastRound { get; init; }

    internal int RoundCount => Script?.Count ?? Rounds;

    internal ICrashTarget ResolvedTarget => Target ?? new WriteboostTarget(Mode, Config, Mutant);

    internal TargetGeometry Geometry => ResolvedTarget.GeometryFor(Workload);
}

/// <summary>How much of the crash-state space a campaign covered.</summary>
public sealed record CampaignCoverage
{
    /// <summary>Crash points in the recorded logs (every event after the first checked one, read marks aside).</summary>
    public long CrashPoints { get; init; }
    public long PointsChecked { get; init; }
    public long Prefix { get; init; }
    public long Subset { get; init; }
    public long Torn { get; init; }
    public long PmemPrefix { get; init; }
    public long DuringRecovery { get; init; }
    /// <summary>States of a later round: the device crashed, recovered, ran on and crashed again (of every kind above).</summary>
    public long SecondCrash { get; init; }
    public long LiveReads { get; init; }
    public int Logs { get; init; }

    public static CampaignCoverage operator +(CampaignCoverage a, CampaignCoverage b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return new CampaignCoverage
        {
            CrashPoints = a.CrashPoints + b.CrashPoints,
            PointsChecked = a.PointsChecked + b.PointsChecked,
            Prefix = a.Prefix + b.Prefix,
            Subset = a.Subset + b.Subset,
            Torn = a.Torn + b.Torn,
            PmemPrefix = a.PmemPrefix + b.PmemPrefix,
            DuringRecovery = a.DuringRecovery + b.DuringRecovery,
            SecondCrash = a.SecondCrash + b.SecondCrash,
            LiveReads = a.LiveReads + b.LiveReads,
            Logs = a.Logs + b.Logs,
        };
    }

    public static CampaignCoverage Add(CampaignCoverage a, CampaignCoverage b) => a + b;

    internal CampaignCoverage With(StateKind kind, bool later) => (kind switch
    {
        StateKind.Prefix => this with { Prefix = Prefix + 1 },
        StateKind.Subset => this with { Subset = Subset + 1 },
        StateKind.Torn => this with { Torn = Torn + 1 },
        StateKind.PmemPrefix => this with { PmemPrefix = PmemPrefix + 1 },
        _ => this with { DuringRecovery = DuringRecovery + 1 },
    }) is var counted && later ? counted with { SecondCrash = counted.SecondCrash + 1 } : counted;
}

/// <summary>Where a campaign's first violation is: which schedule, which round of its history, which crash point and state.</summary>
/// <param name="Variant">The state at the crash point; -1 for a live read (<paramref name="CrashPoint"/> is then the read's completion).</param>
/// <param name="Kind">What kind of state it was (null for a live read).</param>
public sealed record ViolationSite(int Schedule, int Round, int CrashPoint, int Variant, StateKind? Kind = null)
{
    /// <summary>The device could not start the next round from this round's carried state (found after every check of this round).</summary>
    public bool NextRoundFailedToStart { get; init; }

    /// <summary>A state the survey of the round's carry candidates checked (after the round's sampled states).</summary>
    public bool Surveyed { get; init; }

    /// <summary>Where the site is in a campaign's order of checks: by schedule, round, then the live reads, the sampled crash states, the surveyed ones, a failed start of the next round.</summary>
    public (int Schedule, int Round, int Phase, int CrashPoint, int Variant) Order =>
        (Schedule, Round, NextRoundFailedToStart ? 3 : Surveyed ? 2 : Variant < 0 ? 0 : 1, CrashPoint, Variant);
}

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

    /// <summary>Of the states checked, those the choice of each carried state judged beyond the logs' samples (on top of the budget too).</summary>
    public long SurveyedStates { get; init; }

    /// <summary>The crash states of the logs' samples, every shard's (what <see cref="CampaignSpec.MaxStates"/> buys; recovery crashes come on top).</summary>
    public long LogStates { get; init; }

    public CampaignCoverage Coverage { get; init; } = new();

    /// <summary>Of <see cref="Seconds"/>, the time spent recording the workloads (perturbed schedules sleep on purpose).</summary>
    public double RecordSeconds { get; init; }

    public ViolationSite? FirstViolationSite { get; init; }

    /// <summary>The recorded rounds up to the first violation's: saved, they reproduce it anywhere.</summary>
    public CrashHistory? FailingHistory { get; init; }

    /// <summary>States checked per second of checking (recording aside).</summary>
    public double StatesPerSecond => StatesChecked / Math.Max(Seconds - RecordSeconds, 1e-9);
}

/// <summary>
/// Runs a workload against a writeboost device whose backing, cache and pmem devices are recorded, then
/// generates the crash states real hardware allows across the whole log, recovers each one and checks the oracle.
/// A campaign records several schedules (the first unperturbed, the others with the workers' windows stretched),
/// and for each a history of rounds: a crash state of one round is recovered by a live device that goes on with
/// more of the workload, recorded, and crashed again — so what recovery leaves behind is judged by the next
/// recovery, with the oracle over the whole history. Live reads in the workload are checked as they happen.
/// </summary>
public static partial class Campaign
{
    /// <summary>One state in this many is also crashed during its own recovery (each such check costs a whole recovery log of states).</summary>
    private const int RecoveryCrashEvery = 100;

    /// <summary>Whether a state whose recovery passes also gets its recovery crashed (one in <see cref="RecoveryCrashEvery"/>, seeded).</summary>
    private static bool CrashesItsRecovery(CampaignSpec spec, int round, int point, int variant) =>
        StateSeed.Of(spec.Seed ^ round, point, variant) % RecoveryCrashEvery == 0;
    /// <summary>Candidate crash points tried for the next round's start, and states tried at each: the one whose recovery did the most (discarded, rebuilt) is carried on.</summary>
    private const int CarryCandidates = 16;
    private const int CarryVariants = 12;
    /// <summary>More seeded points a generated round's carried state may come from, surveyed only where a gap can arise (<see cref="ChooseCarriedState"/>).</summary>
    private const int GapCandidates = 32;
    /// <summary>A scripted round up to this many events after its first request has every point a carry candidate.</summary>
    private const int ScriptedEveryPointEvents = 120;
    /// <summary>How long a scripted round's log must stay still after its last request before the crash, and the most it waits (<see cref="LetTheWorkersCatchUp"/>).</summary>
    private static readonly TimeSpan ScriptSettleQuiet = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan ScriptSettleLimit = TimeSpan.FromMilliseconds(200);
    /// <summary>The modulator's "second" in the harness: periodic work runs within a workload of milliseconds.</summary>
    private static readonly TimeSpan HarnessSecond = TimeSpan.FromMilliseconds(5);

    internal static int PoolSize => CrashConfig.Default.PoolSize;

    /// <summary>The in-memory devices' sizes and the table keys (the fault and corruption sweeps use the default configuration's).</summary>
    internal sealed record Geometry(long BackingBytes, long CacheBytes, long PmemBytes, Dictionary<string, long> Keys);

    internal static Geometry GeometryFor(Workload workload) => GeometryFor(CrashConfig.Default, workload);

    internal static Geometry GeometryFor(CrashConfig config, Workload workload) =>
        new(CrashConfig.BackingBytesFor(workload), config.CacheBytesFor(workload), config.PmemBytes, new Dictionary<string, long>(config.Keys));

    private static PmemBackend? PmemBackendOf(CampaignSpec spec) => spec.Geometry.Pmem;

    /// <summary>How the crash states model the spec's pmem region (null: it has none).</summary>
    internal static PmemModel? PmemModelOf(CampaignSpec spec) => spec.Geometry.Pmem is { } backend ? new PmemModel(backend, spec.Persistence) : null;

    private static Media BlankMedia(CampaignSpec spec)
    {
        TargetGeometry geometry = spec.Geometry;
        return Media.Blank(geometry.BackingBytes, geometry.CacheBytes, geometry.PmemBytes);
    }

    /// <summary>Devices over <paramref name="media"/> (never changed: copy-on-write) whose every write, flush, store, write-back and fence goes into <paramref name="log"/>.</summary>
    private static TargetDevices RecordedDevices(CampaignSpec spec, Media media, CrashLog log) =>
        RecordedDevices(spec, new PagedImage(media.Backing), new PagedImage(media.Cache), new PagedImage(media.Pmem), log);

    /// <summary>Devices layered over <paramref name="frozen"/>'s (which nothing writes to meanwhile), recorded into <paramref name="log"/>.</summary>
    private static TargetDevices RecordedDevices(CampaignSpec spec, CrashState frozen, CrashLog log) =>
        RecordedDevices(spec, new PagedImage(frozen.Backing.Image), new PagedImage(frozen.Cache.Image),
            frozen.PmemImage is { } pmem ? new PagedImage(pmem) : null, log);

    /// <param name="backing">The image the backing device writes to (its own), and so on; <paramref name="pmem"/> is ignored when the spec has no pmem region.</param>
    private static TargetDevices RecordedDevices(CampaignSpec spec, PagedImage backing, PagedImage cache, PagedImage? pmem, CrashLog log)
    {
        RecordingBlockDevice backingDevice = new(new PagedBlockDevice(backing, "backing"), log, DeviceId.Backing);
        RecordingBlockDevice cacheDevice = new(new PagedBlockDevice(cache, "cache"), log, DeviceId.Cache);
        PmemRegion? region = PmemBackendOf(spec) switch
        {
            null => null,
            PmemBackend.Block => Writeboost.Pmem.Pmem.Alloc(new RecordingBlockDevice(new PagedBlockDevice(pmem!, "pmem"), log, DeviceId.Pmem), 0, pmem!.LengthBytes),
            _ => new RecordingPmemRegion(new MemoryPmemRegion(pmem!), log),
        };
        return new TargetDevices(backingDevice, cacheDevice, region);
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
        spec = spec with { Workload = Workload.Nbd };
        CrashLog log = new();
        ICrashTargetDevice device = spec.ResolvedTarget.Open(RecordedDevices(spec, BlankMedia(spec), log), new TargetOpen(Live: true, 0, spec.Seed));
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
            device.Crash();
            File.Delete(socket);
        }
        return log;
    }

    /// <summary>Runs the workload (schedule 0, the first round) with every device recorded; returns the log.</summary>
    public static CrashLog Record(CampaignSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return RecordRound(spec, BlankMedia(spec), 0, 1, spec.Seed, out _);
    }

    /// <summary>
    /// One life of the device: opens it on <paramref name="media"/> (formatting blank media, recovering a crash
    /// state), with every device recorded from the first I/O of recovery on; reads what recovery gave back (the
    /// oracle's initial content for this round); runs the workload; and crashes (nothing more is written).
    /// </summary>
    private static CrashLog RecordRound(CampaignSpec spec, Media media, int schedule, int round, int workloadSeed, out byte[] recovered)
    {
        CrashLog log = new();
        int focusIndex = FocusIndexOf(spec, schedule, round);
        PerturbedSchedule? perturbed = schedule == 0 ? null : new PerturbedSchedule(StateSeed.Of(spec.Seed, schedule, 0x5C4E), focus: PerturbedSchedule.FocusFor(focusIndex));
        ScheduleHooks hooks = perturbed ?? ScheduleHooks.None;
        ScheduleWindows windows = perturbed is null ? ScheduleWindows.None : new PerturbedWindows(perturbed, focusIndex);
        // With read caching, reads race the writes; in a perturbed recording, by construction (RacingReads).
        using RacingReads? racing = spec.Config.Keys.GetValueOrDefault(Cache.Table.TunableSpecs.ReadCacheThreshold) > 0 && spec.ReadPercent > 0 && spec.Script is null ? new() : null;
        if (racing is not null && schedule != 0)
        {
            hooks = new RacingReads.Hooks(hooks, racing);
        }
        ICrashTargetDevice device = spec.ResolvedTarget.Open(RecordedDevices(spec, media, log), new TargetOpen(Live: true, schedule, spec.Seed) { Hooks = hooks, Windows = windows, Life = round });
        try
        {
            recovered = new byte[device.SizeBytes];
            device.Read(0, recovered);
            Nbd.NbdServerFaults serverFaults = MutantCatalogue.Find(spec.Mutant)?.ServerHooks ?? Nbd.NbdServerFaults.None;
            if (spec.Script is { } script)
            {
                if (spec.Workload == Workload.Protocol)
                {
                    NbdProtocolRunner.RunScript(device, log, script[round - 1], serverFaults);
                }
                else
                {
                    WorkloadRunner.RunScript(device, log, script[round - 1]);
                }
                if (round < script.Count)
                {
                    LetTheWorkersCatchUp(log);
                }
            }
            else if (spec.Workload == Workload.Protocol)
            {
                NbdProtocolRunner.Run(device, log, workloadSeed, spec.Ops, spec.ReadPercent, serverFaults);
            }
            else
            {
                WorkloadRunner.Run(device, log, spec.Workload, workloadSeed, spec.Ops, spec.Config.Writers, spec.ReadPercent, racing);
            }
        }
        finally
        {
            device.Crash(); // nothing more is written
        }
        return log;
    }

    /// <summary>
    /// A scripted round another one goes on from is cut where the failing history's next life started, and there
    /// the device's own threads had often written more (a sealed segment) than a script, crashed as its last
    /// request returns, gives them time for: they get until the log has been quiet for a moment, so the state the
    /// history carried is among this log's last points (all of them carry candidates).
    /// </summary>
    private static void LetTheWorkersCatchUp(CrashLog log)
    {
        long start = Stopwatch.GetTimestamp();
        for (int before = -1, now = log.Count; now != before && Stopwatch.GetElapsedTime(start) < ScriptSettleLimit; now = log.Count)
        {
            before = now;
            Thread.Sleep(ScriptSettleQuiet);
        }
    }

    /// <summary>
    /// Which focus (<see cref="PerturbedSchedule.FocusFor"/>) a recording of <paramref name="schedule"/>, round
    /// <paramref name="round"/> holds open: the perturbed recordings of a campaign take consecutive points, and the
    /// campaigns of one configuration (its workloads) continue where the one before stopped, so every point of the
    /// device is held open in some recording of every configuration; the start is the seed's. A failing history
    /// keeps its first round's (<see cref="CampaignSpec.FocusOfFirstRound"/>), so the minimiser's re-recordings of
    /// its script are perturbed as it was, whatever the campaign's shape around it.
    /// </summary>
    internal static int FocusIndexOf(CampaignSpec spec, int schedule, int round)
    {
        if (spec.FocusOfFirstRound is { } first)
        {
            return first + (schedule - spec.FirstSchedule) * spec.RoundCount + (round - 1);
        }
        int recordings = Math.Max(1, spec.Schedules - 1) * spec.RoundCount;
        int campaignOffset = (int)spec.Workload * recordings
            + StateSeed.Of(spec.Seed, (int)spec.Mode, (int)Cache.Format.Crc32C.Compute(System.Text.Encoding.UTF8.GetBytes(spec.Config.ToTable(spec.Mode))));
        return (schedule - 1) * spec.RoundCount + (round - 1) + campaignOffset;
    }

    internal static (long Offset, int Length) RandomRange(Random random, int sectors, int maxSectors)
    {
        int length = random.Next(1, Math.Min(maxSectors, sectors) + 1);
        return (random.Next(0, sectors - length + 1) * 512L, length * 512);
    }

    /// <summary>
    /// Records the campaign's schedules and rounds and checks crash states across each log, until the budget
    /// (<see cref="CampaignSpec.MaxStates"/>, shared evenly by every log) or, with <paramref name="stopAtFirst"/>,
    /// the first violation.
    /// </summary>
    /// <param name="cancel">Stops the campaign early (an interrupted run): the result counts what was checked until then.</param>
    public static CampaignResult Run(CampaignSpec spec, bool stopAtFirst = false, Action<long, long>? progress = null, CancellationToken cancel = default) => Run(spec, stopAtFirst, progress, null, cancel);

    /// <param name="counts">Only violations this accepts are counted (and stop the run); null: every one.</param>
    internal static CampaignResult Run(CampaignSpec spec, bool stopAtFirst, Action<long, long>? progress, Func<string, bool>? counts, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Schedules < 1 || spec.RoundCount < 1)
        {
            throw new ArgumentException($"a campaign needs at least one schedule and one round (got {spec.Schedules} and {spec.RoundCount})");
        }
        Tally tally = new(spec, stopAtFirst, progress) { Counts = counts, Cancel = cancel };
        int logs = spec.Schedules * spec.RoundCount;
        int logIndex = 0;
        Dictionary<string, int> carriedDebris = [];
        Dictionary<int, Task<FirstRound>> firstRounds = [];
        try
        {
            for (int schedule = spec.FirstSchedule; schedule < spec.FirstSchedule + spec.Schedules && !tally.Stopped; schedule++)
            {
                long waitStart = Stopwatch.GetTimestamp();
                FirstRound? ahead = firstRounds.Remove(schedule, out Task<FirstRound>? started) ? started.GetAwaiter().GetResult() : null;
                tally.RecordSeconds += Stopwatch.GetElapsedTime(waitStart).TotalSeconds; // what is left of it, recorded ahead
                Media media = ahead?.Media ?? BlankMedia(spec);
                Judge? previous = null;
                List<HistoryRound> rounds = [];
                for (int round = 1; round <= spec.RoundCount && !tally.Stopped; round++)
                {
                    int workloadSeed = WorkloadSeedOf(spec, schedule, round);
                    CrashLog log;
                    byte[] recovered;
                    long recordStart = Stopwatch.GetTimestamp();
                    try
                    {
                        if (round == 1 && ahead is not null)
                        {
                            (log, recovered) = (ahead.Log, ahead.Recovered);
                        }
                        else
                        {
                            log = RecordRound(spec, media, schedule, round, workloadSeed, out recovered);
                        }
                    }
                    catch (Exception error) when (round > 1 && error is IOException or InvalidDataException or ArgumentException or InvalidOperationException)
                    {
                        // The live device could not recover (or run on) a crash state the hardware allows.
                        tally.Violation($"the device recovering round {round - 1}'s crash state failed: {error.Message}", new ViolationSite(schedule, round - 1, rounds[^1].CarriedPoint, rounds[^1].CarriedVariant) { NextRoundFailedToStart = true }, rounds);
                        break;
                    }
                    tally.RecordSeconds += Stopwatch.GetElapsedTime(recordStart).TotalSeconds;
                    if (schedule == spec.FirstSchedule && round == spec.RoundCount)
                    {
                        StartFirstRounds(spec, firstRounds);
                    }
                    rounds.Add(new HistoryRound(log));
                    Oracle oracle = new(log.Events, recovered);
                    // What earlier logs did not spend (a short log has fewer states than its share) goes to the later ones.
                    long budget = Math.Max(1, (spec.MaxStates - tally.LogStates) / Math.Max(1, logs - logIndex++));
                    LogCheck check = new(spec, log, media, oracle, previous, schedule, round, budget);
                    bool checks = round >= spec.FirstRoundChecked;
                    IReadOnlyDictionary<int, int> sampled = checks ? CheckLog(check, tally, rounds) : new Dictionary<int, int>();
                    if (round < spec.RoundCount && !tally.Stopped)
                    {
                        (int point, int variant, Media carried, IReadOnlyCollection<string> debris, List<CandidateState> surveyed) = ChooseCarriedState(check, carriedDebris);
                        if (checks)
                        {
                            CountSurveyed(check, tally, rounds, surveyed, sampled);
                        }
                        rounds[^1] = rounds[^1] with { CarriedPoint = point, CarriedVariant = variant, CarriedDebris = debris };
                        previous = new Judge(oracle, point);
                        media = carried;
                    }
                    else if (checks && spec.SurveysLastRound && !tally.Stopped)
                    {
                        CountSurveyed(check, tally, rounds, SurveyCarryCandidates(check).Surveyed, sampled);
                    }
                }
            }
        }
        finally
        {
            // A campaign that stops early still waits for what it started: no recording outlives its campaign
            // (its outcome does not matter any more; the wait handle does not rethrow).
            foreach (Task<FirstRound> started in firstRounds.Values)
            {
                ((IAsyncResult)started).AsyncWaitHandle.WaitOne();
            }
        }
        return tally.Result();
    }

    /// <summary>The seed of the workload of <paramref name="round"/> of <paramref name="schedule"/>: the campaign's own for the first one.</summary>
    internal static int WorkloadSeedOf(CampaignSpec spec, int schedule, int round) =>
        schedule == 0 && round == 1 ? spec.Seed : StateSeed.Of(spec.Seed, schedule, round);

    /// <summary>A schedule's first round, recorded ahead: its blank media, its log, and what the device read back at its start.</summary>
    private sealed record FirstRound(Media Media, CrashLog Log, byte[] Recovered);

    /// <summary>
    /// Records the first round of every later schedule in the background, once the first schedule is recorded. A
    /// first round starts from blank media, so it needs nothing the checking decides, and a recording mostly waits
    /// (flushes, a perturbed schedule's sleeps): recorded while the first schedule's logs are checked, it is ready
    /// when its turn comes instead of holding the checkers idle. Only for a target whose opens may run at once (a
    /// recording is an open, as a checked state's recovery is).
    /// </summary>
    private static void StartFirstRounds(CampaignSpec spec, Dictionary<int, Task<FirstRound>> firstRounds)
    {
        if (!spec.ResolvedTarget.OpensConcurrently)
        {
            return;
        }
        for (int schedule = spec.FirstSchedule + 1; schedule < spec.FirstSchedule + spec.Schedules; schedule++)
        {
            int at = schedule;
            firstRounds[at] = Task.Factory.StartNew(() =>
            {
                Media media = BlankMedia(spec);
                CrashLog log = RecordRound(spec, media, at, 1, WorkloadSeedOf(spec, at, 1), out byte[] recovered);
                return new FirstRound(media, log, recovered);
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
    }

    /// <summary>Checks crash states of one recorded log as the first round of schedule 0 (also: replays a saved log).</summary>
    public static CampaignResult Check(CampaignSpec spec, CrashLog log, bool stopAtFirst, Action<long, long>? progress = null, int? onlyCrashPoint = null, int? onlyVariant = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(log);
        return Replay(new CrashHistory(spec, [new HistoryRound(log)]), stopAtFirst, progress, onlyCrashPoint, onlyVariant, cancel);
    }

    /// <summary>
    /// Checks the last round of a saved history: the rounds before it rebuild its starting media (each carried
    /// crash state recovered by the next round's recorded device), then its crash states are checked — all of them
    /// within the budget, or one.
    /// </summary>
    public static CampaignResult Replay(CrashHistory history, bool stopAtFirst, Action<long, long>? progress = null, int? onlyCrashPoint = null, int? onlyVariant = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(history);
        history.RecordedOn.RequireSameDesign(TargetIdentity.Of(history.Spec.ResolvedTarget), "this history");
        Tally tally = new(history.Spec, stopAtFirst, progress) { Cancel = cancel };
        LogCheck check = LastRound(history) with { OnlyPoint = onlyCrashPoint, OnlyVariant = onlyVariant };
        IReadOnlyDictionary<int, int> sampled = CheckLog(check, tally, [.. history.Rounds]);
        if (history.Spec.SurveysLastRound && onlyCrashPoint is null && !tally.Stopped)
        {
            CountSurveyed(check, tally, [.. history.Rounds], SurveyCarryCandidates(check).Surveyed, sampled);
        }
        return tally.Result();
    }

    /// <summary>
    /// The last round of a saved history, ready to check: the rounds before it rebuild its starting media (each
    /// carried crash state, as the next round's device recovered it), its oracle starts from what that recovery
    /// gave back, and the one before judges its crashes during recovery.
    /// </summary>
    private static LogCheck LastRound(CrashHistory history)
    {
        CampaignSpec spec = history.Spec;
        Media media = BlankMedia(spec);
        Judge? previous = null;
        for (int r = 0; ; r++)
        {
            HistoryRound round = history.Rounds[r];
            byte[] recovered = InitialContent(spec, media, previous, life: r + 1);
            Oracle oracle = new(round.Log.Events, recovered);
            if (r == history.Rounds.Count - 1)
            {
                return new LogCheck(spec, round.Log, media, oracle, previous, spec.FirstSchedule, r + 1, spec.MaxStates);
            }
            Timelines timelines = new(media, PmemModelOf(spec));
            timelines.AdvanceTo(round.Log.Events, round.CarriedPoint);
            CrashState state = CrashStates.Build(timelines, CrashStates.ExtraKinds(timelines), spec.Geometry.PmemBytes, spec.Seed, round.CarriedPoint, round.CarriedVariant);
            previous = new Judge(oracle, round.CarriedPoint);
            media = state.Freeze();
        }
    }

    /// <summary>One state of a history's last round, judged, with what a story needs.</summary>
    /// <param name="JudgedRound">The round whose oracle judged the state, and whose events <see cref="Verdict"/> names: the one before for a crash during this round's recovery.</param>
    internal sealed record SurveyedState(int Point, int Variant, StateKind Kind, string Problem, int Complexity, WriteFate[] Fates, LineFates Lines, string? RecoveryStory, long Sector, Oracle.SectorVerdict? Verdict, byte[]? SectorContent, int JudgedRound)
    {
        /// <summary>Each pmem line that lost a store in this state, told in a line (for the story).</summary>
        public IReadOnlyList<string> LostPmem { get; init; } = [];
    }

    /// <summary>The pmem lines <paramref name="state"/> lost stores of: where, what was stored, and whether it had been written back.</summary>
    private static List<string> LostPmemLines(Timelines timelines, CrashState state)
    {
        List<string> lost = [];
        if (timelines.PmemLines is not { } pmem)
        {
            return lost;
        }
        int at = 0;
        foreach ((long line, List<(int OffsetInLine, byte[] Bytes)> stores) in pmem.PendingLines.OrderBy(l => l.Key))
        {
            int kept = state.KeptOfPendingLines?[at] ?? 0;
            at++;
            if (kept == stores.Count)
            {
                continue;
            }
            (int offsetInLine, byte[] bytes) = stores[kept];
            string value = Convert.ToHexString(bytes.AsSpan(0, Math.Min(8, bytes.Length))).ToLowerInvariant() + (bytes.Length > 8 ? "…" : "");
            lost.Add($"the line at byte {line * PmemTimeline.LineBytes} kept {kept} of its {stores.Count} store(s) not yet durable; the first lost: {bytes.Length} byte(s) at byte {line * PmemTimeline.LineBytes + offsetInLine} (0x{value}), "
                + (pmem.IsWrittenBack(line) ? "written back but not fenced" : "not written back"));
        }
        return lost;
    }

    /// <summary>
    /// Every state of a history's last round (up to <paramref name="perPoint"/> at each point) that violates the
    /// oracle, judged as a campaign judges it — for the minimiser, which keeps the simplest.
    /// </summary>
    internal static List<SurveyedState> SurveyLastRound(CrashHistory history, int perPoint, Func<string, bool> sameViolation)
    {
        LogCheck check = LastRound(history);
        CampaignSpec spec = history.Spec;
        IReadOnlyList<CrashEvent> events = check.Log.Events;
        bool later = check.Previous is not null;
        List<SurveyedState> failing = [];
        Timelines timelines = new(check.Start, PmemModelOf(spec));
        for (int point = later ? 0 : Math.Min(check.FirstUserEvent, events.Count); point <= events.Count; point++)
        {
            timelines.AdvanceTo(events, point);
            bool duringRecovery = later && point <= check.FirstUserEvent;
            Judge judge = duringRecovery ? check.Previous! : new Judge(check.Oracle, point);
            List<StateKind> kinds = CrashStates.ExtraKinds(timelines);
            int variants = CrashStates.VariantCount(timelines, kinds, perPoint);
            for (int variant = 0; variant < variants; variant++)
            {
                CrashState state = CrashStates.Build(timelines, kinds, spec.Geometry.PmemBytes, spec.Seed, point, variant);
                CrashState? beforeRecovery = spec.CrashesRecoveries && CrashesItsRecovery(spec, check.Round, point, variant) ? state.Snapshot() : null;
                Recovered outcome = Recover(spec, state, life: check.Round + 1);
                long sector = -1;
                string? problem = outcome.Problem ?? judge.Oracle.Check(judge.Point, outcome.Content, out sector);
                bool crashedItsRecovery = false;
                if (problem is null && beforeRecovery is not null)
                {
                    // As CheckLog does: a state it checks with its recovery crashed fails the same way here.
                    problem = CrashDuringRecovery(spec, beforeRecovery, judge, StateSeed.Of(spec.Seed, point, variant), check.Round + 1).Problem;
                    crashedItsRecovery = problem is not null;
                }
                problem = problem is null || !later ? problem : $"round {check.Round}, {problem}"; // as CheckLog words it
                if (problem is null || !sameViolation(problem))
                {
                    continue;
                }
                Oracle.SectorVerdict? verdict = sector >= 0 && outcome.Content is { } content
                    ? judge.Oracle.Explain(judge.Point, sector, content.AsSpan((int)(sector * 512), 512))
                    : null;
                failing.Add(new SurveyedState(point, variant, duringRecovery || crashedItsRecovery ? StateKind.DuringRecovery : CrashStates.KindOf(kinds, variant), problem,
                    state.Complexity, state.Fates, state.Lines, outcome.Story, sector, verdict,
                    sector >= 0 ? outcome.Content?.AsSpan((int)(sector * 512), 512).ToArray() : null, duringRecovery ? check.Round - 1 : check.Round)
                { LostPmem = LostPmemLines(timelines, state) });
            }
        }
        return failing;
    }

    /// <summary>
    /// What a round's device read right after it opened: zeros for blank media; else what recovery gives back
    /// of <paramref name="media"/> (recovery is deterministic, so the recorded run read the same).
    /// </summary>
    /// <param name="life">The round whose device read it (its table recovered the media).</param>
    private static byte[] InitialContent(CampaignSpec spec, Media media, Judge? previous, int life)
    {
        CrashState state = StateOf(spec, media);
        Recovered outcome = Recover(spec, state, life: life);
        if (previous is null)
        {
            return new byte[outcome.SizeBytes];
        }
        return outcome.Content ?? throw new InvalidDataException($"the saved history's carried state does not recover: {outcome.Problem}");
    }

    private static CrashState StateOf(CampaignSpec spec, Media media)
    {
        Timelines timelines = new(media, PmemModelOf(spec));
        return new CrashState(timelines, spec.Geometry.PmemBytes);
    }

    /// <summary>What the oracle demands of a recovered state: <see cref="Oracle.Check(int, ReadOnlySpan{byte})"/> for a crash at <see cref="Point"/>.</summary>
    private sealed record Judge(Oracle Oracle, int Point)
    {
        public string? Check(ReadOnlySpan<byte> content) => Oracle.Check(Point, content);
    }

    /// <summary>One log to check: its round of the history, its starting media, its oracle and budget.</summary>
    private sealed record LogCheck(CampaignSpec Spec, CrashLog Log, Media Start, Oracle Oracle, Judge? Previous, int Schedule, int Round, long Budget)
    {
        public int? OnlyPoint { get; init; }
        public int? OnlyVariant { get; init; }
        /// <summary>The first user event: before it, the log is the device's open (a format, or a recovery).</summary>
        public int FirstUserEvent { get; } = Log.Events.Select((e, i) => (e, i)).FirstOrDefault(x => x.e.Device == DeviceId.User, (default, Log.Events.Count)).i;
    }

    /// <summary>Counts what the logs of a campaign found, and knows when to stop.</summary>
    private sealed class Tally(CampaignSpec spec, bool stopAtFirst, Action<long, long>? progress)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        public long Generated;
        public long Checked;
        public long Violations;
        public long RecoveryCrashStates;
        public long SurveyedStates;
        /// <summary>The states the logs' samples hold (recovery crashes aside), all shards' together: what the budget pays for.</summary>
        public long LogStates;
        public double RecordSeconds;
        public int Events;
        public CampaignCoverage Coverage = new();
        public string? FirstViolation;
        public ViolationSite? FirstSite;
        public CrashHistory? FailingHistory;
        public bool Stopped => (stopAtFirst && Violations > 0) || Cancel.IsCancellationRequested;

        /// <summary>The run stops at its first (counted) violation.</summary>
        public bool StopsAtFirst => stopAtFirst;

        /// <summary>An interrupted run stops at the next state; what it checked until then is its result.</summary>
        public CancellationToken Cancel { get; init; }

        /// <summary>Only violations this accepts count (the minimiser looks for one kind); null: all.</summary>
        public Func<string, bool>? Counts { get; init; }

        public void Violation(string problem, ViolationSite site, List<HistoryRound> rounds)
        {
            if (Counts is { } counts && !counts(problem))
            {
                return;
            }
            Violations++;
            if (FirstViolation is null)
            {
                FirstViolation = problem;
                FirstSite = site;
                FailingHistory = new CrashHistory(spec with { Rounds = rounds.Count, Schedules = 1, FirstSchedule = site.Schedule, Script = null, FocusOfFirstRound = FocusIndexOf(spec, site.Schedule, 1), SurveysLastRound = site.Surveyed }, [.. rounds]);
            }
        }

        public void Progress() => progress?.Invoke(Checked, spec.MaxStates);

        public CampaignResult Result() => new(spec, Events, Generated, Checked, Violations, _clock.Elapsed.TotalSeconds, FirstViolation, FirstSite?.CrashPoint, FirstSite?.Variant)
        {
            RecoveryCrashStates = RecoveryCrashStates,
            SurveyedStates = SurveyedStates,
            LogStates = LogStates,
            RecordSeconds = RecordSeconds,
            Coverage = Coverage,
            FirstViolationSite = FirstSite,
            FailingHistory = FailingHistory,
        };
    }

    /// <summary>
    /// Checks one log: its live reads, then the sampled crash points, each with its share of every kind of state.
    /// In a later round the points before its first user event are crashes during the live device's recovery of
    /// the previous round's state, judged by the previous round's oracle at its crash point; the points after,
    /// by this round's oracle, whose initial content is what that recovery gave back.
    /// </summary>
    /// <returns>How many states each sampled point has (every shard's; the points a stop left unchecked are missing).</returns>
    private static Dictionary<int, int> CheckLog(LogCheck check, Tally tally, List<HistoryRound> rounds)
    {
        CampaignSpec spec = check.Spec;
        IReadOnlyList<CrashEvent> events = check.Log.Events;
        tally.Events += events.Count;
        int liveReads = CheckLiveReads(check, tally, rounds);

        bool later = check.Previous is not null;
        int first = later ? 0 : Math.Min(check.FirstUserEvent, events.Count);
        Timelines survey = new(check.Start, PmemModelOf(spec));
        int StatesAt(int point)
        {
            survey.AdvanceTo(events, point);
            return CrashStates.VariantCount(survey, CrashStates.ExtraKinds(survey), CrashPointSampler.MinStatesPerPoint);
        }
        CrashPointSample sample = CrashPointSampler.Choose(events, first, check.Budget, StateSeed.Of(spec.Seed, check.Schedule, check.Round), frontLoaded: later, StatesAt);
        if (check.OnlyPoint is { } only)
        {
            // One state, or one point, replayed: checked whether or not the sample has it (the carry candidates' survey
            // checks points outside it), with every state up to the one asked for.
            sample = new CrashPointSample([only], Math.Max(sample.StatesPerPoint, (check.OnlyVariant ?? 0) + 1), sample.Candidates);
        }
        tally.Coverage += new CampaignCoverage { CrashPoints = sample.Candidates, LiveReads = liveReads, Logs = 1 };
        Dictionary<int, int> sampled = [];
        // The points are checked by several threads (PointWorkers) and counted here in the log's order: the tally, the
        // first violation and where a stopping run stops are what one thread checking them in turn gives.
        int threads = check.OnlyPoint is null && check.OnlyVariant is null ? PointWorkers.ThreadsFor(spec.ResolvedTarget.OpensConcurrently, sample.Points.Count) : 1;
        if (tally.Stopped)
        {
            return sampled; // a live read already stopped the run: no point is checked
        }
        PointWorkers.Run(check.Start, PmemModelOf(spec), sample.Points.Count, threads,
            (timelines, index) => CheckPoint(check, timelines, sample, index, tally.StopsAtFirst ? problem => tally.Counts?.Invoke(problem) ?? true : null),
            (index, outcome) =>
            {
                if (tally.Stopped)
                {
                    return false; // cancelled meanwhile: this point is not counted, as one thread would not have reached it
                }
                ApplyOutcome(check, tally, rounds, outcome);
                sampled[outcome.Point] = outcome.Variants;
                if (index % 16 == 0)
                {
                    tally.Progress();
                }
                return !tally.Stopped;
            },
            tally.Cancel);
        return sampled;
    }

    /// <summary>What checking the states of one sampled point found (nothing counted yet).</summary>
    private sealed record PointOutcome(int Point, int Variants, bool Mine, bool DuringRecovery, List<StateKind> Kinds, List<VariantOutcome> Checked);

    /// <summary>One state of a point: its variant, the states of its recovery's own crashes, and the problem found (null: none).</summary>
    private readonly record struct VariantOutcome(int Variant, int RecoveryCrashStates, string? Problem);

    /// <summary>Advances <paramref name="timelines"/> to the <paramref name="index"/>-th sampled point and checks its states (those of this shard).</summary>
    /// <param name="stopsRun">Whether a problem (as reported) stops the run; null: the run checks on.</param>
    private static PointOutcome CheckPoint(LogCheck check, Timelines timelines, CrashPointSample sample, int index, Func<string, bool>? stopsRun)
    {
        CampaignSpec spec = check.Spec;
        int point = sample.Points[index];
        timelines.AdvanceTo(check.Log.Events, point);
        List<StateKind> kinds = CrashStates.ExtraKinds(timelines);
        int variants = sample.StatesAt(point, CrashStates.VariantCount(timelines, kinds, sample.StatesPerPoint)); // the budget, exactly
        bool later = check.Previous is not null;
        bool duringRecovery = later && point <= check.FirstUserEvent;
        bool mine = index % spec.Shards == spec.Shard && (check.OnlyPoint is not { } only || only == point);
        List<VariantOutcome> checkedStates = [];
        bool stops = false;
        if (!mine)
        {
            return new PointOutcome(point, variants, mine, duringRecovery, kinds, checkedStates);
        }
        Judge judge = duringRecovery ? check.Previous! : new Judge(check.Oracle, point);
        for (int variant = 0; variant < variants && !stops; variant++)
        {
            if (check.OnlyVariant is { } v && v != variant)
            {
                continue;
            }
            CrashState state = CrashStates.Build(timelines, kinds, spec.Geometry.PmemBytes, spec.Seed, point, variant);
            // Taken before recovery writes to the state's devices: the crashes during recovery are of this state's recovery.
            CrashState? beforeRecovery = spec.CrashesRecoveries && CrashesItsRecovery(spec, check.Round, point, variant) ? state.Snapshot() : null;
            string? problem = RecoverAndCheck(spec, state, judge, check.Round + 1);
            int nestedStates = 0;
            if (problem is null && beforeRecovery is not null)
            {
                (nestedStates, problem) = CrashDuringRecovery(spec, beforeRecovery, judge, StateSeed.Of(spec.Seed, point, variant), check.Round + 1);
            }
            state.Recycle();
            beforeRecovery?.Recycle();
            checkedStates.Add(new VariantOutcome(variant, nestedStates, problem));
            // A counted violation ends what a stopping run needs of this point (the tally stops there too).
            stops = problem is not null && stopsRun is not null && stopsRun(Where(check) + problem);
        }
        return new PointOutcome(point, variants, mine, duringRecovery, kinds, checkedStates);
    }

    /// <summary>A problem's place in a later round's report.</summary>
    private static string Where(LogCheck check) => check.Previous is not null ? $"round {check.Round}, " : "";

    /// <summary>Counts one point's outcome, as the sequential check did state by state (stops where the tally does).</summary>
    private static void ApplyOutcome(LogCheck check, Tally tally, List<HistoryRound> rounds, PointOutcome outcome)
    {
        bool later = check.Previous is not null;
        if (check.OnlyPoint is null)
        {
            tally.LogStates += outcome.Variants; // every shard counts every point: the same figure everywhere, the campaign's
        }
        if (!outcome.Mine)
        {
            return;
        }
        tally.Coverage += new CampaignCoverage { PointsChecked = 1 };
        foreach (VariantOutcome state in outcome.Checked)
        {
            if (tally.Stopped)
            {
                return;
            }
            tally.Generated++;
            tally.Checked++;
            tally.Coverage = tally.Coverage.With(outcome.DuringRecovery ? StateKind.DuringRecovery : CrashStates.KindOf(outcome.Kinds, state.Variant), later && !outcome.DuringRecovery);
            if (state.RecoveryCrashStates > 0)
            {
                tally.Generated += state.RecoveryCrashStates;
                tally.Checked += state.RecoveryCrashStates;
                tally.RecoveryCrashStates += state.RecoveryCrashStates;
                tally.Coverage += new CampaignCoverage { DuringRecovery = state.RecoveryCrashStates };
            }
            if (state.Problem is { } problem)
            {
                StateKind kind = outcome.DuringRecovery || problem.StartsWith("after a crash at event", StringComparison.Ordinal) ? StateKind.DuringRecovery : CrashStates.KindOf(outcome.Kinds, state.Variant);
                tally.Violation(Where(check) + problem, new ViolationSite(check.Schedule, check.Round, outcome.Point, state.Variant, kind), rounds);
            }
        }
    }

    /// <summary>Checks every live read of the log (those of this shard) against the oracle; returns how many it checked.</summary>
    private static int CheckLiveReads(LogCheck check, Tally tally, List<HistoryRound> rounds)
    {
        if (check.OnlyPoint is not null)
        {
            return 0;
        }
        IReadOnlyList<CrashEvent> events = check.Log.Events;
        int reads = 0;
        int mine = 0;
        for (int i = 0; i < events.Count && !tally.Stopped; i++)
        {
            CrashEvent e = events[i];
            if (e.Kind != EventKind.UserReadDone || reads++ % check.Spec.Shards != check.Spec.Shard)
            {
                continue;
            }
            mine++;
            if (check.Oracle.CheckRead(e.Ref, i, e.OffsetBytes, e.Data) is { } problem)
            {
                string where = check.Previous is null ? "" : $"round {check.Round}, ";
                tally.Violation(where + problem, new ViolationSite(check.Schedule, check.Round, i, -1), rounds);
            }
        }
        return mine; // this shard's: the shards' counts add up to the log's
    }

    /// <summary>
    /// A state the survey of a round's carry candidates recovered and judged, as a sampled state is: its debris and
    /// the work its recovery did choose what the next round starts from, and it counts as a checked state (its
    /// violation reported like any) unless the round's sample checked it already.
    /// </summary>
    /// <param name="Index">Its candidate point's place among the candidates (which shard counts it).</param>
    private sealed record CandidateState(int Index, int Point, int Variant, StateKind Kind, int Work, IReadOnlyCollection<string> Debris, string? Problem);

    /// <summary>
    /// The carry candidates of a log, recovered and judged: <see cref="CarryCandidates"/> seeded points in the
    /// second half of the log (up to <see cref="CarryVariants"/> states at each), <see cref="GapCandidates"/> more
    /// where two writes are in flight, and every point from the log's last request on. Deterministic.
    /// </summary>
    /// <param name="shardOnly">Only the candidates this shard counts (a shard that checks but does not choose).</param>
    /// <returns>The states, in the candidates' order; <c>Tail</c>: where the log's last request was issued, plus one.</returns>
    private static (List<CandidateState> Surveyed, int Tail) SurveyCarryCandidates(LogCheck check, bool shardOnly = false)
    {
        CampaignSpec spec = check.Spec;
        IReadOnlyList<CrashEvent> events = check.Log.Events;
        int first = Math.Min(Math.Max(check.FirstUserEvent, events.Count / 2), events.Count);
        Random random = new(StateSeed.Of(spec.Seed, check.Schedule, 1000 + check.Round));
        // Which state a scripted (minimised) round carries on is what the shrinking must not lose: once the script is
        // short every point of it is a candidate, while it is long (its every point is thousands of recoveries a
        // run) three times the seeded candidates. A generated round has 16 seeded candidates.
        // Either way every point from its last request on is one: the script was cut where the history's state was.
        int tail = spec.Script is null ? events.Count + 1 : LastRequestIssued(events) + 1;
        int[] candidates = spec.Script is not null && events.Count - check.FirstUserEvent <= ScriptedEveryPointEvents
            ? [.. Enumerable.Range(Math.Min(check.FirstUserEvent, events.Count), events.Count - Math.Min(check.FirstUserEvent, events.Count) + 1)]
            : [.. Enumerable.Range(0, spec.Script is null ? CarryCandidates : 3 * CarryCandidates).Select(_ => random.Next(first, events.Count + 1))
                .Concat(Enumerable.Range(tail, Math.Max(0, events.Count + 1 - tail))).Distinct().Order()];
        // A round also surveys GapCandidates more seeded points, but only those where two writes are in
        // flight: the debris a gap leaves (two in a row above all) is rare at the 16 alone, and a point with less in
        // flight cannot leave it, so they cost a recovery only where they can show it.
        // A scripted round (the minimiser's) draws them too: it must find the debris its history carried.
        HashSet<int> gapOnly = [.. Enumerable.Range(0, GapCandidates).Select(_ => random.Next(first, events.Count + 1)).Except(candidates)];
        candidates = [.. candidates.Concat(gapOnly).Order()];
        int[] surveyed = shardOnly ? [.. Enumerable.Range(0, candidates.Length).Where(i => i % spec.Shards == spec.Shard)] : [.. Enumerable.Range(0, candidates.Length)];
        List<CandidateState> states = [];
        List<CandidateState> SurveyAt(Timelines timelines, int at)
        {
            int index = surveyed[at];
            int point = candidates[index];
            timelines.AdvanceTo(events, point);
            if (gapOnly.Contains(point) && timelines.NonDurableCount < 2)
            {
                return [];
            }
            List<StateKind> kinds = CrashStates.ExtraKinds(timelines);
            int variants = CrashStates.VariantCount(timelines, kinds, CarryVariants);
            // Surveying costs a read of the media first: only where two writes in flight could leave a gap.
            bool survey = timelines.NonDurableCount >= 2;
            List<CandidateState> found = [];
            for (int variant = variants == 1 ? 0 : 1; variant < Math.Min(variants, CarryVariants); variant++)
            {
                CrashState state = CrashStates.Build(timelines, kinds, spec.Geometry.PmemBytes, spec.Seed, point, variant);
                Recovered outcome = Recover(spec, state, keepContent: false, survey: survey, life: check.Round + 1);
                state.Recycle(); // the chosen one is built again to carry on
                string? problem = outcome.Problem ?? check.Oracle.Check(point, outcome.Content);
                found.Add(new CandidateState(index, point, variant, CrashStates.KindOf(kinds, variant), outcome.Work, outcome.Debris, problem));
            }
            return found;
        }
        PointWorkers.Run(check.Start, PmemModelOf(spec), surveyed.Length, PointWorkers.ThreadsFor(spec.ResolvedTarget.OpensConcurrently, surveyed.Length),
            SurveyAt, (_, found) =>
            {
                states.AddRange(found);
                return true;
            });
        return (states, tail);
    }

    /// <summary>
    /// Counts the surveyed states of a log as checked states (those of this shard, but for the ones its sample
    /// checked already), in the candidates' order, and reports their violations as a sampled state's are.
    /// </summary>
    /// <param name="sampled">How many states each of the log's sampled points had (<see cref="CheckLog"/>'s).</param>
    private static void CountSurveyed(LogCheck check, Tally tally, List<HistoryRound> rounds, List<CandidateState> surveyed, IReadOnlyDictionary<int, int> sampled)
    {
        bool later = check.Previous is not null;
        foreach (CandidateState state in surveyed)
        {
            if (tally.Stopped)
            {
                return;
            }
            if (state.Index % check.Spec.Shards != check.Spec.Shard
                || (sampled.TryGetValue(state.Point, out int variants) && state.Variant < variants)
                || (later && state.Point <= check.FirstUserEvent)) // a crash during recovery: the round before judges it (CheckPoint)
            {
                continue;
            }
            tally.Generated++;
            tally.Checked++;
            tally.SurveyedStates++;
            tally.Coverage = tally.Coverage.With(state.Kind, later);
            if (state.Problem is { } problem)
            {
                tally.Violation(Where(check) + problem, new ViolationSite(check.Schedule, check.Round, state.Point, state.Variant, state.Kind) { Surveyed = true }, rounds);
            }
        }
        tally.Progress();
    }

    /// <summary>
    /// The crash state of a log the next round starts from, chosen among the sound states of its carry candidates
    /// (<see cref="SurveyCarryCandidates"/>): what recovery leaves behind is what the next round's crashes judge,
    /// and a valid segment beyond a gap is what a careless recovery leaves. Deterministic.
    /// </summary>
    /// <param name="carriedDebris">How often each kind of debris was carried so far in this campaign (updated).</param>
    /// <returns>The state carried, and every state the survey judged (for <see cref="CountSurveyed"/>).</returns>
    private static (int Point, int Variant, Media Media, IReadOnlyCollection<string> Debris, List<CandidateState> Surveyed) ChooseCarriedState(LogCheck check, Dictionary<string, int> carriedDebris)
    {
        CampaignSpec spec = check.Spec;
        IReadOnlyList<CrashEvent> events = check.Log.Events;
        (List<CandidateState> surveyed, int tail) = SurveyCarryCandidates(check);
        // A state that does not recover soundly is a violation the checks report; only sound ones are carried.
        List<CandidateState> sound = [.. surveyed.Where(s => s.Problem is null)];
        // Which debris the next life meets is chosen, not left to the most work: of the kinds the candidates'
        // recoveries left, the one this campaign carried least so far (then by name) — so its recordings carry each
        // kind in turn — and a state with it is carried (the most work among them); with no debris, the most work.
        // A scripted round re-running a failing history's wants what that history's round carried.
        IReadOnlyCollection<string>? scripted = spec.Script is not null && spec.CarriedDebrisOfRounds is { } ofRounds && check.Round <= ofRounds.Count
            ? ofRounds[check.Round - 1] : null;
        string? wanted = scripted is not null
            ? null
            : sound.SelectMany(s => s.Debris).Distinct()
                .OrderBy(kind => carriedDebris.GetValueOrDefault(kind)).ThenBy(kind => kind, StringComparer.Ordinal).FirstOrDefault();
        CandidateState? best = sound
            .OrderByDescending(s => scripted is not null ? s.Debris.Count(scripted.Contains) : wanted is not null && s.Debris.Contains(wanted) ? 1 : 0)
            .ThenByDescending(s => s.Point >= tail).ThenByDescending(s => s.Work)
            .FirstOrDefault();
        foreach (string kind in best?.Debris ?? [])
        {
            carriedDebris[kind] = carriedDebris.GetValueOrDefault(kind) + 1;
        }
        // None recovered soundly: carry the end of the log with everything landed (checked like any state).
        (int carriedPoint, int carriedVariant) = best is { } chosen ? (chosen.Point, chosen.Variant) : (events.Count, 1);
        Timelines at = new(check.Start, PmemModelOf(spec));
        at.AdvanceTo(events, carriedPoint);
        return (carriedPoint, carriedVariant, CrashStates.Build(at, CrashStates.ExtraKinds(at), spec.Geometry.PmemBytes, spec.Seed, carriedPoint, carriedVariant).Freeze(), best?.Debris ?? [], surveyed);
    }

    /// <summary>Where the log's last request was issued (-1: none).</summary>
    private static int LastRequestIssued(IReadOnlyList<CrashEvent> events)
    {
        int last = events.Count - 1;
        while (last >= 0 && events[last].Kind is not (EventKind.UserWrite or EventKind.UserRead or EventKind.UserFlush))
        {
            last--;
        }
        return last;
    }

    private sealed record Recovered(byte[]? Content, long SizeBytes, int Work, string? Story, string? Problem)
    {
        /// <summary>The kinds of debris the recovery left (<see cref="ICrashTargetDevice.RecoveryDebris"/>).</summary>
        public IReadOnlyCollection<string> Debris { get; init; } = [];
    }

    /// <summary>What the content buffer of one thread's recovered states is: one per thread, not one (often large-object) array per state.</summary>
    [ThreadStatic]
    private static byte[]? t_content;

    /// <summary>
    /// Opens a crash state as recovery does (nothing in the background) and reads the whole device. A crash state
    /// of round r is recovered by life r + 1, with that life's table (<see cref="TargetOpen.Life"/>).
    /// </summary>
    private static Recovered Recover(CampaignSpec spec, CrashState state, bool keepContent = true, bool survey = false, int life = 1)
    {
        ICrashTargetDevice recovered;
        try
        {
            recovered = spec.ResolvedTarget.Open(new TargetDevices(state.Backing, state.Cache, state.Pmem), new TargetOpen(Live: false, 0, spec.Seed, survey) { Life = life });
        }
#pragma warning disable CA1031 // Any exception out of recovery is a violation to report, never to let through.
        catch (Exception error)
        {
            return new Recovered(null, 0, 0, null, $"recovery threw {error.GetType().Name}: {error.Message}");
        }
#pragma warning restore CA1031
        try
        {
            // A pure crash never loses durable data, so it must never claim a loss (damaged media may; a crash may not).
            if (recovered.ClaimedLoss is { } loss)
            {
                return new Recovered(null, recovered.SizeBytes, recovered.RecoveryWork, recovered.RecoveryStory, $"recovery claimed a loss after a pure crash (a torn write taken for damage): {loss}");
            }
            byte[] content = keepContent ? new byte[recovered.SizeBytes] : (t_content is { } buffer && buffer.Length == recovered.SizeBytes ? buffer : t_content = new byte[recovered.SizeBytes]);
            recovered.Read(0, content);
            return new Recovered(content, recovered.SizeBytes, recovered.RecoveryWork, recovered.RecoveryStory, null) { Debris = recovered.RecoveryDebris };
        }
        catch (IOException error)
        {
            // Nothing was damaged, only crashed: every block must read.
            return new Recovered(null, recovered.SizeBytes, recovered.RecoveryWork, recovered.RecoveryStory, $"a read of the recovered device failed: {error.Message}");
        }
        finally
        {
            recovered.Crash();
        }
    }

    private static string? RecoverAndCheck(CampaignSpec spec, CrashState state, Judge judge, int life = 1)
    {
        Recovered outcome = Recover(spec, state, keepContent: false, life: life);
        return outcome.Problem ?? judge.Check(outcome.Content);
    }

    /// <summary>At most this many points of one recovery's own I/O are crashed.</summary>
    private const int RecoveryCrashPoints = 24;

    private static SortedSet<int> SpreadPoints(int events, int seed)
    {
        Random random = new(seed);
        SortedSet<int> points = [0, events];
        for (int k = 1; k < RecoveryCrashPoints - 1; k++)
        {
            int lo = (int)((long)k * events / (RecoveryCrashPoints - 1));
            int hi = Math.Max(lo + 1, (int)((long)(k + 1) * events / (RecoveryCrashPoints - 1)));
            points.Add(Math.Min(events, random.Next(lo, hi)));
        }
        return points;
    }

    /// <summary>
    /// Crashes recovery itself: recovers the state once with its devices recorded, then, at every point of
    /// recovery's own I/O, makes the crash states the model allows (nothing / everything / a seeded mix of the
    /// rest), recovers again, and checks the same oracle. Returns the states checked and the first problem.
    /// </summary>
    /// <param name="before">The crash state as it was before any recovery wrote to it (a snapshot: nothing writes to it, and its lower images stay put until this returns).</param>
    private static (int States, string? Problem) CrashDuringRecovery(CampaignSpec spec, CrashState before, Judge judge, int seed, int life)
    {
        CrashLog recovery = new();
        try
        {
            spec.ResolvedTarget.Open(RecordedDevices(spec, before, recovery), new TargetOpen(Live: false, 0, spec.Seed) { Life = life }).Crash();
        }
#pragma warning disable CA1031 // Any exception out of recovery is a violation to report.
        catch (Exception error)
        {
            return (1, $"recovery threw {error.GetType().Name}: {error.Message}");
        }
#pragma warning restore CA1031
        // Recovery wrote to layers of its own: the state before it is intact, and its crashes are layered over it.
        Timelines timelines = Timelines.Over(before, PmemModelOf(spec));
        int states = 0;
        IReadOnlyList<CrashEvent> events = recovery.Events;
        // A small recovery's every point; a large one's (a write-around switch writes back and formats: thousands
        // of writes) an even spread with seeded jitter, its first and last points included — its cost bounded.
        IEnumerable<int> points = events.Count + 1 <= RecoveryCrashPoints
            ? Enumerable.Range(0, events.Count + 1)
            : SpreadPoints(events.Count, seed);
        foreach (int q in points)
        {
            timelines.AdvanceTo(events, q);
            List<StateKind> kinds = CrashStates.ExtraKinds(timelines);
            int variants = Math.Min(3, CrashStates.VariantCount(timelines, kinds, 3));
            for (int v = 0; v < variants; v++)
            {
                // Variants 0 and 1 as usual; 2 a seeded mix.
                CrashState nested = CrashStates.Build(timelines, kinds, spec.Geometry.PmemBytes, seed, q, v < 2 ? v : 2 + (q % Math.Max(1, kinds.Count)));
                states++;
                string? problem = RecoverAndCheck(spec, nested, judge, life);
                nested.Recycle();
                if (problem is not null)
                {
                    return (states, $"after a crash at event {q} of recovery's own I/O: {problem}");
                }
            }
        }
        return (states, null);
    }

    // ---- for the fault and corruption sweeps: the default configuration's devices and states ----

    /// <summary>Recovers a crash state of the default configuration and checks the oracle for a crash at <paramref name="point"/>.</summary>
    internal static string? RecoverAndCheck(Geometry geometry, Oracle oracle, int point, FaultHooks faults, CrashState state)
    {
        CacheMode mode = state.Pmem is null ? CacheMode.Volatile : CacheMode.Persistent;
        CrashConfig config = CrashConfig.Default with { Keys = geometry.Keys };
        CampaignSpec spec = new(mode, Workload.Random, 0, 0, 0) { Target = new WriteboostTarget(mode, config) { Hooks = faults } };
        return RecoverAndCheck(spec, state, new Judge(oracle, point));
    }

    /// <summary>Recovers a crash state of a design of one's own and checks the oracle for a crash at <paramref name="point"/>.</summary>
    internal static string? RecoverAndCheck(ICrashTarget target, Oracle oracle, int point, CrashState state) =>
        RecoverAndCheck(CampaignSpec.For(target, Workload.Random, 0, 0, 0), state, new Judge(oracle, point));

    internal static byte[] Materialize(PagedImage image) => CrashState.Materialize(image);
}
