using System.Globalization;
using CommandLine;
using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Configs;
using Writeboost.CrashTest.Minimise;
using Writeboost.CrashTest.Mutants;
using Writeboost.CrashTest.Recording;

namespace Writeboost.Cli;

[Verb("crashtest", HelpText = "Crash-injection campaign: record built-in workloads over a spread of device configurations and schedules, crash, recover, run on and crash again; check sampled crash states across every log and every live read against the oracle. Exit 0 only when no state violates it.")]
internal sealed class CrashTestVerb : MutantOptions
{
    [Option("mode", HelpText = "0, 1 or both (the default).")]
    public string? Mode { get; set; }

    [Option("states", Default = 60_000L, HelpText = "Crash states of the recorded logs to check in all, shared by the campaigns, their schedules and rounds (a log with fewer states than its share passes the rest on); crashes of recovery itself, and the states judged to choose each next round's starting state, come on top.")]
    public long States { get; set; }

    [Option("seed", Default = 1, HelpText = "Seed of the workloads, configurations, schedules and sampled states.")]
    public int Seed { get; set; }

    [Option("ops", Default = 150, HelpText = "User operations per workload and round.")]
    public int Ops { get; set; }

    [Option("workload", Default = "all", HelpText = "random, overwrite, wrap, protocol (through the NBD server: WRITE, WRITE_ZEROES, TRIM ± FUA, FLUSH, reads, pipelined; with the first configuration of each mode) or all.")]
    public string Workload { get; set; } = "all";

    [Option("config", HelpText = "spread (the default configuration and seeded ones that pin every table key and both pmem backends: order 10 with several writers, the pmem block backend, a barrier deadline, read caching and batched writeback; order 11 with periodic records and syncs; write-around with read caching), default (only the 16 KiB-segment one), or random (seeded samples).")]
    public string? Config { get; set; }

    [Option("configs", Default = 4, HelpText = "How many configurations spread or random covers (spread pins every key with 4).")]
    public int Configs { get; set; }

    [Option("table", HelpText = "One configuration, as a table: \"<mode> <backing> <cache> [<pmem>] [<key> <value>]...\" (the paths are placeholders; the devices are in memory). Its mode is the campaign's.")]
    public string? Table { get; set; }

    [Option("pool", Default = 2, HelpText = "With --table: RAM buffers in the pool.")]
    public int Pool { get; set; }

    [Option("writers", Default = 1, HelpText = "With --table: writer threads of the workload.")]
    public int Writers { get; set; }

    [Option("schedules", Default = 3, HelpText = "Recorded schedules per campaign: the first unperturbed, the others with the workers' windows stretched (seeded).")]
    public int Schedules { get; set; }

    [Option("rounds", Default = 2, HelpText = "Lives of the device per schedule: each later round recovers a crash state of the one before, writes on, and crashes again.")]
    public int Rounds { get; set; }

    [Option("reads", Default = 15, HelpText = "Share (%) of the workload's operations that are reads checked while the device runs.")]
    public int Reads { get; set; }


    [Option("shard", HelpText = "i/n: check only sampled crash points i, i+n, i+2n, ... of every log (to split a campaign over machines). Default: from a Kubernetes Indexed Job (JOB_COMPLETION_INDEX of WB_SHARD_COUNT) or a Slurm array (SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT), else 0/1.")]
    public string? Shard { get; set; }

    [Option("recording", HelpText = "Check a campaign recorded with 'wb crashtest record DIR' (its options are the recording's): every shard of one recording checks its share of the same logs.")]
    public string? Recording { get; set; }

    [Option("result-dir", HelpText = "With --recording: write this shard's result as DIR/shard-i-of-n.json, for 'wb crashtest merge DIR'.")]
    public string? ResultDirectory { get; set; }

    [Value(0, MetaName = "merge FILE|DIR... | record DIR", HelpText = "merge: one report from shard results; record: record the campaign into DIR for shards to check.")]
    public IEnumerable<string> Words { get; set; } = [];

    [Option("save-log", HelpText = "Directory for the histories of failing campaigns (default: the system temp directory).")]
    public string? SaveLogDirectory { get; set; }

    [Option("replay", HelpText = "A saved history (or a bare crash log): check it again (with --crash-point/--variant: one state).")]
    public string? Replay { get; set; }

    [Option("crash-point", HelpText = "With --replay: the crash point to check.")]
    public int? CrashPoint { get; set; }

    [Option("variant", HelpText = "With --replay: the state at that crash point.")]
    public int? Variant { get; set; }

    [Option("json", HelpText = "Print JSON for scripts.")]
    public bool Json { get; set; }

    [Option("minimise", HelpText = "Shrink the first failure to a short reproducer with a story (the default when a campaign fails; also with --replay).")]
    public bool Minimise { get; set; }

    [Option("no-minimise", HelpText = "Do not shrink a failure (report it as found).")]
    public bool NoMinimise { get; set; }

    [Option("persistence", HelpText = "The pmem persistence domain the crash states follow: adr (the default: a store survives once its line is written back and fenced) or eadr (the CPU caches survive too: every completed store does). Block devices are the same under both. With --replay: default the history's own.")]
    public string? Persistence { get; set; }

    [Option("target", HelpText = "A design of one's own instead of the writeboost device: PATH.dll[:Type], a public class implementing Writeboost.CrashTest.Targets.ICrashTarget (docs/prototyping.md). The built-in workloads run on it; --mode, --config, --table and the seeded bugs are the writeboost device's and do not apply.")]
    public string? Target { get; set; }

