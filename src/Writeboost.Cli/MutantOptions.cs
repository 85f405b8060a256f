using CommandLine;

namespace Writeboost.Cli;

/// <summary>
/// The seeded-bug options every harness verb takes (crashtest, faults, corrupt), handled once: --mutant runs one
/// seeded bug (the run must then find a violation), --mutants all also runs every bug the verb must catch,
/// --list-mutants names them. Each verb gives its own catalogue's listing and name check.
/// </summary>
internal abstract class MutantOptions
{
    [Option("mutant", Default = "none", HelpText = "Run with a seeded bug (see --list-mutants): the run must find a violation.")]
    public string Mutant { get; set; } = "none";

    [Option("mutants", HelpText = "'all': also run every seeded bug this verb must catch and report how many were caught (exit 1 unless all are).")]
    public string? Mutants { get; set; }

    [Option("list-mutants", HelpText = "List the seeded bugs this verb catches and exit.")]
    public bool ListMutants { get; set; }

    /// <summary>
    /// With --list-mutants prints <paramref name="listing"/> and returns true (the verb exits 0). Otherwise checks
    /// --mutants and --mutant before any work (<paramref name="checkName"/> throws ArgumentException for a name
    /// the verb does not know) and returns false.
    /// </summary>
    /// <exception cref="UsageException">--mutants is not "all", or --mutant names no seeded bug of this verb.</exception>
    internal bool ListOrCheckMutants(IEnumerable<string> listing, Action<string> checkName)
    {
        ArgumentNullException.ThrowIfNull(listing);
        ArgumentNullException.ThrowIfNull(checkName);
        if (ListMutants)
        {
            foreach (string line in listing)
            {
                Console.WriteLine(line);
            }
            return true;
        }
        if (Mutants is not null and not "all")
        {
            throw new UsageException($"--mutants {Mutants}: expected all"); // before any work, not after a campaign
        }
        try
        {
            checkName(Mutant);
        }
        catch (ArgumentException error)
        {
            throw new UsageException(error.Message);
        }
        return false;
    }
}
