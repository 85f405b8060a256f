using System.Globalization;
using CommandLine;
using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Faults;
using Writeboost.CrashTest.Mutants;
using Writeboost.CrashTest.Targets;

namespace Writeboost.Cli;

[Verb("faults", HelpText = "I/O error injection: fail each read, write and flush of the backing store, cache device and pmem in turn (EIO, ENOSPC, short write, a burst of EIO) over recovery and a workload; check that errors reach the caller or the status, reads are never wrong, and no acknowledged write is lost after a crash. Exit 0 only when every run passes.")]
internal sealed class FaultsVerb : SweepVerbOptions
{
    [Option("runs", Default = 4000, HelpText = "At most this many faulted runs per mode and workload (evenly spaced operations beyond it).")]
    public int Runs { get; set; }

    [Option("ops", Default = 120, HelpText = "User operations per run (half as many more before the crash that recovery starts from).")]
    public int Ops { get; set; }

    [Option("persistence", HelpText = "The pmem persistence domain of the crash states after each fault: adr (the default: a store survives once its line is written back and fenced) or eadr (every completed store survives). (wb corrupt has none: it damages media on which everything issued landed.)")]
    public string? Persistence { get; set; }

    private protected override Sweep Sweep => Sweep.Faults;

    private protected override string ListingLine(SeededBug bug, Exposure shown) =>
        $"{bug.Name,-32} mode {(int)shown.Mode}, {shown.Workload.ToString().ToLowerInvariant(),-7} {shown.Where!.Value.Target.ToString().ToLowerInvariant()}.{shown.Where.Value.Operation.ToString().ToLowerInvariant(),-6} {bug.Meaning}";

    /// <summary>How long the sweeps and hunts took on the clock, side by side (their own times add up to more).</summary>
    private double _wallSeconds;

    internal int Run()
    {
        LoadedTarget? design = LoadDesign();
        PersistenceDomain persistence = SweepArguments.Persistence(Persistence) ?? PersistenceDomain.Adr;
        if (design is null && ListOrCheckMutants())
        {
            return 0;
        }
        CacheMode[] modes = design is null ? SweepArguments.Modes(Mode) : [CacheMode.Volatile];
        Workload[] workloads = SweepArguments.SweepWorkloads(Workload);
        if (Runs <= 0 || Ops < 2)
        {
            throw new UsageException("--runs must be positive and --ops at least 2");
        }
        ProgressBar progress = ProgressBar.For("fault runs", Json);
        using Interruption interruption = Interruption.Watch();
        // One hunt per seeded bug, then the sweeps: independent of each other, so they share the cores. The hunts
        // start first: a hunt for a hang waits out its liveness bound on one core while the rest go on.
        List<FaultSweepSpec> specs = [];
        List<SeededBug> hunted = [];
        if (Mutants == "all")
        {
            foreach ((SeededBug bug, Exposure shown) in SweepMutants)
            {
                hunted.Add(bug);
                specs.Add(new FaultSweepSpec(shown.Mode, shown.Workload, Seed, Ops, Runs, bug.Name, shown.Where));
            }
        }
        specs.AddRange(modes.SelectMany(mode => workloads.Select(workload =>
            new FaultSweepSpec(mode, workload, Seed, Ops, Runs, Mutant) { Target = design, Persistence = persistence })));
        SideBySide sweeps = new(progress, specs.Count, "sweeps");
        FaultSweepResult?[] done = sweeps.Run(SweepsAtOnce(design), (i, report) =>
            FaultSweep.Run(specs[i], (runs, total) => report(runs / (double)Math.Max(1, total)), stopAtFirst: i < hunted.Count || Mutant != "none", interruption.Token),
            interruption.Token);
        _wallSeconds = sweeps.WallSeconds;
        List<FaultSweepResult> results = [.. done.Skip(hunted.Count).OfType<FaultSweepResult>()];
        List<(string Name, bool Caught, int Runs)> mutants = [];
        for (int m = 0; m < hunted.Count; m++)
        {
            if (done[m] is { } caught && (!interruption.Requested || caught.Violations > 0))
            {
                mutants.Add((hunted[m].Name, caught.Violations > 0, caught.Runs));
            }
        }
        progress.Done();
        Print(results, mutants, interruption.Requested ? interruption.Line($"{results.Sum(r => r.Runs)} faulted runs made before it stopped") : null);
        if (interruption.Requested)
        {
            return interruption.ExitCode;
        }
        return results.All(r => r.Violations == 0) && mutants.All(m => m.Caught) ? 0 : 1;
    }