    [Option("target-arg", HelpText = "With --target: Name=Value [Name=Value...] for parameters of the target's constructor (strings, numbers, booleans, enums; one option, every value after it); others keep their defaults. With --replay: default the history's own.")]
    public IEnumerable<string> TargetArguments { get; set; } = [];

    [Option("nbd-client", HelpText = "Record a real client instead of the built-in workloads: a command line (split on spaces) run against the device served over NBD, with {uri} replaced by the export's URI, e.g. \"fio --name=w --ioengine=nbd --uri={uri} --rw=randwrite --bs=4k --size=1m --fsync=4\".")]
    public string? NbdClient { get; set; }

    private protected override Sweep Sweep => Sweep.Crash;

    internal int Run()
    {
        if (ListOrCheckMutants())
        {
            return 0;
        }
        string[] words = [.. Words];
        if (words.Length > 0 && words[0] == "merge")
        {
            return RunMerge(words[1..]);
        }
        (int shard, int shards, string shardSource) = ShardEnvironment.Resolve(Shard, Environment.GetEnvironmentVariable);
        if (words.Length > 0 && words[0] != "record")
        {
            throw new UsageException($"crashtest {words[0]}: expected merge FILE|DIR..., record DIR, or options only");
        }
        if (words.Length > 0 && words.Length != 2)
        {
            throw new UsageException("crashtest record: expected one directory (wb crashtest record DIR [options])");
        }
        if (States <= 0 || Ops <= 0)
        {
            throw new UsageException("--states and --ops must be positive");
        }
        if (Schedules < 1 || Rounds < 1 || Configs < 1)
        {
            throw new UsageException("--schedules, --rounds and --configs must be at least 1");
        }
        if (Reads is < 0 or > 80)
        {
            throw new UsageException($"--reads {Reads}: expected a share of 0..80 %");
        }
        if (Minimise && NoMinimise)
        {
            throw new UsageException("--minimise and --no-minimise contradict each other");
        }
        if ((Recording is not null || words.Length > 0) && (Replay is not null || Mutants is not null || NbdClient is not null))
        {
            throw new UsageException("--replay, --mutants and --nbd-client do not go with a recording (record and --recording)");
        }
        ValidateTarget();
        _persistence = SweepArguments.Persistence(Persistence);
        if (_persistence is not null && (Recording is not null || Mutants is not null))
        {
            throw new UsageException(Recording is not null
                ? "--persistence goes with record, not --recording: a recording is checked under the domain it was recorded with"
                : "--mutants all hunts the seeded bugs under ADR, where each of them loses data; give --mutant NAME to see one under --persistence");
        }
        if (ResultDirectory is not null && Recording is null)
        {
            throw new UsageException("--result-dir needs --recording DIR: shards that each record their own run check different interleavings (the machine's), so their results would not add up to one campaign; record it once with wb crashtest record DIR");
        }
        if (words.Length > 0)
        {
            return RunRecord(words[1]);
        }
        if (Recording is not null)
        {
            return RunRecorded(shard, shards, shardSource);
        }
        if (Replay is not null)
        {
            return RunReplay(shard, shards);
        }
        CampaignPlan plan = Plan(shard, shards);
        IReadOnlyList<CampaignSpec> campaigns = Ordered(CampaignsOf(plan));
        ProgressBar progress = ProgressBar.For("crash states", Json);
        using Interruption interruption = Interruption.Watch();
        _interruption = interruption;
        SideBySide running = new(progress, campaigns.Count, "campaigns");
        long carried = 0;
        bool caught = false;
        // A seeded bug's campaigns run one at a time, in the order most likely to show it: the first that catches
        // it ends the run. A design whose opens may not run at once gets one campaign at a time too.
        int together = Mutant == "none" && NbdClient is null && (_target?.OpensConcurrently ?? true) ? CampaignsAtOnce : 1;
        CampaignResult?[] done = running.Run(together, (index, report) =>
        {
            if (Volatile.Read(ref caught))
            {
                return null; // caught: the rest of the plan has nothing more to prove
            }
            // A campaign whose logs hold fewer states than its share passes the rest on (to the next to start):
            // --states N checks N.
            CampaignSpec spec = campaigns[index] with { MaxStates = campaigns[index].MaxStates + Interlocked.Exchange(ref carried, 0) };
            void Report(long states, long total) => report(states / (double)Math.Max(1, total));
            CampaignResult result = NbdClient is null
                ? Campaign.Run(spec, stopAtFirst: Mutant != "none", Report, interruption.Token)
                : Campaign.Check(spec with { Workload = CrashTest.Workload.Nbd }, RecordClient(spec), stopAtFirst: Mutant != "none", Report, cancel: interruption.Token);
            Interlocked.Add(ref carried, Math.Max(0, spec.MaxStates - result.LogStates));
            if (result.Violations > 0)
            {
                SaveHistory(result);
                if (Mutant != "none")
                {
                    Volatile.Write(ref caught, true);
                }
            }
            return result;
        }, interruption.Token);
        List<CampaignResult> results = [.. done.OfType<CampaignResult>()];
        _together = together > 1 && campaigns.Count > 1 ? (together, running.WallSeconds) : null;
        progress.Done();
        List<(string Name, bool Caught, long States)> mutants = [];
        if (Mutants == "all")
        {
            (SeededBug Bug, Exposure Shown)[] hunts = [.. SweepMutants];
            // Each hunt stops at its first catch; three at a time, like the campaigns, so recordings overlap checking.
            Hunted?[] hunted = new SideBySide(progress, hunts.Length, "seeded bugs hunted").Run(CampaignsAtOnce, (index, _) =>
            {
                (SeededBug bug, Exposure shown) = hunts[index];
                (CampaignResult? catching, long states) = (plan with { Modes = [shown.Mode], Mutant = bug.Name, Configs = plan.Table is null ? plan.Configs : ConfigChoice.Spread }).Hunt(shown.Workload, shown.Prefers, interruption.Token);
                return new Hunted(catching, states);
            }, interruption.Token);
            progress.Done();
            for (int index = 0; index < hunts.Length; index++)
            {
                if (hunted[index] is { } hunt && (!interruption.Requested || hunt.Catching is not null))
                {
                    mutants.Add((hunts[index].Bug.Name, hunt.Catching is not null, hunt.States));
                }
            }
        }
        Print(results, mutants, interruption.Requested ? null : MinimiseFirstFailure(results, wanted: !NoMinimise));
        if (interruption.Requested)
        {
            return interruption.ExitCode;
        }
        bool clean = results.All(r => r.Violations == 0);
        bool teeth = mutants.All(m => m.Caught);
        return clean && teeth ? 0 : 1;
    }

