using Writeboost.Cache.Table;
using Writeboost.CrashTest.Configs;

namespace Writeboost.CrashTest;

/// <summary>Which device configurations a plan covers.</summary>
public enum ConfigChoice
{
    /// <summary>The default configuration and seeded ones pinned to cover orders 10 and 11, several writers and the pmem block backend (<see cref="CrashConfig.Spread"/>).</summary>
    Spread,
    /// <summary>Only the default configuration (16 KiB segments of 3 blocks, a pool of 2).</summary>
    Default,
    /// <summary>Freely sampled configurations only (<see cref="CrashConfig.Random"/>).</summary>
    Random,
    /// <summary>One configuration given as a table.</summary>
    Table,
}

/// <summary>What a crash-test run is: its modes, workloads and configurations, and how it spends its budget.</summary>
/// <param name="Table">With <see cref="ConfigChoice.Table"/>: the configuration (its mode replaces <paramref name="Modes"/>).</param>
public sealed record CampaignPlan(
    IReadOnlyList<CacheMode> Modes,
    IReadOnlyList<Workload> Workloads,
    int Seed,
    int Ops,
    long States,
    string Mutant = "none",
    ConfigChoice Configs = ConfigChoice.Spread,
    int ConfigCount = 4,
    (CacheMode Mode, CrashConfig Config)? Table = null,
    int Schedules = 3,
    int Rounds = 2,
    int ReadPercent = 15,
    int Shard = 0,
    int Shards = 1)
{
    /// <summary>The campaigns, one per mode, workload and configuration, with the states shared evenly.</summary>
    public IReadOnlyList<CampaignSpec> Campaigns()
    {
        List<(CacheMode Mode, CrashConfig Config)> configs = [];
        if (Configs == ConfigChoice.Table)
        {
            (CacheMode mode, CrashConfig config) = Table ?? throw new ArgumentException("a table plan needs its table");
            configs.Add((mode, config));
        }
        else
        {
            IReadOnlyList<CrashConfig> chosen = Configs switch
            {
                ConfigChoice.Default => [CrashConfig.Default],
                ConfigChoice.Random => [.. Enumerable.Range(0, ConfigCount).Select(i => CrashConfig.Random(Writeboost.CrashTest.States.StateSeed.Of(Seed, i, 0xC0F)))],
                _ => CrashConfig.Spread(Seed, ConfigCount),
            };
            foreach (CacheMode mode in Modes)
            {
                configs.AddRange(chosen.Select(c => (mode, c)));
            }
        }
        // The NBD path judges the server: one configuration (the first, per mode) is enough for it.
        List<(CacheMode Mode, CrashConfig Config, Workload Workload)> runs = [.. from c in configs
            from workload in Workloads
            where workload != Workload.Protocol || ReferenceEquals(c.Config, configs.First(f => f.Mode == c.Mode).Config)
            select (c.Mode, c.Config, workload)];
        // The budget split evenly, the remainder of the division one each to the first campaigns: the shares add up to States.
        long perCampaign = States / Math.Max(1, runs.Count);
        long remainder = States % Math.Max(1, runs.Count);
        return [.. runs.Select((run, index) => new CampaignSpec(run.Mode, run.Workload, Seed, Ops, Math.Max(1, perCampaign + (index < remainder ? 1 : 0)), Mutant, Shard, Shards)
        {
            Config = run.Config,
            Schedules = Schedules,
            Rounds = Rounds,
            ReadPercent = ReadPercent,
        })];
    }

    /// <summary>
    /// Runs the plan's campaigns with its seeded bug (<see cref="Mutant"/>), each stopping at its first
    /// violation, until one catches it — the campaigns of <paramref name="first"/> (the workload the catalogue
    /// names for the bug) before the others, to be quick. Returns the catching campaign (null: not caught) and
    /// the states checked until then.
    /// </summary>
    /// <param name="prefers">The configurations the bug needs (the catalogue's <see cref="Mutants.Exposure.Prefers"/>) go first.</param>
    public (CampaignResult? Catching, long States) Hunt(Workload? first = null, Func<CrashConfig, bool>? prefers = null, CancellationToken cancel = default)
    {
        long states = 0;
        foreach (CampaignSpec spec in Campaigns().OrderBy(c => prefers?.Invoke(c.Config) == true ? 0 : 1).ThenBy(c => c.Workload == first ? 0 : 1))
        {
            if (cancel.IsCancellationRequested)
            {
                break;
            }
            CampaignResult result = Campaign.Run(spec, stopAtFirst: true, cancel: cancel);
            states += result.StatesChecked;
            if (result.Violations > 0)
            {
                return (result, states);
            }
        }
        return (null, states);
    }
}
