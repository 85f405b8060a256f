using CommandLine;
using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Targets;

namespace Writeboost.Cli;

/// <summary>The options the fault and corruption sweeps share.</summary>
internal abstract class SweepVerbOptions : MutantOptions
{
    [Option("mode", HelpText = "0, 1 or both (the default).")]
    public string? Mode { get; set; }

    [Option("workload", Default = "all", HelpText = "random (sub-block writes), wrap (a tiny ring: it laps, writeback and the superblock record run) or all.")]
    public string Workload { get; set; } = "all";

    [Option("seed", Default = 1, HelpText = "Seed of the workload (and of anything sampled).")]
    public int Seed { get; set; }

    [Option("json", HelpText = "Print JSON for scripts.")]
    public bool Json { get; set; }

    [Option("target", HelpText = "Sweep a design of one's own instead of the writeboost device: PATH.dll[:Type] (as wb crashtest --target), on its geometry's devices (a pmem region on either backend), judged through its requests alone. --mode and the seeded bugs are the writeboost device's.")]
    public string? Target { get; set; }

    [Option("target-arg", HelpText = "With --target: Name=Value [Name=Value...] for parameters of the target's constructor (one option that takes every value after it: put it last).")]
    public IEnumerable<string> TargetArguments { get; set; } = [];

    /// <summary>The design of <c>--target</c> (null: the writeboost device); the writeboost device's own options are refused with it, not ignored.</summary>
    private protected LoadedTarget? LoadDesign()
    {
        if (Target is null)
        {
            return TargetArguments.Any() ? throw DesignLoading.ArgumentsWithoutTarget() : null;
        }
        string? theirs = Mode is not null ? "--mode" : Mutant != "none" ? "--mutant" : Mutants is not null ? "--mutants" : ListMutants ? "--list-mutants" : null;
        if (theirs is not null)
        {
            throw new UsageException($"{theirs} is the writeboost device's: a --target design is swept as it is built (give its own settings with --target-arg Name=Value)");
        }
        return DesignLoading.Load(Target, [.. TargetArguments]);
    }

    /// <summary>How a reproducer names the sweep's subject: the writeboost mode, or the design.</summary>
    /// <summary>Sweeps run at once: one per core (each sweep is one thread), or one at a time for a design of one's own that does not say its opens may run at once.</summary>
    private protected static int SweepsAtOnce(LoadedTarget? design) => design is null || design.OpensConcurrently ? Environment.ProcessorCount : 1;

    private protected string Subject(CacheMode mode) => Target is null ? $"--mode {(int)mode}" : $"--target {Target}";

    /// <summary>A reproducer's last words: the design's <c>--target-arg</c> (it takes every value after it), or nothing.</summary>
    private protected string DesignArguments => Target is not null && TargetArguments.Any() ? $" --target-arg {string.Join(' ', TargetArguments)}" : "";
}

/// <summary>The --mode and --workload words the harness verbs (crashtest, faults, corrupt) share.</summary>
internal static class SweepArguments
{
    internal static CacheMode[] Modes(string? mode) => (mode ?? "both") switch
    {
        "0" => [CacheMode.Volatile],
        "1" => [CacheMode.Persistent],
        "both" => [CacheMode.Volatile, CacheMode.Persistent],
        _ => throw new UsageException($"--mode {mode}: expected 0, 1 or both"),
    };

    /// <summary>--persistence adr|eadr: null when not given.</summary>
    internal static PersistenceDomain? Persistence(string? text) => text switch
    {
        null => null,
        "adr" => PersistenceDomain.Adr,
        "eadr" => PersistenceDomain.Eadr,
        _ => throw new UsageException($"--persistence {text}: expected adr or eadr"),
    };

    /// <summary>random, wrap or all (the two): the workloads the fault and corruption sweeps run.</summary>
    internal static Workload[] SweepWorkloads(string workload) => workload switch
    {
        "random" => [Workload.Random],
        "wrap" => [Workload.Wrap],
        "all" => [Workload.Random, Workload.Wrap],
        _ => throw new UsageException($"--workload {workload}: expected random, wrap or all"),
    };
}