    /// <summary>--persistence: null when not given (a replay keeps its history's).</summary>
    private PersistenceDomain? _persistence;

    private static string Describe(PersistenceDomain domain) => domain == PersistenceDomain.Eadr ? "eADR" : "ADR";

    /// <summary>The design --target loaded (null: the writeboost device).</summary>
    private Writeboost.CrashTest.Targets.LoadedTarget? _target;

    /// <summary>--target goes with what every design has (workloads, states, schedules, rounds, reads, shards); the writeboost device's own options are refused, not ignored.</summary>
    private void ValidateTarget()
    {
        if (Target is null)
        {
            if (TargetArguments.Any())
            {
                throw DesignLoading.ArgumentsWithoutTarget();
            }
            return;
        }
        string? theirs = Mode is not null ? "--mode" : Config is not null ? "--config" : Table is not null ? "--table"
            : Mutant != "none" ? "--mutant" : Mutants is not null ? "--mutants" : null;
        if (theirs is not null)
        {
            throw new UsageException($"{theirs} is the writeboost device's: a --target design is run as it is built (give its own settings with --target-arg Name=Value)");
        }
        if (Replay is null && (Recording is null || TargetArguments.Any()))
        {
            // A replay or a recording is built with its own arguments, once it is read (see OnItsTarget).
            _target = LoadTarget([.. TargetArguments]);
        }
    }

    private Writeboost.CrashTest.Targets.LoadedTarget LoadTarget(IReadOnlyList<string> arguments) => DesignLoading.Load(Target!, arguments);

    private Writeboost.CrashTest.Targets.TargetIdentity IdentifyTarget()
    {
        try
        {
            return Writeboost.CrashTest.Targets.TargetLoader.Identify(Target!);
        }
        catch (Writeboost.CrashTest.Targets.TargetLoadException error)
        {
            throw new UsageException($"--target {error.Message}");
        }
    }

    /// <summary>The plan's campaigns, on the loaded design when there is one.</summary>
    private IReadOnlyList<CampaignSpec> CampaignsOf(CampaignPlan plan) =>
        [.. plan.Campaigns().Select(c => c with { Target = _target ?? c.Target, Persistence = _persistence ?? PersistenceDomain.Adr })];

    /// <summary>What a report calls a campaign's configuration: the writeboost device's, or the design's name.</summary>
    private string ConfigOf(CampaignSpec spec) => spec.Target is { } target ? target.Name : _mergedDesigns.GetValueOrDefault(spec) ?? spec.Config.Describe(spec.Mode);

    /// <summary>A merged campaign's design (not loaded: named by the shards' results), by its spec.</summary>
    private readonly Dictionary<CampaignSpec, string> _mergedDesigns = new(ReferenceEqualityComparer.Instance);

    /// <summary>The design a merged recording was made on, as its plan names it (null: the writeboost device).</summary>
    private string? _mergedTarget;

    private bool OnADesign(CampaignSpec spec) => spec.Target is not null || _mergedDesigns.ContainsKey(spec);

    /// <summary>The --target option (and its arguments) that a command replaying <paramref name="spec"/>'s failure needs.</summary>
    private static string TargetOption(CampaignSpec spec) =>
        spec.Target is null ? "" : " " + Writeboost.CrashTest.Targets.TargetIdentity.Of(spec.Target).CommandLine;

    /// <summary>A seeded bug lives in one mode, and the catalogue names the workload that shows it: those campaigns first.</summary>
    private IReadOnlyList<CampaignSpec> Ordered(IReadOnlyList<CampaignSpec> campaigns) =>
        MutantCatalogue.Find(Mutant)?.CaughtBy.GetValueOrDefault(Sweep.Crash) is { } seeded
            ? [.. campaigns.OrderBy(c => c.Mode == seeded.Mode ? 0 : 1).ThenBy(c => seeded.Prefers(c.Config) ? 0 : 1).ThenBy(c => c.Workload == seeded.Workload ? 0 : 1)]
            : campaigns;

