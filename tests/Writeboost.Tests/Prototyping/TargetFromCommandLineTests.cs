using System.Text.Json;
using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.Targets;
using Writeboost.Samples.PmemWal;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Prototyping;

/// <summary>
/// A prototyper's design loaded from its assembly (<c>wb crashtest --target PATH.dll[:Type]</c>): what it made
/// carries its identity, and logs of one design are never judged on another.
/// </summary>
[TestClass]
public sealed class TargetFromCommandLineTests
{
    /// <summary>The sample's built assembly, beside the tests (as a prototyper's is beside their project).</summary>
    private static string SampleAssembly => typeof(PmemWalTarget).Assembly.Location;

    private static CampaignSpec Spec(ICrashTarget target) =>
        new(CacheMode.Volatile, Workload.Random, Seed: 1, Ops: 60, MaxStates: 1500) { Target = target, Schedules = 1 };

    [TestMethod]
    public void The_fault_sweep_judges_a_design_of_ones_own_and_catches_one_that_swallows_an_error()
    {
        WbResult clean = WbProcess.Run(null, "faults", "--target", SampleAssembly, "--workload", "random", "--runs", "60", "--json");
        Assert.AreEqual(0, clean.ExitCode, clean.Stdout + clean.Stderr);
        using (JsonDocument json = JsonDocument.Parse(clean.Stdout))
        {
            JsonElement root = json.RootElement;
            Assert.AreEqual("pmem-wal", root.GetProperty("target").GetString());
            Assert.IsGreaterThan(0, root.GetProperty("faults_fired").GetInt32(), "faults were injected into the design's devices");
            Assert.AreEqual(0, root.GetProperty("violations").GetInt32());
            Assert.AreEqual(-1, root.GetProperty("sweeps")[0].GetProperty("mode").GetInt32(), "no writeboost mode");
        }

        string careless = typeof(Writeboost.TestDesigns.WalSwallowingErrors).Assembly.Location + ":WalSwallowingErrors";
        WbResult caught = WbProcess.Run(null, "faults", "--target", careless, "--workload", "random", "--runs", "60");
        Assert.AreEqual(1, caught.ExitCode, caught.Stdout + caught.Stderr);
        StringAssert.Contains(caught.Stdout, "first violation:");
        StringAssert.Contains(caught.Stdout, "reproduce: wb faults --target " + careless);

        WbResult mode = WbProcess.Run(null, "faults", "--target", SampleAssembly, "--mode", "1");
        Assert.AreEqual(2, mode.ExitCode);
        StringAssert.Contains(mode.Stderr, "--mode is the writeboost device's");
    }

    [TestMethod]
    public void The_corruption_sweep_damages_the_metadata_a_design_names_and_says_how_to_reproduce_what_it_found()
    {
        WbResult clean = WbProcess.Run(null, "corrupt", "--target", SampleAssembly, "--workload", "wrap", "--json");
        Assert.AreEqual(0, clean.ExitCode, clean.Stdout + clean.Stderr);
        using (JsonDocument json = JsonDocument.Parse(clean.Stdout))
        {
            JsonElement root = json.RootElement;
            Assert.AreEqual("pmem-wal", root.GetProperty("target").GetString());
            Assert.AreEqual(-1, root.GetProperty("sweeps")[0].GetProperty("mode").GetInt32(), "no writeboost mode");
            Assert.IsGreaterThan(0, root.GetProperty("silent_reverts").GetInt32());
            CollectionAssert.IsSubsetOf(new[] { "log header", "record headers", "pmem (unnamed bytes)" },
                root.GetProperty("sweeps")[0].GetProperty("areas").EnumerateArray().Select(a => a.GetProperty("area").GetString()).ToArray());
        }

        WbResult caught = WbProcess.Run(null, "corrupt", "--target", SampleAssembly, "--workload", "wrap", "--target-arg", "flaw=ChecksumOmitsHeader");
        Assert.AreEqual(1, caught.ExitCode, caught.Stdout + caught.Stderr);
        StringAssert.Contains(caught.Stdout, "violation: record headers, bit");
        StringAssert.Contains(caught.Stdout, $"reproduce: wb corrupt --target {SampleAssembly} --workload wrap --seed 1 --ops 150 --data-samples 200 --target-arg flaw=ChecksumOmitsHeader");

        WbResult mutant = WbProcess.Run(null, "corrupt", "--target", SampleAssembly, "--mutants", "all");
        Assert.AreEqual(2, mutant.ExitCode);
        StringAssert.Contains(mutant.Stderr, "--mutants is the writeboost device's");
    }

