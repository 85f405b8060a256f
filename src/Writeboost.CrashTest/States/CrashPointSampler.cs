using Writeboost.CrashTest.Recording;

namespace Writeboost.CrashTest.States;

/// <summary>The crash points of one log that a campaign checks, and the states each gets.</summary>
/// <param name="Candidates">Crash points in the log: every event from the first checked one to the end, but read marks (they change nothing).</param>
internal sealed record CrashPointSample(IReadOnlyList<int> Points, int StatesPerPoint, int Candidates);

/// <summary>
/// Spreads a state budget over the whole log instead of spending it on its start: when the budget gives every
/// candidate point at least <see cref="MinStatesPerPoint"/> states, every point is checked; otherwise the
/// candidates are cut into as many equal strata as the budget affords and one point is drawn from each — every
/// other one the first acknowledgement point of its stratum, where the oracle is strictest. Later rounds of a
/// multi-crash history draw a quarter of their points from the first tenth of the log: the writes right after a
/// recovery are where what it left behind shows. Seeded, so shards and replays choose the same points.
/// </summary>
internal static class CrashPointSampler
{
    public const int MinStatesPerPoint = 6;
    public const int MaxStatesPerPoint = 64;

    public static CrashPointSample Choose(IReadOnlyList<CrashEvent> events, int first, long budget, int seed, bool frontLoaded)
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
        if (budget >= (long)MinStatesPerPoint * n)
        {
            return new CrashPointSample(candidates, (int)Math.Min(MaxStatesPerPoint, budget / n), n);
        }
        int m = (int)Math.Max(1, budget / MinStatesPerPoint);
        Random random = new(StateSeed.Of(seed, n, 0x5A3));
        SortedSet<int> chosen = [];
        if (frontLoaded)
        {
            int front = Math.Max(1, n / 10);
            Stratify(events, candidates[..front], Math.Min(front, Math.Max(1, m / 4)), random, chosen);
        }
        Stratify(events, candidates, m - chosen.Count, random, chosen);
        return new CrashPointSample([.. chosen], MinStatesPerPoint, n);
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