    private void Print(List<FaultSweepResult> results, List<(string Name, bool Caught, int Runs)> mutants, string? interrupted)
    {
        FaultSweepResult? failed = results.FirstOrDefault(r => r.Violations > 0);
        if (Json)
        {
            Output.Json(new
            {
                Runs = results.Sum(r => r.Runs),
                FaultsFired = results.Sum(r => r.FaultsFired),
                SurfacedToCaller = results.Sum(r => r.SurfacedToCaller),
                DeviceFailed = results.Sum(r => r.DeviceFailed),
                CrashStatesChecked = results.Sum(r => r.StatesChecked),
                Violations = results.Sum(r => r.Violations),
                Seconds = results.Sum(r => r.Seconds),
                WallSeconds = _wallSeconds,
                Seed,
                Mutant,
                Target = results.FirstOrDefault()?.Spec.Target?.Name,
                Interrupted = interrupted,
                Sweeps = results.Select(r => new
                {
                    Mode = ModeOf(r.Spec),
                    Workload = r.Spec.Workload.ToString().ToLowerInvariant(),
                    r.OperationsCounted,
                    r.Runs,
                    r.FaultsFired,
                    r.SurfacedToCaller,
                    r.DeviceFailed,
                    CrashStatesChecked = r.StatesChecked,
                    r.Violations,
                    r.FirstViolation,
                }),
                MutantsCaught = mutants.Count(m => m.Caught),
                MutantsTotal = mutants.Count,
                Mutants = mutants.Select(m => new { m.Name, m.Caught, RunsToCatch = m.Runs }),
            });
            return;
        }
        List<string[]> rows = [["mode", "workload", "operations", "runs", "fired", "to caller", "dev failed", "crash states", "violations"]];
        foreach (FaultSweepResult r in results)
        {
            rows.Add([r.Spec.Target is null ? Fmt((int)r.Spec.Mode) : r.Spec.Target.Name, r.Spec.Workload.ToString().ToLowerInvariant(), Fmt(r.OperationsCounted.Values.Sum()), Fmt(r.Runs), Fmt(r.FaultsFired), Fmt(r.SurfacedToCaller), Fmt(r.DeviceFailed), Fmt(r.StatesChecked), Fmt(r.Violations)]);
        }
        Output.Table(rows);
        if (interrupted is not null)
        {
            Console.WriteLine(interrupted);
        }
        string mutant = Mutant == "none" ? "" : $" (mutant {Mutant})";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"faulted runs: {results.Sum(r => r.Runs)}, faults fired: {results.Sum(r => r.FaultsFired)}, violations: {results.Sum(r => r.Violations)}, {results.Sum(r => r.Seconds):F1} s of sweeps, {_wallSeconds:F1} s on the clock{mutant}"));
        if (failed is not null)
        {
            Console.WriteLine($"first violation: {failed.FirstViolation}");
            Console.WriteLine($"reproduce: wb faults {Subject(failed.Spec.Mode)} --workload {failed.Spec.Workload.ToString().ToLowerInvariant()} --seed {Seed} --ops {Ops} --runs {Runs}" + (Mutant == "none" ? "" : $" --mutant {Mutant}") + (Persistence is null ? "" : $" --persistence {Persistence}") + DesignArguments);
        }
        foreach ((string name, bool caught, int runs) in mutants)
        {
            Console.WriteLine($"mutant {name,-32} {(caught ? $"caught after {runs} runs" : "NOT CAUGHT")}");
        }
        if (mutants.Count > 0)
        {
            Console.WriteLine($"mutants caught: {mutants.Count(m => m.Caught)}/{mutants.Count}");
        }
    }

    /// <summary>The writeboost mode of a sweep, -1 for a design of one's own (as wb bench fua --target reports it).</summary>
    private static int ModeOf(FaultSweepSpec spec) => spec.Target is null ? (int)spec.Mode : -1;

    private static string Fmt(long value) => value.ToString(CultureInfo.InvariantCulture);
}
