using System.Globalization;
using CommandLine;
using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Faults;
using Writeboost.CrashTest.Mutants;
using Writeboost.CrashTest.Targets;

namespace Writeboost.Cli;

[Verb("corrupt", HelpText = "Corrupted-media sweep: flip every bit position of the superblock, segment headers, metablocks and pmem metadata one at a time, zero metadata sectors, flip random data bytes, put back stale segments of an earlier lap, truncate; recover each and check no garbage is read, no exception escapes, the damage is reported, and wb check flags it. Exit 0 only when every case passes.")]
internal sealed class CorruptVerb : SweepVerbOptions
{
    [Option("ops", Default = 150, HelpText = "User operations of the workload that makes the media.")]
    public int Ops { get; set; }

    [Option("data-samples", Default = 200, HelpText = "Random data bytes to flip (cache and pmem).")]
    public int DataSamples { get; set; }

    [Option("verbose", HelpText = "Print up to 20 violations per sweep, not just the first.")]
    public bool Verbose { get; set; }


    private protected override Sweep Sweep => Sweep.Corruption;

    /// <summary>How long the sweeps and hunts took on the clock, side by side (their own times add up to more).</summary>
    private double _wallSeconds;

    internal int Run()
    {
        LoadedTarget? design = LoadDesign();
        if (design is null && ListOrCheckMutants())
        {
            return 0;
        }
        CacheMode[] modes = design is null ? SweepArguments.Modes(Mode) : [CacheMode.Volatile];
        Workload[] workloads = SweepArguments.SweepWorkloads(Workload);
        if (Ops <= 0 || DataSamples < 0)
        {
            throw new UsageException("--ops must be positive and --data-samples not negative");
        }
        ProgressBar progress = ProgressBar.For("corruptions", Json);
        using Interruption interruption = Interruption.Watch();
        // The sweeps, then one hunt per seeded bug, side by side on the cores.
        List<CorruptionSweepSpec> specs = [.. modes.SelectMany(mode => workloads.Select(workload =>
            new CorruptionSweepSpec(mode, workload, Seed, Ops, DataSamples, Mutant) { Target = design }))];
        int sweepCount = specs.Count;
        List<SeededBug> hunted = [];
        if (Mutants == "all")
        {
            foreach ((SeededBug bug, Exposure shown) in SweepMutants)
            {
                hunted.Add(bug);
                specs.Add(new CorruptionSweepSpec(shown.Mode, shown.Workload, Seed, Ops, DataSamples, bug.Name, StopAtFirst: true));
            }
        }
        SideBySide sweeps = new(progress, specs.Count, "sweeps");
        CorruptionSweepResult?[] done = sweeps.Run(SweepsAtOnce(design), (i, report) =>
            CorruptionSweep.Run(specs[i], (tried, total) => report(tried / (double)Math.Max(1, total)), interruption.Token),
            interruption.Token);
        _wallSeconds = sweeps.WallSeconds;
        List<CorruptionSweepResult> results = [.. done.Take(sweepCount).OfType<CorruptionSweepResult>()];
        List<(string Name, bool Caught)> mutants = [];
        for (int m = 0; m < hunted.Count; m++)
        {
            if (done[sweepCount + m] is { } hunt && (!interruption.Requested || hunt.Violations > 0))
            {
                mutants.Add((hunted[m].Name, hunt.Violations > 0));
            }
        }
        progress.Done();
        string? interrupted = interruption.Requested ? interruption.Line($"{results.Sum(r => r.Tried)} damages tried before it stopped") : null;
        if (Json)
        {
            Output.Json(new
            {
                Tried = results.Sum(r => r.Tried),
                Changed = results.Sum(r => r.Changed),
                Refused = results.Sum(r => r.Refused),
                Undetectable = results.Sum(r => r.Areas.Sum(a => a.Undetectable)),
                ReadErrors = results.Sum(r => r.ReadErrors),
                SilentReverts = results.Sum(r => r.SilentReverts),
                LookingWrote = results.Sum(r => r.LookingWrote),
                UncheckedData = results.Sum(r => r.UncheckedData),
                Violations = results.Sum(r => r.Violations),
                Seconds = results.Sum(r => r.Seconds),
                WallSeconds = _wallSeconds,
                Seed,
                Mutant,
                Target = design?.Name,
                Interrupted = interrupted,
                MutantsCaught = mutants.Count(m => m.Caught),
                MutantsTotal = mutants.Count,
                Mutants = mutants.Select(m => new { m.Name, m.Caught }),
                Sweeps = results.Select(r => new { Mode = r.Spec.Target is null ? (int)r.Spec.Mode : -1, Workload = r.Spec.Workload.ToString().ToLowerInvariant(), r.Tried, r.Changed, r.Refused, r.Undetectable, r.ReadErrors, r.SilentReverts, r.LookingWrote, r.UncheckedData, r.Violations, r.FirstViolation, r.Areas }),
            });
        }
        else
        {
            // A design of one's own has no read-only open and no provenance of its format: its own columns instead.
            List<string[]> rows = design is null
                ? [["mode", "workload", "area", "tried", "changed", "read errors", "refused", "undetectable", "silent reverts", "looking wrote", "violations"]]
                : [["target", "workload", "area", "tried", "changed", "read errors", "refused", "silent reverts", "unchecked data", "violations"]];
            foreach (CorruptionSweepResult r in results)
            {
                foreach (CorruptionAreaResult a in r.Areas)
                {
                    rows.Add(design is null
                        ? [Fmt((int)r.Spec.Mode), r.Spec.Workload.ToString().ToLowerInvariant(), a.Area, Fmt(a.Tried), Fmt(a.Changed), Fmt(a.ReadErrors), Fmt(a.Refused), Fmt(a.Undetectable), Fmt(a.SilentReverts), Fmt(a.LookingWrote), Fmt(a.Violations)]
                        : [design.Name, r.Spec.Workload.ToString().ToLowerInvariant(), a.Area, Fmt(a.Tried), Fmt(a.Changed), Fmt(a.ReadErrors), Fmt(a.Refused), Fmt(a.SilentReverts), Fmt(a.UncheckedData), Fmt(a.Violations)]);
                }
            }
            Output.Table(rows);
            if (interrupted is not null)
            {
                Console.WriteLine(interrupted);
            }
            Console.WriteLine(design is null
                ? string.Create(CultureInfo.InvariantCulture, $"corruptions tried: {results.Sum(r => r.Tried)}, changed what the device reads: {results.Sum(r => r.Changed)}, read errors (poisoned blocks): {results.Sum(r => r.ReadErrors)}, refused: {results.Sum(r => r.Refused)}, undetectable (only writes nothing on the media vouches for): {results.Sum(r => r.Undetectable)}, silent reverts: {results.Sum(r => r.SilentReverts)}, a read-only open wrote: {results.Sum(r => r.LookingWrote)}, violations: {results.Sum(r => r.Violations)}, {results.Sum(r => r.Seconds):F1} s of sweeps, {_wallSeconds:F1} s on the clock")
                : string.Create(CultureInfo.InvariantCulture, $"corruptions tried: {results.Sum(r => r.Tried)}, changed what the design reads: {results.Sum(r => r.Changed)}, read errors: {results.Sum(r => r.ReadErrors)}, refused: {results.Sum(r => r.Refused)}, silent reverts (older data, no error, no loss claimed): {results.Sum(r => r.SilentReverts)}, unchecked data (a flipped data bit read back): {results.Sum(r => r.UncheckedData)}, violations: {results.Sum(r => r.Violations)}, {results.Sum(r => r.Seconds):F1} s of sweeps, {_wallSeconds:F1} s on the clock"));
            if (design is not null && results.Sum(r => r.Tried) == 0 && results.All(r => r.Violations == 0))
            {
                Console.WriteLine($"{design.Name} names no metadata region and has no cache device or pmem region: nothing to damage");
            }
            foreach (CorruptionSweepResult r in results.Where(r => r.FirstViolation is not null))
            {
                foreach (string violation in r.ViolationSamples.Take(Verbose ? 20 : 1))
                {
                    Console.WriteLine($"{(design is null ? $"mode {(int)r.Spec.Mode}" : design.Name)} {r.Spec.Workload.ToString().ToLowerInvariant()}: violation: {violation}");
                }
                Console.WriteLine($"reproduce: wb corrupt {Subject(r.Spec.Mode)} --workload {r.Spec.Workload.ToString().ToLowerInvariant()} --seed {Seed} --ops {Ops} --data-samples {DataSamples}" + (Mutant == "none" ? "" : $" --mutant {Mutant}") + DesignArguments);
            }
        }
        foreach ((string name, bool caught) in mutants.Where(_ => !Json))
        {
            Console.WriteLine($"mutant {name,-32} {(caught ? "caught" : "NOT CAUGHT")}");
        }
        if (interruption.Requested)
        {
            return interruption.ExitCode;
        }
        return results.All(r => r.Violations == 0) && mutants.All(m => m.Caught) ? 0 : 1;
    }

    private static string Fmt(long value) => value.ToString(CultureInfo.InvariantCulture);
}