    /// <summary>The options that make a campaign what it is: shards of one plan carry the same ones.</summary>
    private Dictionary<string, string> Identity() => new()
    {
        ["seed"] = Fmt(Seed),
        ["ops"] = Fmt(Ops),
        ["states"] = Fmt(States),
        ["mode"] = Mode ?? "both",
        ["workload"] = Workload,
        ["config"] = Table is null ? Config ?? "spread" : "table",
        ["configs"] = Fmt(Configs),
        ["table"] = Table ?? "",
        ["pool"] = Table is null ? "" : Fmt(Pool),
        ["writers"] = Table is null ? "" : Fmt(Writers),
        ["schedules"] = Fmt(Schedules),
        ["rounds"] = Fmt(Rounds),
        ["reads"] = Fmt(Reads),
        ["mutant"] = Mutant,
        ["target"] = _target?.Identity.ToString() ?? "",
        ["persistence"] = Persistence ?? "adr",
    };

    /// <summary>wb crashtest record DIR: records the plan's campaigns (nothing checked) for shards to check.</summary>
    private int RunRecord(string directory)
    {
        IReadOnlyList<CampaignSpec> campaigns = Ordered(CampaignsOf(Plan(0, 1)));
        ProgressBar progress = ProgressBar.For("recording", Json);
        CampaignRecording recording = CampaignRecording.Record(campaigns, Identity(), done => progress.Report(done / (double)campaigns.Count, $"campaign {done}/{campaigns.Count}"));
        progress.Done();
        recording.Save(directory);
        int logs = recording.Campaigns.Sum(c => c.Schedules.Sum(s => s.History.Rounds.Count));
        long events = recording.Campaigns.Sum(c => c.Schedules.Sum(s => s.History.Rounds.Sum(r => (long)r.Log.Events.Count)));
        double seconds = recording.Campaigns.Sum(c => c.RecordSeconds);
        if (Json)
        {
            Output.Json(new { Recording = recording.Id, Directory = directory, Campaigns = recording.Campaigns.Count, Logs = logs, Events = events, RecordSeconds = seconds, Plan = recording.Plan });
        }
        else
        {
            Console.WriteLine($"recorded {recording.Campaigns.Count} campaigns ({logs} logs, {events} events) in {seconds:F1} s into {directory} (recording {recording.Id})");
            Console.WriteLine($"check it: wb crashtest --recording {directory} [--shard i/n] --result-dir RESULTS; then wb crashtest merge RESULTS");
        }
        return 0;
    }

    /// <summary>wb crashtest --recording DIR: checks this shard's share of every recorded campaign, the whole budget of each.</summary>
    private int RunRecorded(int shard, int shards, string shardSource)
    {
        CampaignRecording recording;
        try
        {
            recording = CampaignRecording.Load(Recording!);
        }
        catch (Exception error) when (error is InvalidDataException or IOException or ArgumentException)
        {
            throw new UsageException($"--recording {Recording}: {error.Message}");
        }
        recording = OnItsTarget(recording);
        Seed = recording.Campaigns.Count > 0 ? recording.Campaigns[0].Spec.Seed : Seed;
        Mutant = recording.Plan.GetValueOrDefault("mutant", "none");
        if (!Json && shards > 1)
        {
            Console.Error.WriteLine($"wb: shard {shard}/{shards} ({shardSource}) of recording {recording.Id}");
        }
        List<CampaignResult> results = [];
        ProgressBar progress = ProgressBar.For("crash states", Json);
        using Interruption interruption = Interruption.Watch();
        _interruption = interruption;
        for (int index = 0; index < recording.Campaigns.Count && !interruption.Requested; index++)
        {
            int at = index;
            int count = recording.Campaigns.Count;
            CampaignResult result = Campaign.CheckRecorded(recording.Campaigns[index], shard, shards,
                (done, total) => progress.Report((at + Math.Min(1.0, done / (double)Math.Max(1, total))) / count, $"campaign {at + 1}/{count}"), interruption.Token);
            results.Add(result);
            if (result.Violations > 0)
            {
                SaveHistory(result);
            }
        }
        progress.Done();
        string? written = null;
        if (interruption.Requested)
        {
            // A shard's result must be whole to merge into the campaign's: an interrupted one is reported, not written.
            Print(results, [], null, new ShardReport(shard, shards, recording.Id, null));
            return interruption.ExitCode;
        }
        if (ResultDirectory is not null)
        {
            written = ShardResult.Of(recording, shard, shards, results, r => _saved.GetValueOrDefault(r)).Save(ResultDirectory);
        }
        Print(results, [], MinimiseFirstFailure(results, wanted: Minimise), new ShardReport(shard, shards, recording.Id, written));
        return results.All(r => r.Violations == 0) ? 0 : 1;
    }