    [TestMethod]
    public void An_assembly_with_one_target_loads_it_built_with_its_defaults_or_the_arguments_given()
    {
        LoadedTarget plain = TargetLoader.Load(SampleAssembly, []);
        LoadedTarget flawed = TargetLoader.Load($"{SampleAssembly}:PmemWalTarget", ["flaw=AckBeforeFence", "LogBytes=131072"]);

        Assert.AreEqual(new PmemWalTarget(), plain.Inner);
        Assert.AreEqual(new PmemWalTarget(WalFlaw.AckBeforeFence, 128 * 1024), flawed.Inner);
        Assert.AreEqual(typeof(PmemWalTarget).FullName, flawed.Identity.Type);
        Assert.AreEqual("PmemWal", flawed.Identity.Assembly);
        Assert.AreEqual(SampleAssembly, flawed.Identity.Location);
        CollectionAssert.AreEqual(new[] { "flaw=AckBeforeFence", "LogBytes=131072" }, flawed.Identity.Arguments.ToArray());
        StringAssert.EndsWith(flawed.Identity.CommandLine, ":Writeboost.Samples.PmemWal.PmemWalTarget --target-arg flaw=AckBeforeFence LogBytes=131072", "one option, its values after it: the parser takes an option once");
        Assert.IsTrue(plain.OpensConcurrently, "what the design says, passed through");
    }

    [TestMethod]
    [DataRow("{dir}/missing.dll", "no such file")]
    [DataRow("{dir}", "is a directory")]
    [DataRow("{dir}/notes.dll", "is not a .NET assembly")]
    [DataRow("{devices}", "no public class implements Writeboost.CrashTest.Targets.ICrashTarget")]
    [DataRow("{sample}:NoSuchTarget", "no target named NoSuchTarget (its targets: Writeboost.Samples.PmemWal.PmemWalTarget)")]
    [DataRow("{sample}|Flaw=Sometimes", "--target-arg Flaw=Sometimes: expected one of None, AckBeforeFence, NewEpochBeforeBackingFlush, ChecksumOmitsHeader")]
    [DataRow("{sample}|LogBytes=lots", "--target-arg LogBytes=lots: expected a Int64")]
    [DataRow("{sample}|Colour=red", "--target-arg Colour: PmemWalTarget's constructors have no parameter Colour (they have: Flaw, LogBytes)")]
    [DataRow("{sample}|Flaw", "--target-arg Flaw: expected Name=Value")]
    [DataRow("{sample}|Flaw=None|flaw=None", "is given twice")]
    [DataRow("{sample}|LogBytes=0", "constructor failed")]
    public void A_target_that_cannot_be_loaded_is_named_with_what_is_wrong(string specification, string expected)
    {
        using TempDirectory dir = new();
        File.WriteAllText(dir.File("notes.dll"), "not an assembly");
        string[] parts = specification
            .Replace("{dir}", dir.Path, StringComparison.Ordinal)
            .Replace("{sample}", SampleAssembly, StringComparison.Ordinal)
            .Replace("{devices}", typeof(Writeboost.Devices.IBlockDevice).Assembly.Location, StringComparison.Ordinal)
            .Split('|');

        TargetLoadException error = Assert.ThrowsExactly<TargetLoadException>(() => TargetLoader.Load(parts[0], parts[1..]));

        StringAssert.Contains(error.Message, expected);
    }

