using System.Globalization;
using CommandLine;
using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Recording;

namespace Writeboost.Cli;

[Verb("crashtest", HelpText = "Crash-injection campaign: record built-in workloads, generate every crash state the hardware allows (sampled beyond a budget), recover each, check the oracle. Exit 0 only when no state violates it.")]
internal sealed class CrashTestVerb
{
    [Option("mode", Default = "both", HelpText = "0, 1 or both.")]
    public string Mode { get; set; } = "both";

    [Option("states", Default = 60_000L, HelpText = "States to check in all (split over modes and workloads).")]
    public long States { get; set; }

    [Option("seed", Default = 1, HelpText = "Seed of the workloads and of the sampled states.")]
    public int Seed { get; set; }

    [Option("ops", Default = 150, HelpText = "User operations per workload.")]
    public int Ops { get; set; }

    [Option("workload", Default = "all", HelpText = "random, overwrite, wrap or all.")]
    public string Workload { get; set; } = "all";

    [Option("mutant", Default = "none", HelpText = "Run with a seeded bug (see --list-mutants): the campaign must find a violation.")]
    public string Mutant { get; set; } = "none";

    [Option("mutants", HelpText = "'all': also run every seeded bug and report how many were caught (exit 1 unless all are).")]
    public string? Mutants { get; set; }

    [Option("list-mutants", HelpText = "List the seeded bugs and exit.")]
    public bool ListMutants { get; set; }

    [Option("shard", Default = "0/1", HelpText = "i/n: check only crash points i, i+n, i+2n, ... (to split a campaign over machines).")]
    public string Shard { get; set; } = "0/1";

    [Option("save-log", HelpText = "Directory for the logs of failing campaigns (default: the system temp directory).")]
    public string? SaveLogDirectory { get; set; }

    [Option("replay", HelpText = "A saved log: check it again (with --crash-point/--variant: one state).")]
    public string? Replay { get; set; }

    [Option("crash-point", HelpText = "With --replay: the crash point to check.")]
    public int? CrashPoint { get; set; }

    [Option("variant", HelpText = "With --replay: the state at that crash point.")]
    public int? Variant { get; set; }

    [Option("json", HelpText = "Print JSON for scripts.")]
    public bool Json { get; set; }

    [Option("nbd-client", HelpText = "Record a real client instead of the built-in workloads: a command line (split on spaces) run against the device served over NBD, with {uri} replaced by the export's URI, e.g. \"fio --name=w --ioengine=nbd --uri={uri} --rw=randwrite --bs=4k --size=1m --fsync=4\".")]
    public string? NbdClient { get; set; }

    internal int Run()
    {
        if (ListMutants)
        {
            foreach ((string name, CacheMode mode, Workload workload, string meaning) in Campaign.Mutants)
            {
                Console.WriteLine($"{name,-36} mode {(int)mode}, {workload.ToString().ToLowerInvariant(),-9} {meaning}");
            }
            return 0;
        }
        if (Mutants is not null and not "all")
        {
            throw new UsageException($"--mutants {Mutants}: expected all"); // before any work, not after a campaign
        }
        (int shard, int shards) = ParseShard(Shard);
        if (Replay is not null)
        {
            return RunReplay(shard, shards);
        }
        CacheMode[] modes = SweepArguments.Modes(Mode);
        Workload[] workloads = NbdClient is not null ? [CrashTest.Workload.Nbd]
            : Workload == "all" ? [CrashTest.Workload.Random, CrashTest.Workload.Overwrite, CrashTest.Workload.Wrap]
            : [ParseWorkload(Workload)];
        Campaign.ParseMutantName(Mutant);
        if (States <= 0 || Ops <= 0)
        {
            throw new UsageException("--states and --ops must be positive");
        }
        long perCampaign = Math.Max(1, States / (modes.Length * workloads.Length));
        List<CampaignResult> results = [];
        ProgressBar progress = ProgressBar.For("crash states", Json);
        int campaigns = modes.Length * workloads.Length;
        int campaign = 0;
        foreach (CacheMode mode in modes)
        {
            foreach (Workload workload in workloads)
            {
                CampaignSpec spec = new(mode, workload, Seed, Ops, perCampaign, Mutant, shard, shards);
                CrashLog log = NbdClient is null ? Campaign.Record(spec) : RecordClient(spec);
                int index = campaign;
                CampaignResult result = Campaign.Check(spec, log, stopAtFirst: Mutant != "none",
                    (done, total) => progress.Report((index + Math.Min(1.0, done / (double)Math.Max(1, total))) / campaigns, $"campaign {index + 1}/{campaigns}"));
                campaign++;
                results.Add(result);
                if (result.Violations > 0)
                {
                    SaveLog(result, log);
                }
            }
        }
        progress.Done();
        List<(string Name, bool Caught, long States)> mutants = [];
        if (Mutants == "all")
        {
            foreach ((string name, CacheMode mode, Workload workload, string _) in Campaign.Mutants)
            {
                CampaignResult caught = Campaign.Run(new CampaignSpec(mode, workload, Seed, Ops, 50_000, name), stopAtFirst: true);
                mutants.Add((name, caught.Violations > 0, caught.StatesChecked));
            }
        }
        Print(results, mutants);
        bool clean = results.All(r => r.Violations == 0);
        bool teeth = mutants.All(m => m.Caught);
        return clean && teeth ? 0 : 1;
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
        CrashLog log;
        using (FileStream stream = File.OpenRead(Replay!))
        {
            log = CrashLog.Load(stream);
        }
        CacheMode mode = Mode switch
        {
            "0" => CacheMode.Volatile,
            "1" => CacheMode.Persistent,
            _ => throw new UsageException("--replay needs --mode 0 or 1 (the mode the log was recorded in)"),
        };
        CampaignSpec spec = new(mode, ParseWorkload(Workload), Seed, Ops, long.MaxValue, Mutant, shard, shards);
        CampaignResult result = Campaign.Check(spec, log, stopAtFirst: false, onlyCrashPoint: CrashPoint, onlyVariant: Variant);
        Print([result], []);
        return result.Violations == 0 ? 0 : 1;
    }

