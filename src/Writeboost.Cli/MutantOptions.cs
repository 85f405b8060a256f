using CommandLine;
using Writeboost.CrashTest.Mutants;

namespace Writeboost.Cli;

/// <summary>
/// The seeded-bug options every harness verb takes (crashtest, faults, corrupt), handled once: --mutant runs one
/// seeded bug (the run must then find a violation), --mutants all also runs every bug the verb must catch,
/// --list-mutants names them. One catalogue (<see cref="MutantCatalogue"/>) says which bugs each verb's sweep must catch.
/// </summary>
internal abstract class MutantOptions
{
    [Option("mutant", Default = "none", HelpText = "Run with a seeded bug (see --list-mutants): the run must find a violation.")]
    public string Mutant { get; set; } = "none";

    [Option("mutants", HelpText = "'all': also run every seeded bug this verb must catch and report how many were caught (exit 1 unless all are).")]
    public string? Mutants { get; set; }

    [Option("list-mutants", HelpText = "List the seeded bugs this verb catches and exit.")]
    public bool ListMutants { get; set; }

    /// <summary>The sweep this verb runs: the catalogue's bugs it must catch are its listing and its --mutants all.</summary>
    private protected abstract Sweep Sweep { get; }

    /// <summary>The bugs this verb must catch, with what shows each (catalogue order).</summary>
    internal IEnumerable<(SeededBug Bug, Exposure Shown)> SweepMutants =>
        MutantCatalogue.CaughtBy(Sweep).Select(b => (b, b.CaughtBy[Sweep]));

    /// <summary>A line of --list-mutants: name, mode, workload, meaning.</summary>
    private protected virtual string ListingLine(SeededBug bug, Exposure shown) =>
        $"{bug.Name,-38} mode {(int)shown.Mode}, {shown.Workload.ToString().ToLowerInvariant(),-9} {bug.Meaning}";

    /// <summary>
    /// With --list-mutants prints this verb's bugs and returns true (the verb exits 0). Otherwise checks --mutants
    /// and --mutant before any work and returns false.
    /// </summary>
    /// <exception cref="UsageException">--mutants is not "all", or --mutant names no seeded bug.</exception>
    internal bool ListOrCheckMutants()
    {
        if (ListMutants)
        {
            foreach ((SeededBug bug, Exposure shown) in SweepMutants)
            {
                Console.WriteLine(ListingLine(bug, shown));
            }
            return true;
        }
        if (Mutants is not null and not "all")
        {
            throw new UsageException($"--mutants {Mutants}: expected all"); // before any work, not after a campaign
        }
        try
        {
            MutantCatalogue.Find(Mutant);
        }
        catch (ArgumentException error)
        {
            throw new UsageException(error.Message);
        }
        return false;
    }
}
