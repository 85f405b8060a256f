using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Writeboost.Cache.Table;
using Writeboost.CrashTest.Configs;
using Writeboost.CrashTest.States;

namespace Writeboost.CrashTest;

/// <summary>A campaign's first violation as a shard found it, with where it is in the campaign's order of checks.</summary>
/// <param name="History">The saved history that replays it (on the machine that ran the shard, or a shared volume).</param>
/// <param name="Surveyed">A state the survey of the round's carry candidates checked (<see cref="ViolationSite.Surveyed"/>).</param>
public sealed record ShardViolation(string Message, int Schedule, int Round, int CrashPoint, int Variant, StateKind? Kind, bool NextRoundFailedToStart, string? History, bool Surveyed = false)
{
    internal ViolationSite Site => new(Schedule, Round, CrashPoint, Variant, Kind) { NextRoundFailedToStart = NextRoundFailedToStart, Surveyed = Surveyed };
}

/// <summary>What one shard (or, merged, every shard) of one recorded campaign checked.</summary>
/// <param name="Seconds">Spent checking (merged: the shards' sum); <paramref name="RecordSeconds"/>: recording the campaign, once.</param>
/// <param name="Design">The design checked, by its name, when it is not the writeboost device (a <c>--target</c>'s); <paramref name="Table"/> is then not its.</param>
/// <param name="Persistence">The pmem persistence domain its states were made under.</param>
/// <param name="Events">Of the campaign's logs, and <see cref="CampaignCoverage.CrashPoints"/> and <see cref="CampaignCoverage.Logs"/>: the same in every shard (the logs are shared); the other counts are the shard's own.</param>
public sealed record ShardCampaign(int Index, int Mode, Workload Workload, string Table, int Pool, int Writers, int Seed, int Ops, long MaxStates, string Mutant,
    int Events, long StatesGenerated, long StatesChecked, long Violations, long RecoveryCrashStates, double Seconds, double RecordSeconds,
    CampaignCoverage Coverage, ShardViolation? FirstViolation, bool ChangesBetweenLives = false, string? Design = null, PersistenceDomain Persistence = PersistenceDomain.Adr,
    long SurveyedStates = 0)
{
    public string Verdict => Violations == 0 ? "pass" : "fail";
}

/// <summary>
/// What a shard writes for <c>wb crashtest merge</c>: the recording it checked (its id and the plan's options),
/// which shard it was, and per campaign its counts and its first violation. Merged, the shards of one recording
/// give what checking it unsharded gives: the states are split by crash point, not chosen per shard.
/// </summary>
/// <param name="Shard">0..<paramref name="Shards"/>-1; -1 for a merged result (every shard).</param>
public sealed record ShardResult(string Format, string Recording, IReadOnlyDictionary<string, string> Plan, int Shard, int Shards, IReadOnlyList<ShardCampaign> Campaigns)
{
    public const string CurrentFormat = "wb-crashtest-shard/1";

    internal static JsonSerializerOptions JsonOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>The file a shard writes into a result directory: its name says which shard of how many.</summary>
    public string FileName => $"shard-{Shard}-of-{Shards}.json";

    public static ShardResult Of(CampaignRecording recording, int shard, int shards, IReadOnlyList<CampaignResult> results, Func<CampaignResult, string?> history)
    {
        ArgumentNullException.ThrowIfNull(recording);
        ArgumentNullException.ThrowIfNull(results);
        ArgumentNullException.ThrowIfNull(history);
        List<ShardCampaign> campaigns = [];
        for (int i = 0; i < results.Count; i++)
        {
            CampaignResult r = results[i];
            CampaignSpec spec = r.Spec;
            ShardViolation? first = r.FirstViolationSite is { } site
                ? new ShardViolation(r.FirstViolation!, site.Schedule, site.Round, site.CrashPoint, site.Variant, site.Kind, site.NextRoundFailedToStart, history(r), site.Surveyed)
                : null;
            campaigns.Add(new ShardCampaign(i, (int)spec.Mode, spec.Workload, spec.Config.ToTable(spec.Mode), spec.Config.PoolSize, spec.Config.Writers,
                spec.Seed, spec.Ops, spec.MaxStates, spec.Mutant, r.Events, r.StatesGenerated, r.StatesChecked, r.Violations, r.RecoveryCrashStates,
                r.Seconds, recording.Campaigns[i].RecordSeconds, r.Coverage, first, spec.Config.ChangesBetweenLives,
                spec.Target is { } target && !Targets.TargetIdentity.Of(target).IsWriteboost ? target.Name : null, spec.Persistence, r.SurveyedStates));
        }
        return new ShardResult(CurrentFormat, recording.Id, recording.Plan, shard, shards, campaigns);
    }