    private void SaveLog(CampaignResult result, CrashLog log)
    {
        string dir = SaveLogDirectory ?? Path.GetTempPath();
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, $"wb-crash-seed{Seed}-mode{(int)result.Spec.Mode}-{result.Spec.Workload.ToString().ToLowerInvariant()}.log");
        using FileStream stream = File.Create(path);
        log.Save(stream);
        _savedLogs[result] = path;
    }

    private readonly Dictionary<CampaignResult, string> _savedLogs = [];

    private string? Reproducer(CampaignResult r) =>
        r.FirstViolationCrashPoint is { } point && _savedLogs.TryGetValue(r, out string? path)
            ? $"wb crashtest --replay {path} --mode {(int)r.Spec.Mode} --workload {r.Spec.Workload.ToString().ToLowerInvariant()} --seed {r.Spec.Seed} --crash-point {point} --variant {r.FirstViolationVariant}" + (r.Spec.Mutant == "none" ? "" : $" --mutant {r.Spec.Mutant}")
            : null;

    private void Print(List<CampaignResult> results, List<(string Name, bool Caught, long States)> mutants)
    {
        long statesChecked = results.Sum(r => r.StatesChecked);
        long violations = results.Sum(r => r.Violations);
        double seconds = results.Sum(r => r.Seconds);
        CampaignResult? failed = results.FirstOrDefault(r => r.Violations > 0);
        if (Json)
        {
            Output.Json(new
            {
                StatesGenerated = results.Sum(r => r.StatesGenerated),
                StatesChecked = statesChecked,
                Violations = violations,
                StatesPerSecond = statesChecked / Math.Max(seconds, 1e-9),
                RecoveryCrashStates = results.Sum(r => r.RecoveryCrashStates),
                Seed,
                Mutant,
                Campaigns = results.Select(r => new { Mode = (int)r.Spec.Mode, Workload = r.Spec.Workload.ToString().ToLowerInvariant(), r.Events, r.StatesChecked, r.Violations, r.StatesPerSecond, r.FirstViolation }),
                MutantsCaught = mutants.Count(m => m.Caught),
                MutantsTotal = mutants.Count,
                Mutants = mutants.Select(m => new { m.Name, m.Caught, StatesToCatch = m.States }),
                FirstFailure = failed is null ? null : new { failed.FirstViolation, CrashPoint = failed.FirstViolationCrashPoint, Variant = failed.FirstViolationVariant, Reproduce = Reproducer(failed) },
            });
            return;
        }
        List<string[]> rows = [["mode", "workload", "events", "states", "in recovery", "violations", "states/s"]];
        foreach (CampaignResult r in results)
        {
            rows.Add([((int)r.Spec.Mode).ToString(CultureInfo.InvariantCulture), r.Spec.Workload.ToString().ToLowerInvariant(), Fmt(r.Events), Fmt(r.StatesChecked), Fmt(r.RecoveryCrashStates), Fmt(r.Violations), Fmt((long)r.StatesPerSecond)]);
        }
        Output.Table(rows);
        Console.WriteLine($"states checked: {statesChecked}, violations: {violations}, states/s: {statesChecked / Math.Max(seconds, 1e-9):F0}" + (Mutant == "none" ? "" : $" (mutant {Mutant})"));
        if (failed is not null)
        {
            Console.WriteLine($"first violation: {failed.FirstViolation} (crash point {failed.FirstViolationCrashPoint}, state {failed.FirstViolationVariant})");
            if (Reproducer(failed) is { } command)
            {
                Console.WriteLine($"reproduce: {command}");
            }
        }
        if (mutants.Count > 0)
        {
            foreach ((string name, bool caught, long states) in mutants)
            {
                Console.WriteLine($"mutant {name,-36} {(caught ? $"caught after {states} states" : "NOT CAUGHT")}");
            }
            Console.WriteLine($"mutants caught: {mutants.Count(m => m.Caught)}/{mutants.Count}");
        }
    }

    private static string Fmt(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static Workload ParseWorkload(string name) => name switch
    {
        "random" => CrashTest.Workload.Random,
        "overwrite" => CrashTest.Workload.Overwrite,
        "wrap" => CrashTest.Workload.Wrap,
        "nbd" => CrashTest.Workload.Nbd,
        _ => throw new UsageException($"--workload {name}: expected random, overwrite or wrap" + (name == "all" ? " (one of them, with --replay)" : "")),
    };

    private static (int Shard, int Shards) ParseShard(string text)
    {
        string[] parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out int i) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out int n) && n > 0 && i >= 0 && i < n)
        {
            return (i, n);
        }
        throw new UsageException($"--shard {text}: expected i/n with 0 <= i < n");
    }
}