    [TestMethod]
    public void A_saved_history_names_its_design_and_replays_only_on_it()
    {
        LoadedTarget flawed = TargetLoader.Load(SampleAssembly, ["Flaw=AckBeforeFence"]);
        CampaignResult failed = Campaign.Run(Spec(flawed) with { Persistence = PersistenceDomain.Adr }, stopAtFirst: true);
        Assert.AreEqual(1, failed.Violations, "the flaw is caught");
        using MemoryStream saved = new();
        failed.FailingHistory!.Save(saved);
        saved.Position = 0;
        CrashHistory loaded = CrashHistory.Load(saved, new CampaignSpec(CacheMode.Volatile, Workload.Random, 0, 0, 0));

        Assert.AreEqual(flawed.Identity.Type, loaded.RecordedOn.Type);
        CollectionAssert.AreEqual(new[] { "Flaw=AckBeforeFence" }, loaded.RecordedOn.Arguments.ToArray());
        Assert.AreEqual(SampleAssembly, loaded.RecordedOn.Location);
        Assert.AreEqual(PersistenceDomain.Adr, loaded.Spec.Persistence);
        using MemoryStream underEadr = new();
        (failed.FailingHistory with { Spec = failed.FailingHistory.Spec with { Persistence = PersistenceDomain.Eadr } }).Save(underEadr);
        underEadr.Position = 0;
        Assert.AreEqual(PersistenceDomain.Eadr, CrashHistory.Load(underEadr, loaded.Spec).Spec.Persistence, "the domain is the history's");

        // Read back without its design, it is not run on the writeboost device: it says which design to load.
        TargetMismatchException onWriteboost = Assert.ThrowsExactly<TargetMismatchException>(() => Campaign.Replay(loaded, stopAtFirst: true));
        StringAssert.Contains(onWriteboost.Message, "recorded on target 'pmem-wal (AckBeforeFence)'");
        StringAssert.Contains(onWriteboost.Message, $"--target {SampleAssembly}:{typeof(PmemWalTarget).FullName} --target-arg Flaw=AckBeforeFence");

        // On its own design it fails again.
        CampaignResult again = Campaign.Replay(loaded with { Spec = loaded.Spec with { Target = flawed } }, stopAtFirst: true,
            onlyCrashPoint: failed.FirstViolationCrashPoint, onlyVariant: failed.FirstViolationVariant);
        Assert.AreEqual(1, again.Violations);
    }

    [TestMethod]
    public void A_writeboost_history_is_refused_on_a_loaded_design()
    {
        LoadedTarget wal = TargetLoader.Load(SampleAssembly, []);
        CampaignResult run = Campaign.Run(Spec(wal) with { Rounds = 1, MaxStates = 50 });
        CrashHistory writeboost = new(run.Spec, [new HistoryRound(RecordedLog(wal))]) { RecordedOn = TargetIdentity.Writeboost };

        TargetMismatchException error = Assert.ThrowsExactly<TargetMismatchException>(() => Campaign.Replay(writeboost, stopAtFirst: true));

        StringAssert.Contains(error.Message, "recorded on the writeboost device, not on target 'pmem-wal'");
    }

    [TestMethod]
    public void A_recording_of_a_loaded_design_is_checked_only_on_it()
    {
        LoadedTarget wal = TargetLoader.Load(SampleAssembly, []);
        CampaignRecording recording = CampaignRecording.Record([Spec(wal)], new Dictionary<string, string>());
        using TempDirectory dir = new();
        recording.Save(dir.Path);
        CampaignRecording loaded = CampaignRecording.Load(dir.Path);

        Assert.AreEqual(wal.Identity.Type, loaded.RecordedOn.Type);
        Assert.ThrowsExactly<TargetMismatchException>(() => Campaign.CheckRecorded(loaded.Campaigns[0]));
        Assert.ThrowsExactly<TargetMismatchException>(() => loaded.On(new WriteboostTarget(CacheMode.Volatile, Writeboost.CrashTest.Configs.CrashConfig.Default)));
        CampaignResult checkedOnIt = Campaign.CheckRecorded(loaded.On(wal).Campaigns[0]);
        Assert.AreEqual(0, checkedOnIt.Violations, checkedOnIt.FirstViolation);
        Assert.IsGreaterThan(500L, checkedOnIt.StatesChecked);
    }

