using Writeboost.CrashTest;

namespace Writeboost.Tests.Support;

/// <summary>The crash harness's seeded bugs, from its one catalogue: a bug added there is tested everywhere.</summary>
internal static class SeededBugs
{
    public static IEnumerable<object[]> Names => Campaign.Mutants.Select(m => new object[] { m.Name });
}
