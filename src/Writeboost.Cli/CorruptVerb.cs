using System.Globalization;
using CommandLine;
using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Faults;
using Writeboost.CrashTest.Mutants;

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

    internal int Run()
    {
        if (ListOrCheckMutants())
        {
            return 0;
        }
        CacheMode[] modes = SweepArguments.Modes(Mode);
        Workload[] workloads = SweepArguments.SweepWorkloads(Workload);
        if (Ops <= 0 || DataSamples < 0)
        {
            throw new UsageException("--ops must be positive and --data-samples not negative");
        }
        ProgressBar progress = ProgressBar.For("corruptions", Json);
        List<CorruptionSweepResult> results = [];
        int sweeps = modes.Length * workloads.Length;
        using Interruption interruption = Interruption.Watch();
        foreach (CacheMode mode in modes)
        {
            foreach (Workload workload in workloads.TakeWhile(_ => !interruption.Requested))
            {
                int index = results.Count;
                results.Add(CorruptionSweep.Run(new CorruptionSweepSpec(mode, workload, Seed, Ops, DataSamples, Mutant),
                    (done, total) => progress.Report((index + done / (double)Math.Max(1, total)) / sweeps, $"sweep {index + 1}/{sweeps}"), interruption.Token));
            }
        }
        List<(string Name, bool Caught)> mutants = [];
        if (Mutants == "all")
        {
            foreach ((SeededBug bug, Exposure shown) in SweepMutants.TakeWhile(_ => !interruption.Requested))
            {
                CorruptionSweepResult hunt = CorruptionSweep.Run(new CorruptionSweepSpec(shown.Mode, shown.Workload, Seed, Ops, DataSamples, bug.Name, StopAtFirst: true), cancel: interruption.Token);
                if (!interruption.Requested || hunt.Violations > 0)
                {
                    mutants.Add((bug.Name, hunt.Violations > 0));
                }
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
                Violations = results.Sum(r => r.Violations),
                Seconds = results.Sum(r => r.Seconds),
                Seed,
                Mutant,
                Interrupted = interrupted,
                MutantsCaught = mutants.Count(m => m.Caught),
                MutantsTotal = mutants.Count,
                Mutants = mutants.Select(m => new { m.Name, m.Caught }),
                Sweeps = results.Select(r => new { Mode = (int)r.Spec.Mode, Workload = r.Spec.Workload.ToString().ToLowerInvariant(), r.Tried, r.Changed, r.Refused, r.Undetectable, r.ReadErrors, r.SilentReverts, r.LookingWrote, r.Violations, r.FirstViolation, r.Areas }),
            });
        }
        else
        {
            List<string[]> rows = [["mode", "workload", "area", "tried", "changed", "read errors", "refused", "undetectable", "silent reverts", "looking wrote", "violations"]];
            foreach (CorruptionSweepResult r in results)
            {
                foreach (CorruptionAreaResult a in r.Areas)
                {
                    rows.Add([Fmt((int)r.Spec.Mode), r.Spec.Workload.ToString().ToLowerInvariant(), a.Area, Fmt(a.Tried), Fmt(a.Changed), Fmt(a.ReadErrors), Fmt(a.Refused), Fmt(a.Undetectable), Fmt(a.SilentReverts), Fmt(a.LookingWrote), Fmt(a.Violations)]);
                }
            }
            Output.Table(rows);
            if (interrupted is not null)
            {
                Console.WriteLine(interrupted);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"corruptions tried: {results.Sum(r => r.Tried)}, changed what the device reads: {results.Sum(r => r.Changed)}, read errors (poisoned blocks): {results.Sum(r => r.ReadErrors)}, refused: {results.Sum(r => r.Refused)}, undetectable (only writes nothing on the media vouches for): {results.Sum(r => r.Undetectable)}, silent reverts: {results.Sum(r => r.SilentReverts)}, a read-only open wrote: {results.Sum(r => r.LookingWrote)}, violations: {results.Sum(r => r.Violations)}, {results.Sum(r => r.Seconds):F1} s"));
            foreach (CorruptionSweepResult r in results.Where(r => r.FirstViolation is not null))
            {
                foreach (string violation in r.ViolationSamples.Take(Verbose ? 20 : 1))
                {
                    Console.WriteLine($"mode {(int)r.Spec.Mode} {r.Spec.Workload.ToString().ToLowerInvariant()}: violation: {violation}");
                }
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