    [TestMethod]
    public void Wb_crashtest_judges_a_design_given_on_the_command_line_and_its_reproducer_replays_in_a_new_process()
    {
        using TempDirectory dir = new();
        WbResult clean = WbProcess.Run(null, "crashtest", "--target", SampleAssembly, "--workload", "random", "--states", "800", "--json");
        Assert.AreEqual(0, clean.ExitCode, clean.Stderr + clean.Stdout);
        using (JsonDocument document = JsonDocument.Parse(clean.Stdout))
        {
            StringAssert.Contains(document.RootElement.GetProperty("target").GetString(), "target 'pmem-wal'");
            Assert.AreEqual("pmem-wal", document.RootElement.GetProperty("campaigns")[0].GetProperty("config").GetString());
        }

        WbResult caught = WbProcess.Run(null, "crashtest", "--target", SampleAssembly, "--target-arg", "Flaw=AckBeforeFence",
            "--workload", "random", "--states", "800", "--save-log", dir.Path, "--json");
        Assert.AreEqual(1, caught.ExitCode, caught.Stderr);
        string replay;
        using (JsonDocument document = JsonDocument.Parse(caught.Stdout))
        {
            replay = document.RootElement.GetProperty("minimised").GetProperty("replay").GetString()!;
        }
        StringAssert.Contains(replay, $"--target {SampleAssembly}:{typeof(PmemWalTarget).FullName} --target-arg Flaw=AckBeforeFence");
        string[] words = replay.Split(' ');
        Assert.AreEqual("wb", words[0]);
        WbResult again = WbProcess.Run(null, words[1..]);
        Assert.AreEqual(1, again.ExitCode, again.Stderr + again.Stdout);

        string history = words[Array.IndexOf(words, "--replay") + 1];
        WbResult withoutIt = WbProcess.Run(null, "crashtest", "--replay", history);
        Assert.AreEqual(2, withoutIt.ExitCode);
        StringAssert.Contains(withoutIt.Stderr, "was recorded on target 'pmem-wal (AckBeforeFence)'");

        // On another design it is refused as that, before the history's arguments (PmemWal's Flaw) are tried on it.
        string otherDesign = typeof(Writeboost.Samples.DmWritecache.WritecacheTarget).Assembly.Location;
        WbResult elsewhere = WbProcess.Run(null, "crashtest", "--replay", history, "--target", otherDesign);
        Assert.AreEqual(2, elsewhere.ExitCode);
        StringAssert.Contains(elsewhere.Stderr, "not on target 'dm-writecache'");

        WbResult writeboostOption = WbProcess.Run(null, "crashtest", "--target", SampleAssembly, "--mode", "1");
        Assert.AreEqual(2, writeboostOption.ExitCode);
        StringAssert.Contains(writeboostOption.Stderr, "--mode is the writeboost device's");
    }

    [TestMethod]
    public void A_design_built_only_from_its_arguments_replays_with_the_arguments_its_history_recorded()
    {
        string designs = typeof(Writeboost.TestDesigns.WalWithoutDefaults).Assembly.Location + ":WalWithoutDefaults"; // the assembly holds other test designs too
        LoadedTarget flawed = TargetLoader.Load(designs, ["flaw=AckBeforeFence"]);
        CampaignResult failed = Campaign.Run(Spec(flawed), stopAtFirst: true);
        Assert.AreEqual(1, failed.Violations, "the flaw is caught");
        using TempDirectory dir = new();
        string history = dir.File("wal.history");
        using (FileStream file = File.Create(history))
        {
            failed.FailingHistory!.Save(file);
        }

        // No --target-arg: the design cannot be built from nothing, but the history says what it was built with.
        WbResult replayed = WbProcess.Run(null, "crashtest", "--replay", history, "--target", designs, "--no-minimise", "--json");
        Assert.AreEqual(1, replayed.ExitCode, replayed.Stderr + replayed.Stdout);
        using (JsonDocument document = JsonDocument.Parse(replayed.Stdout))
        {
            Assert.AreEqual(failed.FirstViolation, document.RootElement.GetProperty("first_failure").GetProperty("first_violation").GetString());
        }

        // Another design's history is refused as that, before anything is built.
        CampaignResult other = Campaign.Run(Spec(TargetLoader.Load(SampleAssembly, ["Flaw=AckBeforeFence"])), stopAtFirst: true);
        string otherHistory = dir.File("other.history");
        using (FileStream file = File.Create(otherHistory))
        {
            other.FailingHistory!.Save(file);
        }
        WbResult elsewhere = WbProcess.Run(null, "crashtest", "--replay", otherHistory, "--target", designs, "--no-minimise");
        Assert.AreEqual(2, elsewhere.ExitCode, elsewhere.Stderr);
        StringAssert.Contains(elsewhere.Stderr, "not on target 'WalWithoutDefaults'");
    }

    /// <summary>Any recorded log of the design (the harness's own recorder, one round).</summary>
    private static CrashLog RecordedLog(ICrashTarget target)
    {
        RecordedCampaign recorded = Campaign.RecordCampaign(Spec(target) with { Rounds = 1 });
        return recorded.Schedules[0].History.Rounds[0].Log;
    }
}
