using Writeboost.CrashTest.Mutants;

namespace Writeboost.Tests.Support;

/// <summary>The seeded bugs, from the harness's one catalogue: a bug added there is tested everywhere.</summary>
internal static class SeededBugs
{
    /// <summary>The names of the bugs the crash campaigns must catch.</summary>
    public static IEnumerable<object[]> Names => MutantCatalogue.CaughtBy(Sweep.Crash).Select(m => new object[] { m.Name });

    /// <summary>The bug named <paramref name="name"/> and what shows it to <paramref name="sweep"/>.</summary>
    public static Exposure ShownTo(Sweep sweep, string name) => MutantCatalogue.Find(name)!.CaughtBy[sweep];

    /// <summary>The names of the bugs <paramref name="sweep"/> must catch.</summary>
    public static string[] NamesCaughtBy(Sweep sweep) => [.. MutantCatalogue.CaughtBy(sweep).Select(m => m.Name)];
}
