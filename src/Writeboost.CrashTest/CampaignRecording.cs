using System.Diagnostics;
using System.Text.Json;
using Writeboost.CrashTest.Configs;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.States;
using Writeboost.CrashTest.Targets;

namespace Writeboost.CrashTest;

/// <summary>One schedule of a recorded campaign: its history of rounds, and why the next round could not start (if it could not).</summary>
/// <param name="StartFailure">The live device failed to recover the last round's carried state: a violation, reported once (by shard 0).</param>
public sealed record RecordedSchedule(CrashHistory History, string? StartFailure = null);

/// <summary>A campaign recorded once, to be checked by any number of shards: every schedule's rounds as they happened.</summary>
public sealed record RecordedCampaign(CampaignSpec Spec, IReadOnlyList<RecordedSchedule> Schedules, double RecordSeconds);

/// <summary>
/// A plan recorded once, checked anywhere. Recording runs the device with its worker threads, and which
/// interleaving a run records is the machine's (two runs of one seed record different logs and check different
/// states), so shards that each recorded their own run would not add up to one campaign. Shards check one
/// recording instead: what they check depends on the logs, the seed and the budget only.
/// </summary>
/// <param name="Id">Names this recording: shard results of different recordings never merge.</param>
/// <param name="Plan">The options that made it (seed, ops, states, modes, ...), as text: a campaign's identity.</param>
public sealed record CampaignRecording(string Id, IReadOnlyDictionary<string, string> Plan, IReadOnlyList<RecordedCampaign> Campaigns)
{
    private const string IndexFile = "recording.json";
    private const string Format = "wb-crashtest-recording/1";

    /// <summary>Records every campaign of <paramref name="campaigns"/> (in this order: the order checks and reports follow).</summary>
    public static CampaignRecording Record(IReadOnlyList<CampaignSpec> campaigns, IReadOnlyDictionary<string, string> plan, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(campaigns);
        List<RecordedCampaign> recorded = [];
        foreach (CampaignSpec spec in campaigns)
        {
            recorded.Add(Campaign.RecordCampaign(spec));
            progress?.Invoke(recorded.Count);
        }
        return new CampaignRecording(Guid.NewGuid().ToString("N"), plan, recorded);
    }

