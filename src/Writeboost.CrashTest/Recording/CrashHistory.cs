using Writeboost.Cache.Table;

namespace Writeboost.CrashTest.Recording;

/// <summary>One life of the device in a multi-crash history: its recorded log, and (but for the last) the crash state the next life starts from.</summary>
/// <param name="CarriedPoint">The crash point of this log whose state the next round recovers and goes on with (-1: the last round).</param>
public sealed record HistoryRound(CrashLog Log, int CarriedPoint = -1, int CarriedVariant = -1)
{
    /// <summary>The kinds of debris the carried state's recovery left (in memory only: a saved history replays its carried point).</summary>
    public IReadOnlyCollection<string> CarriedDebris { get; init; } = [];
}

/// <summary>
/// What reproduces a failing state of a campaign, whatever machine it runs on: the campaign's options and the
/// recorded rounds up to the failing one (each round's log, and the crash state the next one started from). The
/// logs hold the interleaving that happened, so the worker threads' timing no longer matters. Saved in a small
/// binary format (<c>wb crashtest --save-log</c>, replayed with <c>--replay</c>).
/// </summary>
public sealed record CrashHistory(CampaignSpec Spec, IReadOnlyList<HistoryRound> Rounds)
{
    private const uint FileMagic = 0x48434257u; // "WBCH"
    private const int FileVersion = 6; // 3: whether the table changes between lives; 4: the perturbation focus of its first round; 5: the target and the persistence domain; 6: whether its last round's carry candidates are surveyed

    private readonly Targets.TargetIdentity? _recordedOn;

    /// <summary>
    /// The design the logs were recorded on: a saved history's (a history saved before version 5 was made on the
    /// writeboost device), else the spec's target. <see cref="Campaign.Replay"/> refuses to replay it on another.
    /// </summary>
    public Targets.TargetIdentity RecordedOn
    {
        get => _recordedOn ?? Targets.TargetIdentity.Of(Spec.ResolvedTarget);
        init => _recordedOn = value;
    }

    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using BinaryWriter writer = new(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        writer.Write(FileMagic);
        writer.Write(FileVersion);
        writer.Write((int)Spec.Mode);
        writer.Write((int)Spec.Workload);
        writer.Write(Spec.Seed);
        writer.Write(Spec.Ops);
        writer.Write(Spec.Mutant);
        writer.Write(Spec.Config.ToTable(Spec.Mode));
        writer.Write(Spec.Config.PoolSize);
        writer.Write(Spec.Config.Writers);
        writer.Write(Spec.Config.ChangesBetweenLives);
        writer.Write(Spec.ReadPercent);
        writer.Write(Spec.FirstSchedule);
        writer.Write(Spec.FocusOfFirstRound ?? Campaign.FocusIndexOf(Spec, Spec.FirstSchedule, 1));
        writer.Write((int)Spec.Persistence);
        Targets.TargetIdentity target = RecordedOn;
        writer.Write(target.Type);
        writer.Write(target.Assembly);
        writer.Write(target.Version);
        writer.Write(target.Name);
        writer.Write(target.Location);
        writer.Write(target.Arguments.Count);
        foreach (string argument in target.Arguments)
        {
            writer.Write(argument);
        }
        writer.Write(Spec.SurveysLastRound);
        writer.Write(Rounds.Count);
        foreach (HistoryRound round in Rounds)
        {
            writer.Write(round.CarriedPoint);
            writer.Write(round.CarriedVariant);
            using MemoryStream log = new();
            round.Log.Save(log);
            writer.Write(checked((int)log.Length));
            writer.Write(log.GetBuffer(), 0, (int)log.Length);
        }
    }

    /// <summary>Loads a saved history, or a bare crash log (one round, the options given as <paramref name="bareLogSpec"/>).</summary>
    /// <exception cref="InvalidDataException">the file is neither.</exception>
    public static CrashHistory Load(Stream stream, CampaignSpec bareLogSpec)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(bareLogSpec);
        using BinaryReader reader = new(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        long start = stream.Position;
        uint magic = reader.ReadUInt32();
        if (magic != FileMagic)
        {
            stream.Position = start;
            return new CrashHistory(bareLogSpec, [new HistoryRound(CrashLog.Load(stream))]);
        }
        int version = reader.ReadInt32();
        if (version is not (2 or 3 or 4 or 5 or FileVersion))
        {
            throw new InvalidDataException($"crash history version {version}: this wb reads version {FileVersion}");
        }
        CacheMode mode = (CacheMode)reader.ReadInt32();
        Workload workload = (Workload)reader.ReadInt32();
        int seed = reader.ReadInt32();
        int ops = reader.ReadInt32();
        string mutant = reader.ReadString();
        string table = reader.ReadString();
        int pool = reader.ReadInt32();
        int writers = reader.ReadInt32();
        bool changesBetweenLives = version >= 3 && reader.ReadBoolean();
        int readPercent = reader.ReadInt32();
        int schedule = reader.ReadInt32();
        int? focus = version >= 4 ? reader.ReadInt32() : null;
        PersistenceDomain persistence = version >= 5 ? (PersistenceDomain)reader.ReadInt32() : PersistenceDomain.Adr;
        if (!Enum.IsDefined(persistence))
        {
            throw new InvalidDataException($"crash history: persistence domain {(int)persistence}");
        }
        Targets.TargetIdentity recordedOn = version >= 5 ? ReadTarget(reader) : Targets.TargetIdentity.Writeboost;
        bool surveysLastRound = version >= 6 && reader.ReadBoolean();
        (CacheMode _, Configs.CrashConfig config) = Configs.CrashConfig.FromTable(table, pool, writers);
        config = config with { ChangesBetweenLives = changesBetweenLives };
        int count = reader.ReadInt32();
        List<HistoryRound> rounds = [];
        for (int i = 0; i < count; i++)
        {
            int point = reader.ReadInt32();
            int variant = reader.ReadInt32();
            int length = reader.ReadInt32();
            using MemoryStream log = new(reader.ReadBytes(length));
            rounds.Add(new HistoryRound(CrashLog.Load(log), point, variant));
        }
        CampaignSpec spec = new(mode, workload, seed, ops, long.MaxValue, mutant)
        {
            Config = config,
            Rounds = count,
            Schedules = 1,
            FirstSchedule = schedule,
            FocusOfFirstRound = focus,
            ReadPercent = readPercent,
            Persistence = persistence,
            SurveysLastRound = surveysLastRound,
        };
        return new CrashHistory(spec, rounds) { RecordedOn = recordedOn };
    }

    private static Targets.TargetIdentity ReadTarget(BinaryReader reader)
    {
        string type = reader.ReadString();
        string assembly = reader.ReadString();
        string version = reader.ReadString();
        string name = reader.ReadString();
        string location = reader.ReadString();
        int count = reader.ReadInt32();
        if (count is < 0 or > 1024)
        {
            throw new InvalidDataException($"crash history: {count} target arguments");
        }
        string[] arguments = new string[count];
        for (int i = 0; i < count; i++)
        {
            arguments[i] = reader.ReadString();
        }
        return new Targets.TargetIdentity(type, assembly, version, name, arguments, location);
    }
}