    /// <summary>wb crashtest merge FILE|DIR...: one report from the shard results of one recording.</summary>
    private int RunMerge(string[] inputs)
    {
        if (inputs.Length == 0)
        {
            throw new UsageException("crashtest merge: expected shard result files or a directory of them (shard-i-of-n.json)");
        }
        List<string> files = [];
        foreach (string input in inputs)
        {
            if (Directory.Exists(input))
            {
                string[] found = Directory.GetFiles(input, "shard-*-of-*.json");
                if (found.Length == 0)
                {
                    throw new UsageException($"crashtest merge: {input} holds no shard results (shard-i-of-n.json)");
                }
                files.AddRange(found.Order(StringComparer.Ordinal));
            }
            else if (File.Exists(input))
            {
                files.Add(input);
            }
            else
            {
                throw new UsageException($"crashtest merge: {input}: no such file or directory");
            }
        }
        ShardResult merged;
        try
        {
            merged = ShardResult.Merge([.. files.Select(f => (f, ShardResult.Load(f)))]);
        }
        catch (InvalidDataException error)
        {
            throw new UsageException($"crashtest merge: {error.Message}");
        }
        IReadOnlyList<CampaignResult> results = merged.ToResults();
        _mergedTarget = merged.Plan.GetValueOrDefault("target") is { Length: > 0 } target ? target : null;
        for (int i = 0; i < results.Count; i++)
        {
            if (merged.Campaigns[i].Design is { } design)
            {
                _mergedDesigns[results[i].Spec] = design;
            }
            if (merged.Campaigns[i].FirstViolation?.History is { } history)
            {
                _saved[results[i]] = history;
            }
        }
        Seed = merged.Campaigns.Count > 0 ? merged.Campaigns[0].Seed : Seed;
        Mutant = merged.Plan.GetValueOrDefault("mutant", "none");
        Print([.. results], [], null, new ShardReport(null, merged.Shards, merged.Recording, null));
        return results.All(r => r.Violations == 0) ? 0 : 1;
    }

    /// <summary>What a report of a recorded campaign adds: which shard of how many (null: all of them, merged), of which recording, and the result file written.</summary>
    private sealed record ShardReport(int? Shard, int Shards, string Recording, string? ResultFile)
    {
        public override string ToString() => (Shard is { } i ? $"shard {i}/{Shards}" : $"merged {Shards} shards") + $" of recording {Recording}" + (ResultFile is { } file ? $"; result: {file}" : "");
    }

    private CampaignPlan Plan(int shard, int shards)
    {
        CacheMode[] modes = _target is not null ? [CacheMode.Volatile] : SweepArguments.Modes(Mode ?? "both");
        Workload[] workloads = NbdClient is not null ? [CrashTest.Workload.Nbd]
            : Workload == "all" ? [CrashTest.Workload.Random, CrashTest.Workload.Overwrite, CrashTest.Workload.Wrap, CrashTest.Workload.Protocol]
            : [ParseWorkload(Workload)];
        ConfigChoice choice = Table is not null ? ConfigChoice.Table : NbdClient is not null || _target is not null ? ConfigChoice.Default : (Config ?? "spread") switch
        {
            "spread" => ConfigChoice.Spread,
            "default" => ConfigChoice.Default,
            "random" => ConfigChoice.Random,
            _ => throw new UsageException($"--config {Config}: expected spread, default or random"),
        };
        (CacheMode, CrashConfig)? table = null;
        if (Table is not null)
        {
            try
            {
                table = CrashConfig.FromTable(Table, Pool, Writers);
            }
            catch (TableException error)
            {
                throw new UsageException($"--table: {error.Message}");
            }
        }
        return new CampaignPlan(modes, workloads, Seed, Ops, States, Mutant, choice, Configs, table, Schedules, Rounds, Reads, shard, shards);
    }

