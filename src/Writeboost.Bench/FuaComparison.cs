namespace Writeboost.Bench;

/// <summary>One round of <c>wb bench fua --mode both</c>: mode 0, mode 1 and the floor, measured one after the other.</summary>
public sealed record FuaRound(FuaBenchResult Mode0, FuaBenchResult Mode1, PmemBenchResult Floor)
{
    public double IopsRatio => Mode1.Iops / Mode0.Iops;

    /// <summary>Mode 1's FUA p50 over the floor's p50: what the cache adds to the one persist it cannot avoid.</summary>
    public double Mode1P50OverFloor => Mode1.P50Us * 1000 / Math.Max(1, Floor.P50Ns);
}

/// <summary>
/// The rounds of <c>wb bench fua --mode both</c> and what they say together (JSON names per the CLI contract):
/// <c>mode0</c>, <c>mode1</c> and <c>iops_ratio</c> are the median round's, as a single run reported them
/// before; the spreads and the floor are new fields.
/// </summary>
/// <param name="MedianRound">The round whose IOPS ratio is the median (the lower middle one of an even count).</param>
public sealed record FuaComparison(FuaBenchResult Mode0, FuaBenchResult Mode1, double IopsRatio, [property: System.Text.Json.Serialization.JsonIgnore] FuaRound MedianRound)
{
    /// <summary>The floor measured in the median round.</summary>
    public PmemBenchResult Floor => MedianRound.Floor;

    public required int Rounds { get; init; }
    public required Spread IopsRatioSpread { get; init; }
    public required Spread Mode0Iops { get; init; }
    public required Spread Mode1Iops { get; init; }
    public required Spread Mode0P50Us { get; init; }
    public required Spread Mode1P50Us { get; init; }
    public required Spread FloorP50Us { get; init; }
    public required Spread Mode1P50OverFloor { get; init; }

    /// <summary>One line per figure whose rounds disagree by more than <see cref="Spread.WideAbove"/>.</summary>
    public required IReadOnlyList<string> Warnings { get; init; }

    public static FuaComparison Of(IReadOnlyList<FuaRound> rounds)
    {
        FuaRound median = Spread.MedianRound(rounds, r => r.IopsRatio);
        Dictionary<string, Spread> spreads = new()
        {
            ["mode 1 / mode 0 IOPS"] = Spread.Of(rounds.Select(r => r.IopsRatio)),
            ["mode 0 IOPS"] = Spread.Of(rounds.Select(r => r.Mode0.Iops)),
            ["mode 1 IOPS"] = Spread.Of(rounds.Select(r => r.Mode1.Iops)),
            ["mode 0 p50"] = Spread.Of(rounds.Select(r => r.Mode0.P50Us)),
            ["mode 1 p50"] = Spread.Of(rounds.Select(r => r.Mode1.P50Us)),
            ["floor p50"] = Spread.Of(rounds.Select(r => r.Floor.P50Ns / 1000.0)),
            ["mode 1 p50 / floor p50"] = Spread.Of(rounds.Select(r => r.Mode1P50OverFloor)),
        };
        return new FuaComparison(median.Mode0, median.Mode1, median.IopsRatio, median)
        {
            Rounds = rounds.Count,
            IopsRatioSpread = spreads["mode 1 / mode 0 IOPS"],
            Mode0Iops = spreads["mode 0 IOPS"],
            Mode1Iops = spreads["mode 1 IOPS"],
            Mode0P50Us = spreads["mode 0 p50"],
            Mode1P50Us = spreads["mode 1 p50"],
            FloorP50Us = spreads["floor p50"],
            Mode1P50OverFloor = spreads["mode 1 p50 / floor p50"],
            Warnings = Spread.WarningsOf(spreads),
        };
    }
}
