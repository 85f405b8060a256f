using CommandLine;
using Writeboost.Cache.Table;
using Writeboost.CrashTest;

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

    /// <summary>random, wrap or all (the two): the workloads the fault and corruption sweeps run.</summary>
    internal static Workload[] SweepWorkloads(string workload) => workload switch
    {
        "random" => [Workload.Random],
        "wrap" => [Workload.Wrap],
        "all" => [Workload.Random, Workload.Wrap],
        _ => throw new UsageException($"--workload {workload}: expected random, wrap or all"),
    };
}
