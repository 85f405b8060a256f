using Writeboost.CrashTest.Recording;

namespace Writeboost.CrashTest.States;

/// <summary>The crash points of one log that a campaign checks, and the states each gets.</summary>
/// <param name="Candidates">Crash points in the log: every event from the first checked one to the end, but read marks (they change nothing).</param>
/// <param name="Limits">Points that get fewer states than their own count, so the sample's states equal the budget exactly.</param>
internal sealed record CrashPointSample(IReadOnlyList<int> Points, int StatesPerPoint, int Candidates, IReadOnlyDictionary<int, int>? Limits = null)
{
    /// <summary>The states point <paramref name="point"/> gets of its <paramref name="variants"/>.</summary>
    public int StatesAt(int point, int variants) => Limits is not null && Limits.TryGetValue(point, out int limit) ? Math.Min(limit, variants) : variants;
}

/// <summary>
/// Spreads a state budget over the whole log instead of spending it on its start. Points differ in how many
/// states they have (one where nothing is in flight, the budget's share where much is), so the caller says how
/// many each would get at <see cref="MinStatesPerPoint"/>: when the budget covers all of them, every point is
/// checked (with more states each, up to <see cref="MaxStatesPerPoint"/>); otherwise the candidates are cut into
/// as many equal strata as the budget affords on average and one point is drawn from each — every other one the
/// first acknowledgement point of its stratum, where the oracle is strictest. Later rounds of a
/// multi-crash history draw a quarter of their points from the first tenth of the log: the writes right after a
/// recovery are where what it left behind shows. Seeded, so shards and replays choose the same points.
/// <para>A sampled log spends its budget exactly: strata give a point its share on average, but a point where
/// nothing is in flight has one state, so unchosen candidates are added (seeded) until the chosen ones' states
/// reach the budget, and the points with the most states give up what goes over it.</para>
/// </summary>
internal static class CrashPointSampler
{
    public const int MinStatesPerPoint = 6;
    public const int MaxStatesPerPoint = 64;

    /// <param name="statesAt">The states a candidate point has at <see cref="MinStatesPerPoint"/> a point; called once per candidate, in order.</param>
    public static CrashPointSample Choose(IReadOnlyList<CrashEvent> events, int first, long budget, int seed, bool frontLoaded, Func<int, int>? statesAt = null)
    {
        List<int> candidates = [];
        for (int point = first; point <= events.Count; point++)
        {
            if (point == first || events[point - 1].Kind is not (EventKind.UserRead or EventKind.UserReadDone))
            {
                candidates.Add(point);
            }
        }
        int n = candidates.Count;
        if (n == 0)
        {
            return new CrashPointSample([], 0, 0);
        }
        int[] counts = [.. candidates.Select(p => statesAt?.Invoke(p) ?? MinStatesPerPoint)];
        long total = counts.Sum(c => (long)c);
        if (budget >= total)
        {
            // In 128 bits: an unbounded budget (a replay of one state passes long.MaxValue) must give the most, not overflow to the least.
            return new CrashPointSample(candidates, (int)Int128.Clamp((Int128)MinStatesPerPoint * budget / Math.Max(1, total), MinStatesPerPoint, MaxStatesPerPoint), n);
        }
        int m = (int)Math.Clamp(budget * n / Math.Max(1, total), 1, n);
        Random random = new(StateSeed.Of(seed, n, 0x5A3));
        SortedSet<int> chosen = [];
        if (frontLoaded)
        {
            int front = Math.Max(1, n / 10);
            Stratify(events, candidates[..front], Math.Min(front, Math.Max(1, m / 4)), random, chosen);
        }
        Stratify(events, candidates, m - chosen.Count, random, chosen);
        return TopUp(candidates, counts, chosen, budget, random, n);
    }

    /// <summary>Adds unchosen candidates until the chosen ones' states reach the budget; the points with the most states give up the excess.</summary>
    private static CrashPointSample TopUp(List<int> candidates, int[] counts, SortedSet<int> chosen, long budget, Random random, int n)
    {
        Dictionary<int, int> countOf = [];
        for (int i = 0; i < candidates.Count; i++)
        {
            countOf[candidates[i]] = counts[i];
        }
        long states = chosen.Sum(p => (long)countOf[p]);
        List<int> unchosen = [.. candidates.Where(p => !chosen.Contains(p)).OrderBy(_ => random.Next())];
        for (int i = 0; states < budget && i < unchosen.Count; i++)
        {
            chosen.Add(unchosen[i]);
            states += countOf[unchosen[i]];
        }
        Dictionary<int, int> limits = [];
        foreach (int point in chosen.OrderByDescending(p => countOf[p]).ThenBy(p => p))
        {
            if (states <= budget)
            {
                break;
            }
            int cut = (int)Math.Min(states - budget, countOf[point] - 1);
            if (cut > 0)
            {
                limits[point] = countOf[point] - cut;
                states -= cut;
            }
        }
        return new CrashPointSample([.. chosen], MinStatesPerPoint, n, limits);
    }

    private static void Stratify(IReadOnlyList<CrashEvent> events, List<int> candidates, int strata, Random random, SortedSet<int> chosen)
    {
        int n = candidates.Count;
        for (int k = 0; k < strata && n > 0; k++)
        {
            int lo = (int)((long)k * n / strata);
            int hi = Math.Max(lo + 1, (int)((long)(k + 1) * n / strata));
            int pick = candidates[random.Next(lo, hi)];
            if (random.Next(2) == 0)
            {
                // Right after an acknowledgement: the acknowledged write must survive every state here.
                for (int i = lo; i < hi; i++)
                {
                    int point = candidates[i];
                    if (point > 0 && events[point - 1].Kind is EventKind.UserWriteAck or EventKind.UserFlushAck)
                    {
                        pick = point;
                        break;
                    }
                }
            }
            chosen.Add(pick);
        }
    }
}