    /// <summary>Writes <see cref="FileName"/> into <paramref name="directory"/> (by rename: a merge never reads half a file); returns its path.</summary>
    public string Save(string directory)
    {
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, FileName);
        string temporary = path + $".{Environment.ProcessId}.tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(this, JsonOptions));
        File.Move(temporary, path, overwrite: true);
        return path;
    }

    /// <exception cref="InvalidDataException">not a shard result this wb reads.</exception>
    public static ShardResult Load(string path)
    {
        ShardResult? result;
        try
        {
            result = JsonSerializer.Deserialize<ShardResult>(File.ReadAllText(path), JsonOptions);
        }
        catch (JsonException error)
        {
            throw new InvalidDataException($"{path} is not a shard result: {error.Message}", error);
        }
        if (result is null || result.Format != CurrentFormat)
        {
            throw new InvalidDataException($"{path} is not a shard result of format {CurrentFormat} (format {result?.Format ?? "none"})");
        }
        return result;
    }

    /// <summary>
    /// One result from every shard of one recording: the counts added, the per-log ones checked equal, and each
    /// campaign's first violation the earliest of the shards' in the campaign's order of checks.
    /// </summary>
    /// <exception cref="InvalidDataException">the shards are of different campaigns, or one is missing or there twice (the message says which).</exception>
    public static ShardResult Merge(IReadOnlyList<(string Path, ShardResult Result)> shards)
    {
        ArgumentNullException.ThrowIfNull(shards);
        if (shards.Count == 0)
        {
            throw new InvalidDataException("no shard results to merge");
        }
        (string firstPath, ShardResult first) = shards[0];
        foreach ((string path, ShardResult other) in shards.Skip(1))
        {
            if (other.Recording != first.Recording || !SamePlan(first.Plan, other.Plan, out string? difference))
            {
                string why = SamePlan(first.Plan, other.Plan, out difference) ? "the same options, recorded twice" : difference!;
                throw new InvalidDataException($"{path} and {firstPath} are shards of different campaigns ({why}): merge the shards of one recording");
            }
            if (other.Shards != first.Shards)
            {
                throw new InvalidDataException($"{path} is shard {other.Shard}/{other.Shards}, {firstPath} shard {first.Shard}/{first.Shards}: one campaign is split one way");
            }
        }
        int n = first.Shards;
        foreach (IGrouping<int, (string Path, ShardResult Result)> twice in shards.GroupBy(s => s.Result.Shard).Where(g => g.Count() > 1))
        {
            throw new InvalidDataException($"shard {twice.Key}/{n} is there twice ({string.Join(", ", twice.Select(s => s.Path))})");
        }
        int[] missing = [.. Enumerable.Range(0, n).Except(shards.Select(s => s.Result.Shard))];
        if (missing.Length > 0)
        {
            throw new InvalidDataException($"shard{(missing.Length == 1 ? "" : "s")} {string.Join(", ", missing.Select(i => $"{i}/{n}"))} missing (have {string.Join(", ", shards.Select(s => s.Result.Shard).Order().Select(i => $"{i}/{n}"))})");
        }
        if (shards.FirstOrDefault(s => s.Result.Campaigns.Count != first.Campaigns.Count) is { Path: not null } odd)
        {
            throw new InvalidDataException($"{odd.Path} has {odd.Result.Campaigns.Count} campaigns, {firstPath} {first.Campaigns.Count}");
        }
        List<ShardCampaign> merged = [];
        for (int c = 0; c < first.Campaigns.Count; c++)
        {
            ShardCampaign a = first.Campaigns[c];
            IEnumerable<(string Path, ShardCampaign Campaign)> parts = shards.Select(s => (s.Path, s.Result.Campaigns[c]));
            foreach ((string path, ShardCampaign b) in parts)
            {
                if (b.Events != a.Events || b.Coverage.CrashPoints != a.Coverage.CrashPoints || b.Coverage.Logs != a.Coverage.Logs || b.Table != a.Table || b.Workload != a.Workload)
                {
                    throw new InvalidDataException($"campaign {c} of {path} ({b.Events} events, {b.Coverage.CrashPoints} crash points in {b.Coverage.Logs} logs) is not that of {firstPath} ({a.Events}, {a.Coverage.CrashPoints} in {a.Coverage.Logs}): they checked different logs");
                }
            }
            CampaignCoverage coverage = parts.Select(p => p.Campaign.Coverage).Aggregate((x, y) => x + y) with { CrashPoints = a.Coverage.CrashPoints, Logs = a.Coverage.Logs };
            ShardViolation? earliest = parts.Select(p => p.Campaign.FirstViolation).OfType<ShardViolation>().MinBy(v => v.Site.Order);
            merged.Add(a with
            {
                StatesGenerated = parts.Sum(p => p.Campaign.StatesGenerated),
                StatesChecked = parts.Sum(p => p.Campaign.StatesChecked),
                Violations = parts.Sum(p => p.Campaign.Violations),
                RecoveryCrashStates = parts.Sum(p => p.Campaign.RecoveryCrashStates),
                SurveyedStates = parts.Sum(p => p.Campaign.SurveyedStates),
                Seconds = parts.Sum(p => p.Campaign.Seconds),
                Coverage = coverage,
                FirstViolation = earliest,
            });
        }
        return first with { Shard = -1, Campaigns = merged };
    }

    private static bool SamePlan(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b, out string? difference)
    {
        foreach (string key in a.Keys.Union(b.Keys).Order(StringComparer.Ordinal))
        {
            string x = a.GetValueOrDefault(key, "(none)");
            string y = b.GetValueOrDefault(key, "(none)");
            if (x != y)
            {
                difference = $"{key} {y} vs {x}";
                return false;
            }
        }
        difference = null;
        return true;
    }

    /// <summary>The campaigns as results, for the report a campaign prints (<see cref="CampaignResult.FailingHistory"/> stays with the shards; a design other than the writeboost device is only named, by <see cref="ShardCampaign.Design"/>).</summary>
    public IReadOnlyList<CampaignResult> ToResults() => [.. Campaigns.Select(c =>
    {
        (CacheMode mode, CrashConfig config) = CrashConfig.FromTable(c.Table, c.Pool, c.Writers);
        CampaignSpec spec = new(mode, c.Workload, c.Seed, c.Ops, c.MaxStates, c.Mutant, Math.Max(0, Shard), Shards) { Config = config with { ChangesBetweenLives = c.ChangesBetweenLives }, Persistence = c.Persistence };
        ShardViolation? v = c.FirstViolation;
        // Seconds there are the whole campaign's, recording included; here, the shards' checking.
        return new CampaignResult(spec, c.Events, c.StatesGenerated, c.StatesChecked, c.Violations, c.Seconds + c.RecordSeconds, v?.Message, v?.CrashPoint, v?.Variant)
        {
            RecoveryCrashStates = c.RecoveryCrashStates,
            SurveyedStates = c.SurveyedStates,
            RecordSeconds = c.RecordSeconds,
            Coverage = c.Coverage,
            FirstViolationSite = v?.Site,
        };
    })];

    /// <summary>"i/n", or "all n" when merged.</summary>
    public string Describe() => Shard < 0 ? string.Create(CultureInfo.InvariantCulture, $"{Shards} shards") : string.Create(CultureInfo.InvariantCulture, $"{Shard}/{Shards}");
}
