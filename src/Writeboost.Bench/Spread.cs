namespace Writeboost.Bench;

/// <summary>
/// One figure over the rounds of a benchmark: its median (the figure reported) and the range the rounds gave.
/// A single round is a figure without a spread, not a figure one can publish on a shared machine.
/// </summary>
public sealed record Spread(double Median, double Min, double Max, int Rounds)
{
    /// <summary>A spread wider than this (max over min, minus one) is warned about: the figure is not stable.</summary>
    public const double WideAbove = 0.25;

    public static Spread Of(IEnumerable<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        double[] sorted = [.. values.Order()];
        if (sorted.Length == 0)
        {
            throw new ArgumentException("a spread of no rounds");
        }
        int middle = sorted.Length / 2;
        double median = sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
        return new Spread(median, sorted[0], sorted[^1], sorted.Length);
    }

    /// <summary>
    /// The round reported whole: the one whose <paramref name="key"/> is the median (the lower middle one of an even
    /// count), so its figures belong together, as a single run's did.
    /// </summary>
    public static T MedianRound<T>(IReadOnlyList<T> rounds, Func<T, double> key)
    {
        ArgumentNullException.ThrowIfNull(rounds);
        if (rounds.Count == 0)
        {
            throw new ArgumentException("no rounds were measured");
        }
        return rounds.OrderBy(key).ElementAt((rounds.Count - 1) / 2);
    }

    /// <summary>The same spread in another unit (each figure times <paramref name="factor"/>).</summary>
    public Spread Times(double factor) => this with { Median = Median * factor, Min = Min * factor, Max = Max * factor };

    /// <summary>Max over min minus one (0: every round gave the same figure).</summary>
    public double Width => Min > 0 ? Max / Min - 1 : 0;

    /// <summary>Whether the rounds disagree by more than <see cref="WideAbove"/>.</summary>
    public bool IsWide => Width > WideAbove;

    /// <summary>"median (min–max)" with <paramref name="format"/> and <paramref name="unit"/> after each; the median alone for one round.</summary>
    public string Format(string format, string unit = "")
    {
        System.Globalization.CultureInfo invariant = System.Globalization.CultureInfo.InvariantCulture;
        string median = Median.ToString(format, invariant) + unit;
        return Rounds == 1 ? median : $"{median} ({Min.ToString(format, invariant)}–{Max.ToString(format, invariant)}{unit})";
    }

    /// <summary>One line for each named figure whose rounds disagree by more than <see cref="WideAbove"/>.</summary>
    public static IReadOnlyList<string> WarningsOf(IReadOnlyDictionary<string, Spread> figures)
    {
        ArgumentNullException.ThrowIfNull(figures);
        System.Globalization.CultureInfo invariant = System.Globalization.CultureInfo.InvariantCulture;
        return [.. figures.Where(f => f.Value.IsWide).Select(f =>
            $"the rounds' {f.Key} spread {f.Value.Width.ToString("P0", invariant)} (wider than {WideAbove.ToString("P0", invariant)}): the machine was busy or the rounds too short; more --rounds or --ops")];
    }
}