    /// <summary>Writes the recording into <paramref name="directory"/>: an index (<c>recording.json</c>) and one history per campaign and schedule.</summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        List<IndexCampaign> index = [];
        for (int c = 0; c < Campaigns.Count; c++)
        {
            RecordedCampaign campaign = Campaigns[c];
            CampaignSpec spec = campaign.Spec;
            List<IndexSchedule> schedules = [];
            foreach (RecordedSchedule schedule in campaign.Schedules)
            {
                string file = $"campaign-{c}-schedule-{schedule.History.Spec.FirstSchedule}.history";
                using (FileStream stream = File.Create(Path.Combine(directory, file)))
                {
                    schedule.History.Save(stream);
                }
                schedules.Add(new IndexSchedule(file, schedule.StartFailure));
            }
            index.Add(new IndexCampaign((int)spec.Mode, spec.Workload, spec.Config.ToTable(spec.Mode), spec.Config.PoolSize, spec.Config.Writers,
                spec.MaxStates, spec.Schedules, spec.RoundCount, spec.ReadPercent, spec.Mutant, campaign.RecordSeconds, schedules, spec.Config.ChangesBetweenLives, spec.Persistence));
        }
        // The index last, by rename: a directory with an index holds a whole recording.
        string temporary = Path.Combine(directory, IndexFile + ".tmp");
        File.WriteAllText(temporary, JsonSerializer.Serialize(new Index(Format, Id, Plan, index), ShardResult.JsonOptions));
        File.Move(temporary, Path.Combine(directory, IndexFile), overwrite: true);
    }

    /// <exception cref="InvalidDataException">the directory holds no recording, or a damaged one.</exception>
    public static CampaignRecording Load(string directory)
    {
        string path = Path.Combine(directory, IndexFile);
        if (!File.Exists(path))
        {
            throw new InvalidDataException($"{directory} holds no recording ({IndexFile} is missing): make one with wb crashtest record {directory}");
        }
        Index index;
        try
        {
            index = JsonSerializer.Deserialize<Index>(File.ReadAllText(path), ShardResult.JsonOptions) ?? throw new InvalidDataException($"{path} is empty");
        }
        catch (JsonException error)
        {
            throw new InvalidDataException($"{path}: {error.Message}", error);
        }
        if (index.Format != Format)
        {
            throw new InvalidDataException($"{path}: format {index.Format}, this wb reads {Format}");
        }
        List<RecordedCampaign> campaigns = [];
        foreach (IndexCampaign c in index.Campaigns)
        {
            (Cache.Table.CacheMode mode, CrashConfig config) = CrashConfig.FromTable(c.Table, c.Pool, c.Writers);
            CampaignSpec spec = new(mode, c.Workload, 0, 0, c.MaxStates, c.Mutant)
            {
                Config = config with { ChangesBetweenLives = c.ChangesBetweenLives },
                Schedules = c.Schedules,
                Rounds = c.Rounds,
                ReadPercent = c.ReadPercent,
                Persistence = c.Persistence,
            };
            List<RecordedSchedule> schedules = [];
            foreach (IndexSchedule s in c.ScheduleFiles)
            {
                using FileStream stream = File.OpenRead(Path.Combine(directory, s.File));
                CrashHistory history = CrashHistory.Load(stream, spec);
                spec = spec with { Seed = history.Spec.Seed, Ops = history.Spec.Ops };
                schedules.Add(new RecordedSchedule(history, s.StartFailure));
            }
            campaigns.Add(new RecordedCampaign(spec, schedules, c.RecordSeconds));
        }
        return new CampaignRecording(index.Id, index.Plan, campaigns);
    }

    /// <summary>The design every campaign was recorded on (the writeboost device for a recording without campaigns).</summary>
    public Targets.TargetIdentity RecordedOn =>
        Campaigns.SelectMany(c => c.Schedules).Select(s => s.History.RecordedOn).FirstOrDefault() ?? Targets.TargetIdentity.Writeboost;

    /// <summary>The recording checked on <paramref name="target"/>, the design it was recorded on (a loaded one: a saved recording does not hold the design's code).</summary>
    /// <exception cref="Targets.TargetMismatchException">it was recorded on another design.</exception>
    public CampaignRecording On(Targets.ICrashTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        Targets.TargetIdentity identity = Targets.TargetIdentity.Of(target);
        foreach (RecordedSchedule schedule in Campaigns.SelectMany(c => c.Schedules))
        {
            schedule.History.RecordedOn.RequireSameDesign(identity, "this recording");
        }
        return this with
        {
            Campaigns = [.. Campaigns.Select(c => c with
            {
                Spec = c.Spec with { Target = target },
                Schedules = [.. c.Schedules.Select(s => s with { History = s.History with { Spec = s.History.Spec with { Target = target } } })],
            })],
        };
    }

    private sealed record Index(string Format, string Id, IReadOnlyDictionary<string, string> Plan, IReadOnlyList<IndexCampaign> Campaigns);

    private sealed record IndexCampaign(int Mode, Workload Workload, string Table, int Pool, int Writers, long MaxStates, int Schedules, int Rounds,
        int ReadPercent, string Mutant, double RecordSeconds, IReadOnlyList<IndexSchedule> ScheduleFiles, bool ChangesBetweenLives = false,
        PersistenceDomain Persistence = PersistenceDomain.Adr);

    private sealed record IndexSchedule(string File, string? StartFailure);
}