    private CrashLog RecordClient(CampaignSpec spec)
    {
        string[] words = NbdClient!.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0 || !NbdClient.Contains("{uri}", StringComparison.Ordinal))
        {
            throw new UsageException("--nbd-client needs a command with {uri} where the export's URI goes");
        }
        return Campaign.RecordFromNbdClient(spec, words[0], words[1..], out _);
    }

    private int RunReplay(int shard, int shards)
    {
        CacheMode mode = Mode switch
        {
            "0" => CacheMode.Volatile,
            "1" => CacheMode.Persistent,
            _ => CacheMode.Volatile,
        };
        // A bare crash log does not say which design made it: the one --target names, else the writeboost device. A
        // history does, with the arguments it was built with: a design that cannot be built without arguments is
        // only identified until the history gives them.
        UsageException? unbuilt = null;
        if (Target is not null)
        {
            try
            {
                _target = LoadTarget([.. TargetArguments]);
            }
            catch (UsageException error) when (!TargetArguments.Any())
            {
                unbuilt = error;
            }
        }
        CampaignSpec bare = new(mode, Workload == "all" ? CrashTest.Workload.Random : ParseWorkload(Workload), Seed, Ops, States, Mutant, shard, shards)
        {
            Rounds = 1,
            Schedules = 1,
            Target = _target,
        };
        CrashHistory history;
        try
        {
            using FileStream stream = File.OpenRead(Replay!);
            history = CrashHistory.Load(stream, bare);
        }
        catch (Exception error) when (error is IOException or InvalidDataException or EndOfStreamException)
        {
            throw new UsageException($"--replay {Replay}: {error.Message}");
        }
        if (!history.Spec.Mutant.Equals(Mutant, StringComparison.Ordinal) && Mutant != "none")
        {
            history = history with { Spec = history.Spec with { Mutant = Mutant } };
        }
        history = OnItsTarget(history, $"--replay {Replay}", unbuilt);
        if (_persistence is { } domain && domain != history.Spec.Persistence && !Json)
        {
            Console.Error.WriteLine($"wb: --replay {Replay} was recorded under {Describe(history.Spec.Persistence)}; its states are checked under {Describe(domain)}");
        }
        history = history with { Spec = history.Spec with { Persistence = _persistence ?? history.Spec.Persistence } };
        history = history with { Spec = history.Spec with { Shard = shard, Shards = shards, MaxStates = CrashPoint is null ? States : long.MaxValue } };
        CampaignResult result = Campaign.Replay(history, stopAtFirst: false, onlyCrashPoint: CrashPoint, onlyVariant: Variant);
        if (result.Violations > 0 && result.FailingHistory is not null)
        {
            _saved[result] = Replay!;
        }
        Print([result], [], MinimiseFirstFailure([result], wanted: Minimise));
        return result.Violations == 0 ? 0 : 1;
    }

    /// <summary>
    /// A history on the design that made it: the writeboost device without --target, a loaded design with it (built
    /// with the history's own arguments unless --target-arg gives others). Logs of one design are never judged
    /// against another.
    /// </summary>
    /// <param name="unbuilt">Why --target could not be built without arguments (null: it was built): its design is identified from the file alone.</param>
    private CrashHistory OnItsTarget(CrashHistory history, string what, UsageException? unbuilt = null)
    {
        Writeboost.CrashTest.Targets.TargetIdentity recorded = history.RecordedOn;
        if (Target is null)
        {
            if (!recorded.IsWriteboost)
            {
                throw new UsageException($"{what} was recorded on {recorded}: replay it with {recorded.CommandLine}");
            }
            return history;
        }
        if (recorded.IsWriteboost)
        {
            // A bare log names no design: the one given must be built from --target-arg.
            throw unbuilt ?? new UsageException($"{what} was recorded on the writeboost device, not on a --target design: drop --target");
        }
        try
        {
            // The design first: another one's arguments mean nothing.
            recorded.RequireSameDesign(_target?.Identity ?? IdentifyTarget(), what);
        }
        catch (Writeboost.CrashTest.Targets.TargetMismatchException error)
        {
            throw new UsageException(error.Message);
        }
        if (_target is null || (!TargetArguments.Any() && !recorded.Arguments.SequenceEqual(_target.Identity.Arguments)))
        {
            _target = LoadTarget(recorded.Arguments); // the history's own settings of the design, unless others are given
        }
        if (recorded.Version != _target.Identity.Version && !Json)
        {
            Console.Error.WriteLine($"wb: {what} was recorded on {recorded.Assembly} {recorded.Version}; replaying it on {_target.Identity.Version}");
        }
        return history with { Spec = history.Spec with { Target = _target } };
    }

    /// <summary>A recording on the design that made it (see the history's).</summary>
    private CampaignRecording OnItsTarget(CampaignRecording recording)
    {
        Writeboost.CrashTest.Targets.TargetIdentity recorded = recording.RecordedOn;
        if (Target is null && recorded.IsWriteboost)
        {
            return recording;
        }
        if (Target is null)
        {
            throw new UsageException($"--recording {Recording} was recorded on {recorded}: check it with {recorded.CommandLine}");
        }
        if (recorded.IsWriteboost)
        {
            throw new UsageException($"--recording {Recording} was recorded on the writeboost device, not on a --target design: drop --target");
        }
        try
        {
            recorded.RequireSameDesign(_target?.Identity ?? IdentifyTarget(), "this recording"); // the design first: another one's arguments mean nothing
            if (_target is null || (!TargetArguments.Any() && !recorded.Arguments.SequenceEqual(_target.Identity.Arguments)))
            {
                _target = LoadTarget(recorded.Arguments);
            }
            return recording.On(_target);
        }
        catch (Writeboost.CrashTest.Targets.TargetMismatchException error)
        {
            throw new UsageException($"--recording {Recording}: {error.Message}");
        }
    }

    private void SaveHistory(CampaignResult result)
    {
        if (result.FailingHistory is { } history)
        {
            string path = SaveHistory(history, $"wb-crash-seed{Seed}-mode{(int)result.Spec.Mode}-{result.Spec.Workload.ToString().ToLowerInvariant()}");
            lock (_saved)
            {
                _saved[result] = path;
            }
        }
    }

    /// <summary>A seeded bug's hunt: the campaign that caught it (null: none did), after how many states.</summary>
    private sealed record Hunted(CampaignResult? Catching, long States);

    /// <summary>How many campaigns ran at a time and how long they took on the clock (null: one at a time, timed by their own clocks).</summary>
    private (int AtOnce, double WallSeconds)? _together;

    /// <summary>
    /// Campaigns checked at once: three, so the recordings (their device's threads, mostly waiting out flushes,
    /// perturbed windows and deadlines) overlap the others' checking. Each campaign checks on every core already, but
    /// with two at a time a 2-core machine was busy 68 % of the default campaign's 10 s; with three it takes 8.5 s.
    /// </summary>
    private const int CampaignsAtOnce = 3;

    private string SaveHistory(CrashHistory history, string stem)
    {
        string dir = SaveLogDirectory ?? Path.GetTempPath();
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, $"{stem}-{Guid.NewGuid().ToString("N")[..8]}.history");
        using FileStream stream = File.Create(path);
        history.Save(stream);
        return path;
    }

    /// <summary>The first failure shrunk (and its history saved), when asked for and there is one.</summary>
    private (MinimisedFailure Failure, string Replay)? MinimiseFirstFailure(List<CampaignResult> results, bool wanted)
    {
        if (!wanted || results.FirstOrDefault(r => r.Violations > 0) is not { } failed)
        {
            return null;
        }
        ProgressBar progress = ProgressBar.For("minimising", Json);
        MinimisedFailure? minimised = Minimiser.Minimise(failed, progress: text => progress.Report(0.5, text));
        progress.Done();
        if (minimised is null)
        {
            return null;
        }
        string path = SaveHistory(minimised.History, $"wb-crash-seed{Seed}-minimised");
        string state = minimised.Variant < 0 ? "" : $" --crash-point {minimised.CrashPoint} --variant {minimised.Variant}";
        return (minimised, $"wb crashtest --replay {path}{state}{TargetOption(failed.Spec)}");
    }

    private readonly Dictionary<CampaignResult, string> _saved = [];

    private string? Reproducer(CampaignResult r)
    {
        if (r.FirstViolationSite is not { } site || !_saved.TryGetValue(r, out string? path))
        {
            return null;
        }
        string state = site.Variant < 0 ? "" : $" --crash-point {site.CrashPoint} --variant {site.Variant}";
        return $"wb crashtest --replay {path}{state}{TargetOption(r.Spec)}";
    }

    private Interruption? _interruption;

    private string? InterruptedLine(long statesChecked) => _interruption is { Requested: true } interruption
        ? interruption.Line(string.Create(CultureInfo.InvariantCulture, $"{statesChecked} states checked before it stopped"))
        : null;

    private void Print(List<CampaignResult> results, List<(string Name, bool Caught, long States)> mutants, (MinimisedFailure Failure, string Replay)? minimised = null, ShardReport? sharded = null)
    {
        long statesChecked = results.Sum(r => r.StatesChecked);
        long violations = results.Sum(r => r.Violations);
        double seconds = results.Sum(r => r.Seconds);
        // Campaigns run side by side are timed by the clock on the wall, recording included (their own times overlap).
        double checkSeconds = _together?.WallSeconds ?? results.Sum(r => r.Seconds - r.RecordSeconds);
        CampaignCoverage coverage = results.Aggregate(new CampaignCoverage(), (sum, r) => sum + r.Coverage);
        CampaignResult? failed = results.FirstOrDefault(r => r.Violations > 0);
        if (Json)
        {
            Output.Json(new
            {
                StatesGenerated = results.Sum(r => r.StatesGenerated),
                StatesChecked = statesChecked,
                StatesRequested = sharded is null ? States : (long?)null,
                LogStates = results.Sum(r => r.LogStates),
                Violations = violations,
                StatesPerSecond = statesChecked / Math.Max(checkSeconds, 1e-9),
                Seconds = seconds,
                RecordSeconds = results.Sum(r => r.RecordSeconds),
                WallSeconds = _together?.WallSeconds,
                CampaignsAtOnce = _together?.AtOnce ?? 1,
                RecoveryCrashStates = results.Sum(r => r.RecoveryCrashStates),
                SurveyedStates = results.Sum(r => r.SurveyedStates),
                Seed,
                Mutant,
                Target = _target?.Identity.ToString() ?? _mergedTarget,
                Persistence = Describe(results.FirstOrDefault()?.Spec.Persistence ?? _persistence ?? PersistenceDomain.Adr).ToLowerInvariant(),
                Interrupted = InterruptedLine(statesChecked),
                sharded?.Shard,
                Shards = sharded?.Shards,
                sharded?.Recording,
                sharded?.ResultFile,
                Coverage = CoverageJson(coverage),
                Campaigns = results.Select(r => new
                {
                    Mode = (int)r.Spec.Mode,
                    Workload = r.Spec.Workload.ToString().ToLowerInvariant(),
                    Config = ConfigOf(r.Spec),
                    Table = !OnADesign(r.Spec) ? r.Spec.Config.ToTable(r.Spec.Mode) : null,
                    r.Events,
                    r.StatesGenerated,
                    r.StatesChecked,
                    r.RecoveryCrashStates,
                    r.SurveyedStates,
                    r.Violations,
                    r.StatesPerSecond,
                    Coverage = CoverageJson(r.Coverage),
                    r.FirstViolation,
                }),
                Configs = results.GroupBy(r => ConfigOf(r.Spec)).Select(g => new
                {
                    Config = g.Key,
                    StatesChecked = g.Sum(r => r.StatesChecked),
                    Violations = g.Sum(r => r.Violations),
                }),
                MutantsCaught = mutants.Count(m => m.Caught),
                MutantsTotal = mutants.Count,
                Mutants = mutants.Select(m => new { m.Name, m.Caught, StatesToCatch = m.States }),
                FirstFailure = failed is null ? null : new
                {
                    failed.FirstViolation,
                    CrashPoint = failed.FirstViolationCrashPoint,
                    Variant = failed.FirstViolationVariant,
                    failed.FirstViolationSite?.Round,
                    failed.FirstViolationSite?.Schedule,
                    failed.FirstViolationSite?.Kind,
                    failed.FirstViolationSite?.Surveyed,
                    Config = ConfigOf(failed.Spec),
                    Reproduce = Reproducer(failed),
                },
                Minimised = minimised is not { } m ? null : new
                {
                    Ops = m.Failure.Ops.SelectMany(r => r).Select(op => op.ToString()),
                    OpCount = m.Failure.OpCount,
                    Rounds = m.Failure.Ops.Count,
                    m.Failure.OriginalOps,
                    m.Failure.CrashPoint,
                    m.Failure.Variant,
                    m.Failure.Violation,
                    m.Failure.InsteadOf,
                    m.Failure.Trials,
                    m.Failure.Story,
                    m.Replay,
                },
            });
            return;
        }
        List<string[]> rows = [["mode", "workload", "config", "events", "points", "states", "in recovery", "2nd crash", "violations", "states/s"]];
        foreach (CampaignResult r in results)
        {
            rows.Add([!OnADesign(r.Spec) ? ((int)r.Spec.Mode).ToString(CultureInfo.InvariantCulture) : "-", r.Spec.Workload.ToString().ToLowerInvariant(), ConfigOf(r.Spec),
                Fmt(r.Events), $"{Fmt(r.Coverage.PointsChecked)}/{Fmt(r.Coverage.CrashPoints)}", Fmt(r.StatesChecked), Fmt(r.Coverage.DuringRecovery), Fmt(r.Coverage.SecondCrash), Fmt(r.Violations), Fmt((long)r.StatesPerSecond)]);
        }
        Output.Table(rows);
        if (InterruptedLine(statesChecked) is { } interrupted)
        {
            Console.WriteLine(interrupted);
        }
        if (sharded is not null)
        {
            Console.WriteLine(sharded.ToString());
        }
        Console.WriteLine($"states checked: {statesChecked}, violations: {violations}, states/s: {statesChecked / Math.Max(checkSeconds, 1e-9):F0} " + (_together is { } together
            ? $"({together.WallSeconds:F1} s on the clock, {together.AtOnce} campaigns at a time, recording included; their own times {seconds:F1} s, {results.Sum(r => r.RecordSeconds):F1} s of it recording)"
            : $"(checking; {seconds:F1} s in all, {results.Sum(r => r.RecordSeconds):F1} s recording)") + (Mutant == "none" ? "" : $" (mutant {Mutant})")
            + (results.Any(r => r.Spec.Persistence == PersistenceDomain.Eadr) ? " (pmem persistence domain: eADR)" : ""));
        if (sharded is null && Mutant == "none" && InterruptedLine(statesChecked) is null)
        {
            long logStates = results.Sum(r => r.LogStates);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"of them {logStates} crash states of the logs, as --states {States} asked{(logStates < States ? $" ({States - logStates} fewer: the last logs hold no more)" : "")}, and on top {results.Sum(r => r.RecoveryCrashStates)} crashes of recovery itself and {results.Sum(r => r.SurveyedStates)} states judged to choose each next round's start"));
        }
        Console.WriteLine($"coverage: {coverage.PointsChecked} of {coverage.CrashPoints} crash points in {coverage.Logs} logs; states: prefix {coverage.Prefix}, subset {coverage.Subset}, torn {coverage.Torn}, pmem-prefix {coverage.PmemPrefix}, during-recovery {coverage.DuringRecovery}, second-crash {coverage.SecondCrash}; live reads {coverage.LiveReads}");
        if (failed is not null)
        {
            string kind = failed.FirstViolationSite?.Kind is { } k ? $" ({k.ToString().ToLowerInvariant()})" : " (a live read)";
            Console.WriteLine($"first violation: {failed.FirstViolation} (config {ConfigOf(failed.Spec)}, schedule {failed.FirstViolationSite?.Schedule}, round {failed.FirstViolationSite?.Round}, crash point {failed.FirstViolationCrashPoint}, state {failed.FirstViolationVariant}{kind})");
            if (Reproducer(failed) is { } command)
            {
                Console.WriteLine($"reproduce: {command}");
            }
        }
        if (minimised is { } shrunk)
        {
            Console.WriteLine($"minimised: {shrunk.Failure.OpCount} operation(s) of {shrunk.Failure.OriginalOps} ({shrunk.Failure.Trials} runs)");
            if (shrunk.Failure.InsteadOf is { } given)
            {
                Console.WriteLine($"  (another failure of the same campaign, shrunk instead of the first violation, whose own script did not fail every run or shrank longer: {given})");
            }
            foreach (string line in shrunk.Failure.Story)
            {
                Console.WriteLine("  " + line);
            }
            Console.WriteLine($"replay it: {shrunk.Replay}");
        }
        if (mutants.Count > 0)
        {
            foreach ((string name, bool caught, long states) in mutants)
            {
                Console.WriteLine($"mutant {name,-38} {(caught ? $"caught after {states} states" : "NOT CAUGHT")}");
            }
            Console.WriteLine($"mutants caught: {mutants.Count(m => m.Caught)}/{mutants.Count}");
        }
    }

    private static object CoverageJson(CampaignCoverage c) => new
    {
        c.CrashPoints,
        c.PointsChecked,
        c.Logs,
        States = new { c.Prefix, c.Subset, c.Torn, c.PmemPrefix, c.DuringRecovery, c.SecondCrash },
        c.LiveReads,
    };

    private static string Fmt(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static Workload ParseWorkload(string name) => name switch
    {
        "random" => CrashTest.Workload.Random,
        "overwrite" => CrashTest.Workload.Overwrite,
        "wrap" => CrashTest.Workload.Wrap,
        "nbd" => CrashTest.Workload.Nbd,
        "protocol" => CrashTest.Workload.Protocol,
        _ => throw new UsageException($"--workload {name}: expected random, overwrite, wrap or protocol" + (name == "all" ? " (one of them, with --replay)" : "")),
    };
}
