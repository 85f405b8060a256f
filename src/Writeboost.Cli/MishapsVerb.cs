using System.Globalization;
using CommandLine;
using Writeboost.Cli.Mishaps;

namespace Writeboost.Cli;

[Verb("mishaps", HelpText = "The operator-fault sweep: after a workload, after a crash and while serving, take each action an operator can get wrong around the device (a wiped, foreign or swapped pmem, another backing disk, a bench on the device's paths, a failing command on a filesystem, a second server, check or --reformat while serving, a backing file truncated or grown) with real wb processes, and judge with the ledger: refused with a clear line and nothing lost, or handled and nothing lost. Exit 0 only when no action lost, changed or lied about data.")]
internal sealed class MishapsVerb
{
    [Option("mode", Default = "both", HelpText = "0, 1 or both.")]
    public string Mode { get; set; } = "both";

    [Option("action", HelpText = "Only this action (see --list).")]
    public string? Action { get; set; }

    [Option("list", HelpText = "List the actions and exit.")]
    public bool List { get; set; }

    [Option("seed", Default = 1, HelpText = "Seed of the workloads.")]
    public int Seed { get; set; }

    [Option("jobs", Default = 2, HelpText = "Scenarios run at once (each is a few wb processes).")]
    public int Jobs { get; set; }

    [Option("wb", HelpText = "Judge another build of wb (its apphost, or its wb.dll) instead of this one, e.g. an older release for a before/after table.")]
    public string? Program { get; set; }

    [Option("json", HelpText = "Print JSON for scripts.")]
    public bool Json { get; set; }

    internal int Run()
    {
        if (List)
        {
            foreach (Mishap mishap in Mishap.All)
            {
                Console.WriteLine($"{mishap.Name,-34} modes {string.Join(',', mishap.Modes)}; {string.Join(", ", mishap.Whens.Select(Describe))}: {mishap.What}");
            }
            return 0;
        }
        int[] modes = Mode switch
        {
            "0" => [0],
            "1" => [1],
            "both" => [0, 1],
            _ => throw new UsageException($"--mode {Mode}: expected 0, 1 or both"),
        };
        IReadOnlyList<Mishap> mishaps = Action is null ? Mishap.All
            : Mishap.All.Where(m => m.Name == Action).ToList() is { Count: > 0 } one ? one
            : throw new UsageException($"--action {Action}: unknown (known: {string.Join(", ", Mishap.All.Select(m => m.Name))})");
        if (Jobs < 1)
        {
            throw new UsageException($"--jobs {Jobs}: expected at least 1");
        }
        WbRunner wb = new(Program);
        using Interruption interruption = Interruption.Watch();
        ProgressBar progress = ProgressBar.For("operator actions", Json);
        IReadOnlyList<MishapResult> results = MishapSweep.Run(wb, modes, mishaps, Seed, Jobs, (done, total) => progress.Report(done / (double)total, $"{done}/{total}"), interruption.Token);
        progress.Done();
        string? interrupted = interruption.Requested ? interruption.Line($"{results.Count} scenario(s) judged before it stopped") : null;
        int violations = results.Count(r => r.Violation is not null);
        if (Json)
        {
            Output.Json(new
            {
                Scenarios = results.Count,
                Violations = violations,
                Refused = results.Count(r => r.Outcome == "refused" && r.Violation is null),
                Handled = results.Count(r => r.Outcome == "handled" && r.Violation is null),
                Seconds = results.Sum(r => r.Seconds),
                Interrupted = interrupted,
                Results = results.Select(r => new { r.Action, r.Mode, When = Describe(r.When), r.Outcome, r.Violation, r.Said, r.Commands }),
            });
        }
        else
        {
            List<string[]> rows = [["action", "mode", "when", "outcome", "verdict", "what the operator read"]];
            foreach (MishapResult r in results)
            {
                rows.Add([r.Action, r.Mode.ToString(CultureInfo.InvariantCulture), Describe(r.When), r.Outcome,
                    r.Violation is null ? (r.Outcome == "skipped" ? "-" : "nothing lost") : "VIOLATION", Shorten(r.Said)]);
            }
            Output.Table(rows);
            foreach (MishapResult r in results.Where(r => r.Violation is not null))
            {
                Console.WriteLine($"violation: {r.Action}, mode {r.Mode}, {Describe(r.When)}: {r.Violation}");
            }
            if (interrupted is not null)
            {
                Console.WriteLine(interrupted);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"operator actions: {results.Count} scenarios, {results.Count(r => r.Outcome == "refused" && r.Violation is null)} refused and intact, {results.Count(r => r.Outcome is "handled" or "mixed" && r.Violation is null)} handled and intact, {violations} violation(s), {results.Sum(r => r.Seconds):F1} s of scenarios"));
        }
        if (interruption.Requested)
        {
            return interruption.ExitCode;
        }
        return violations == 0 ? 0 : 1;
    }

    private static string Describe(When when) => when switch
    {
        When.AfterClose => "after a clean close",
        When.AfterCrash => "after a crash",
        _ => "while serving",
    };

    private static string Shorten(string line) => line.Length <= 110 ? line : line[..107] + "...";
}