public static partial class Campaign
{
    /// <summary>
    /// Records a campaign's schedules as <see cref="Run(CampaignSpec, bool, Action{long, long}?, CancellationToken)"/> does, checking
    /// nothing: each round's log, and the crash state the next round starts from (chosen from the log alone).
    /// </summary>
    public static RecordedCampaign RecordCampaign(CampaignSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Script is not null || spec.Workload == Workload.Nbd)
        {
            throw new ArgumentException("only a generated workload is recorded for shards");
        }
        long start = Stopwatch.GetTimestamp();
        long budget = Math.Max(1, spec.MaxStates / (spec.Schedules * spec.RoundCount));
        List<RecordedSchedule> schedules = [];
        Dictionary<string, int> carriedDebris = [];
        for (int schedule = spec.FirstSchedule; schedule < spec.FirstSchedule + spec.Schedules; schedule++)
        {
            Media media = BlankMedia(spec);
            Judge? previous = null;
            List<HistoryRound> rounds = [];
            string? failure = null;
            for (int round = 1; round <= spec.RoundCount; round++)
            {
                int workloadSeed = Campaign.WorkloadSeedOf(spec, schedule, round);
                CrashLog log;
                byte[] recovered;
                try
                {
                    log = RecordRound(spec, media, schedule, round, workloadSeed, out recovered);
                }
                catch (Exception error) when (round > 1 && error is IOException or InvalidDataException or ArgumentException or InvalidOperationException)
                {
                    failure = $"the device recovering round {round - 1}'s crash state failed: {error.Message}";
                    break;
                }
                rounds.Add(new HistoryRound(log));
                if (round < spec.RoundCount)
                {
                    Oracle oracle = new(log.Events, recovered);
                    (int point, int variant, Media carried, _, _) = ChooseCarriedState(new LogCheck(spec, log, media, oracle, previous, schedule, round, budget), carriedDebris);
                    rounds[^1] = rounds[^1] with { CarriedPoint = point, CarriedVariant = variant };
                    previous = new Judge(oracle, point);
                    media = carried;
                }
            }
            CampaignSpec one = spec with { Rounds = rounds.Count, Schedules = 1, FirstSchedule = schedule };
            schedules.Add(new RecordedSchedule(new CrashHistory(one, rounds), failure));
        }
        return new RecordedCampaign(spec, schedules, Stopwatch.GetElapsedTime(start).TotalSeconds);
    }

    /// <summary>
    /// Checks shard <paramref name="shard"/> of <paramref name="shards"/> of a recorded campaign: every round of every
    /// schedule, the whole budget (a shard cannot know whether another one found a violation, so none stops at its
    /// first). The shards' counts add up to the unsharded check's, and the first violation in <see cref="ViolationSite.Order"/>
    /// among theirs is its first.
    /// </summary>
    public static CampaignResult CheckRecorded(RecordedCampaign campaign, int shard = 0, int shards = 1, Action<long, long>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(campaign);
        CampaignSpec spec = campaign.Spec with { Shard = shard, Shards = shards };
        Tally tally = new(spec, stopAtFirst: false, progress) { Cancel = cancel };
        int logs = spec.Schedules * spec.RoundCount;
        int logIndex = 0;
        foreach (RecordedSchedule recorded in campaign.Schedules)
        {
            recorded.History.RecordedOn.RequireSameDesign(TargetIdentity.Of(spec.ResolvedTarget), "this recording");
            IReadOnlyList<HistoryRound> rounds = recorded.History.Rounds;
            int schedule = recorded.History.Spec.FirstSchedule;
            Media media = BlankMedia(spec);
            Judge? previous = null;
            for (int r = 0; r < rounds.Count; r++)
            {
                // As the recorded run: the round's oracle starts from what its device read on opening (recovery is deterministic).
                Oracle oracle = new(rounds[r].Log.Events, InitialContent(spec, media, previous, life: r + 1));
                long budget = Math.Max(1, (spec.MaxStates - tally.LogStates) / Math.Max(1, logs - logIndex++));
                LogCheck check = new(spec, rounds[r].Log, media, oracle, previous, schedule, r + 1, budget);
                IReadOnlyDictionary<int, int> sampled = CheckLog(check, tally, [.. rounds.Take(r + 1)]);
                if (r < rounds.Count - 1)
                {
                    // As the unsharded run counts them: the states its choice of the carried one judged (this shard's share).
                    CountSurveyed(check, tally, [.. rounds.Take(r + 1)], SurveyCarryCandidates(check, shardOnly: true).Surveyed, sampled);
                    Timelines timelines = new(media, PmemModelOf(spec));
                    timelines.AdvanceTo(rounds[r].Log.Events, rounds[r].CarriedPoint);
                    CrashState state = CrashStates.Build(timelines, CrashStates.ExtraKinds(timelines), spec.Geometry.PmemBytes, spec.Seed, rounds[r].CarriedPoint, rounds[r].CarriedVariant);
                    previous = new Judge(oracle, rounds[r].CarriedPoint);
                    media = state.Freeze();
                }
            }
            if (recorded.StartFailure is { } failure && shard == 0)
            {
                HistoryRound last = rounds[^1];
                tally.Violation(failure, new ViolationSite(schedule, rounds.Count, last.CarriedPoint, last.CarriedVariant) { NextRoundFailedToStart = true }, [.. rounds]);
            }
        }
        return tally.Result();
    }
}
