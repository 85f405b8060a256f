using System.Reflection;
using Writeboost.Cache.Core;
using Writeboost.CrashTest.Mutants;

namespace Writeboost.Tests.CrashTest;

/// <summary>The one catalogue of seeded bugs, and the seam they are planted through.</summary>
[TestClass]
public sealed class MutantCatalogueTests
{
    /// <summary>The decision points of both seams: the device's (FaultHooks) and the NBD server's (NbdServerFaults).</summary>
    private static readonly MemberInfo[] DecisionPoints = [.. DecisionsOf(typeof(FaultHooks)), .. DecisionsOf(typeof(Writeboost.Nbd.NbdServerFaults))];

    private static MemberInfo[] DecisionsOf(Type seam) => seam
        .GetMembers(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.DeclaredOnly)
        .Where(m => m is MethodInfo { IsVirtual: true, IsSpecialName: false } || m is PropertyInfo p && p.GetMethod!.IsVirtual)
        .ToArray();

    [TestMethod]
    public void Every_seeded_bug_has_a_unique_name_a_meaning_and_a_sweep_that_must_catch_it()
    {
        CollectionAssert.AllItemsAreUnique(MutantCatalogue.All.Select(b => b.Name).ToArray());
        foreach (SeededBug bug in MutantCatalogue.All)
        {
            Assert.IsFalse(string.IsNullOrWhiteSpace(bug.Meaning), bug.Name);
            Assert.IsNotEmpty(bug.CaughtBy, $"{bug.Name}: no sweep is to catch it");
            Assert.IsTrue(!ReferenceEquals(FaultHooks.None, bug.Hooks) || !ReferenceEquals(Writeboost.Nbd.NbdServerFaults.None, bug.ServerHooks), $"{bug.Name}: plants nothing");
            Assert.IsTrue(bug.CaughtBy.Values.All(e => e.Where is null) || bug.CaughtBy.ContainsKey(Sweep.Faults), $"{bug.Name}: only the fault sweep injects somewhere");
        }
    }

    [TestMethod]
    public void Each_seeded_bug_changes_exactly_one_decision_and_every_decision_is_planted_by_some_bug()
    {
        Assert.IsGreaterThan(10, DecisionPoints.Length, "the seam's decision points were found");
        HashSet<string> planted = [];
        foreach (SeededBug bug in MutantCatalogue.All)
        {
            string[] overridden = [.. Overridden(bug.Hooks.GetType()), .. Overridden(bug.ServerHooks.GetType())];
            Assert.HasCount(1, overridden, $"{bug.Name} overrides {string.Join(", ", overridden)}");
            planted.UnionWith(overridden);
        }
        CollectionAssert.AreEquivalent(DecisionPoints.Select(m => m.Name).ToArray(), planted.ToArray(),
            "a decision point no seeded bug plants is a rule no sweep is shown to guard");
    }

    [TestMethod]
    public void An_unknown_name_is_a_clear_error_and_none_plants_nothing()
    {
        Assert.IsNull(MutantCatalogue.Find("none"));
        ArgumentException error = Assert.ThrowsExactly<ArgumentException>(() => MutantCatalogue.Find("drop-the-fence"));
        StringAssert.Contains(error.Message, "unknown mutant drop-the-fence");
    }

    [TestMethod]
    public void The_product_answers_keep_every_rule()
    {
        FaultHooks product = FaultHooks.None;
        Assert.IsTrue(product.FlushesCacheBeforeAck && product.PmemFencesWrittenBackLines && product.WalkGoesPastDamage && product.PoisonedBlockFailsReads);
        Assert.IsFalse(product.SegmentChecksumHolds(false), "a failed checksum fails");
        Assert.IsFalse(product.FailedChecksumIsDamage(false), "a segment never shown durable is a torn write, not damage");
        Assert.AreEqual(7ul, product.DurableIdToClaim(7));
        Assert.AreEqual((byte)0x0f, product.DirtyBitsToSeal(0x0f, 8));
    }

    private static string[] Overridden(Type hooks) => hooks == typeof(FaultHooks) || hooks == typeof(Writeboost.Nbd.NbdServerFaults) ? [] :
        DecisionPoints.Select(m => m.Name).Where(name =>
        {
            MemberInfo? own = hooks.GetMember(name, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.DeclaredOnly).SingleOrDefault();
            return own is not null;
        }).ToArray();
}
