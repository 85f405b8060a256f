using System.Diagnostics;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.States;
using Writeboost.CrashTest.Workloads;

namespace Writeboost.CrashTest.Minimise;

/// <summary>A failure shrunk to what a person can follow, and the one saved history that replays it.</summary>
/// <param name="Ops">The user operations of each round of the shrunk history, in order.</param>
/// <param name="History">The shrunk history (save it; <c>wb crashtest --replay</c> checks its state again).</param>
/// <param name="Story">The numbered operations, the crash, what each device kept, lost or tore, what recovery did, and the verdict.</param>
public sealed record MinimisedFailure(
    IReadOnlyList<IReadOnlyList<UserOp>> Ops,
    CrashHistory History,
    int CrashPoint,
    int Variant,
    string Violation,
    int OriginalOps,
    int Trials,
    IReadOnlyList<string> Story)
{
    public int OpCount => Ops.Sum(r => r.Count);

    /// <summary>
    /// The violation the minimiser was given, when the one shrunk is of another kind (null: it is the given one):
    /// another failure the same campaign finds, whose script fails every run, where no script of the given kind's
    /// catches did, or where the given kind's shrinking ended longer.
    /// </summary>
    public string? InsteadOf { get; init; }
}

/// <summary>
/// Shrinks a failing campaign to a reproducer a person can read (<c>wb crashtest --minimise</c>):
/// <list type="number">
/// <item>the failing history's user operations become a script, cut at the crash (and each earlier round at the
/// state the next one started from);</item>
/// <item>delta debugging removes operations while a campaign run on the script — the failing schedule, its
/// rounds, every crash point of its small logs — still fails with the same kind of violation; a candidate that
/// passes is re-run twice before it counts as passing (the device's own threads make one run's interleaving
/// luck, the schedule's perturbation makes it likely, neither makes it certain). A catch whose script fails only
/// now and then (or never) is swapped for another of the same kind: the campaign that caught it, run again, records
/// other interleavings, and a catch whose script fails every run shrinks fast and surely. A shrinking that ends
/// long is tried again on another path (from the script's end, then from another catch). When no catch of the
/// kind reproduces every run (a symptom that needs an interleaving only a loaded machine gives), a failure of
/// another kind the same campaign finds is shrunk instead if its script does; the same other kind is the second
/// path when the first shrinking ended long, and the shortest of either kind stands. A result of another kind
/// says so (<see cref="MinimisedFailure.InsteadOf"/>): a short reproducer that replays beats none or a long one;</item>
/// <item>of the last round's failing states, the simplest is kept: fewest writes in flight, fewest torn, fewest
/// pmem lines at a partial prefix;</item>
/// <item>a story is written from the oracle's verdict on the first wrong sector.</item>
/// </list>
/// </summary>
public static class Minimiser
{
    private const int PassRetries = 2;
    /// <summary>The odds a candidate that fails at the script's rate is taken for passing (its runs all passed).</summary>
    private const double MissedFailure = 0.05;
    /// <summary>Retries when the failure is a race: the cut script needed more than one run to fail.</summary>
    private const int RaceRetries = 7;
    /// <summary>States per script operation: enough that a script's few points are all checked, six states each.</summary>
    private const int StatesPerOp = 100;
    private const int StatesPerPoint = 16;
    /// <summary>A story a person follows at a glance; a longer one is worth more runs to shorten.</summary>
    private const int ReadableOps = 12;
    /// <summary>The same for a story of several lives: the first must leave the debris the next one fails on (a lap of the ring, two segments in flight).</summary>
    private const int ReadableOpsOfLives = 16;
    /// <summary>How many times a script still longer than readable is shrunk from the start again (within the time budget).</summary>
    private const int MaxShrinks = 3;
    /// <summary>Up to this many chunks, each is tried alone before any is removed.</summary>
    private const int MaxChunksAlone = 8;
    /// <summary>Beyond this many operations a script's budget stops growing: the first, long candidates are where the time goes.</summary>
    private const int MaxOpsBudgeted = 40;
    /// <summary>How many more catches of the same kind are sought when the given one's script does not fail every run.</summary>
    private const int Recatches = 3;
    /// <summary>The states a campaign run again for another catch checks at least (a hunt's share of its budget may be a few thousand: enough to catch once, not twice).</summary>
    private const long RecatchStates = 20_000;

    /// <summary>Shrinks <paramref name="failed"/>'s first violation; null when it has none (or its history is gone).</summary>
    /// <param name="timeBudget">Stops removing operations after this long and keeps what it has (default 3 minutes).</param>
    public static MinimisedFailure? Minimise(CampaignResult failed, TimeSpan? timeBudget = null, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(failed);
        if (failed.FailingHistory is not { } history || failed.FirstViolationSite is not { } site || failed.FirstViolation is not { } violation)
        {
            return null;
        }
        ViolationClass wanted = ViolationClass.Of(violation);
        // The kind given: a failure of another kind is shrunk only when none of this one reproduces every run.
        ViolationClass given = wanted;
        Stopwatch clock = Stopwatch.StartNew();
        TimeSpan budget = timeBudget ?? TimeSpan.FromMinutes(3);
        int trials = 0;
        // Of the candidates that failed: how many runs it took them (their rate of failing a run, the script's).
        int failures = 0;
        int runsToFail = 0;
        CampaignResult? last = null;
        // The catch being shrunk (the one given, or another of the same kind when that one's script reproduces it
        // only now and then) and what the script runs take from it.
        bool crashesRecoveries = false;
        IReadOnlyList<IReadOnlyCollection<string>> carriedDebris = [];
        int failingSchedule = site.Schedule;
        int original = 0;

        void Adopt(CrashHistory caught, ViolationSite at)
        {
            (history, site) = (caught, at);
            // A failure found by crashing a recovery needs those crashes; any other is shrunk faster without them. Only
            // the script's last round (the failing one: the script is cut at the crash) is checked; earlier ones are carried.
            crashesRecoveries = at.Kind == StateKind.DuringRecovery;
            carriedDebris = [.. caught.Rounds.Select(r => r.CarriedDebris)];
            failingSchedule = at.Schedule;
            original = caught.Rounds.Sum(r => UserOp.FromLog(r.Log).Count);
            (failures, runsToFail) = (0, 0);
        }
        Adopt(history, site);

        // Shrinks while the result still fails the same way; the script's round structure is kept. A candidate is
        // run 1 + retries times before it counts as passing (by default as many as the script's rate asks).
        bool Fails(List<List<UserOp>> candidate, int? retries = null)
        {
            int tries = retries ?? RetriesForRate();
            for (int attempt = 0; attempt <= tries; attempt++)
            {
                trials++;
                // The schedule the last failing run had first (at the start the history's own); a retry takes the
                // next perturbation of the history's (after an unperturbed schedule 0: 1, 2, ...), skipping that one.
                int schedule = attempt == 0 ? failingSchedule : site.Schedule + attempt - (site.Schedule + attempt <= failingSchedule ? 1 : 0);
                CampaignResult result = Campaign.Run(ScriptSpec(history.Spec, schedule, candidate) with { CrashesRecoveries = crashesRecoveries, FirstRoundChecked = candidate.Count, CarriedDebrisOfRounds = carriedDebris }, stopAtFirst: true, null, wanted.Matches);
                if (result.Violations > 0)
                {
                    failingSchedule = schedule;
                    last = result;
                    failures++;
                    runsToFail += attempt + 1;
                    return true;
                }
            }
            return false;
        }

        // Enough runs that a script failing as often as the failing ones did shows it with 95 % odds: a failure
        // every run reproduces is not a race, and two more runs make a pass mean something; one that needs several
        // runs is, and each candidate gets as many as the failing ones needed (up to seven retries), kept up as they come.
        int RetriesForRate()
        {
            double rate = failures == 0 ? 0.5 : (double)failures / runsToFail;
            return rate >= 1 ? PassRetries : Math.Clamp((int)Math.Ceiling(Math.Log(MissedFailure) / Math.Log(1 - rate)) - 1, PassRetries, RaceRetries);
        }

        // The catch's script (cut at the crash, else whole) if a run of it fails the same way within the race's
        // chances; steady when it failed its first run and fails the next one too.
        (List<List<UserOp>>? Script, bool Steady) Reproduce()
        {
            foreach (List<List<UserOp>> candidate in new[] { CutAtTheCrash(history, site), [.. history.Rounds.Select(r => UserOp.FromLog(r.Log).ToList())] })
            {
                if (Fails(candidate, RaceRetries))
                {
                    CampaignResult failedRun = last!;
                    bool steady = runsToFail == 1 && Fails(candidate, 0);
                    // A second run that passed counts in the script's rate: it failed one run of two.
                    runsToFail += steady || runsToFail > 1 ? 0 : 1;
                    last = failedRun;
                    return (candidate, steady);
                }
            }
            return (null, false);
        }

        List<List<UserOp>>? script = null;
        bool steady = false;
        // Runs the campaign that caught the failure again: it records other interleavings, and its first catch of the
        // same kind is taken when a script reproduces it (every run, when steady is asked). False: the one in hand stays.
        // anotherKind: a catch of any kind but the given one, taken only when its script fails every run.
        bool TakeAnotherCatch(bool steadyOnly, bool anotherKind = false)
        {
            // What Adopt does not derive from the catch: its runs so far.
            (CrashHistory History, ViolationSite Site, CampaignResult? Last, int Failures, int Runs, int Schedule, ViolationClass Wanted) kept =
                (history, site, last, failures, runsToFail, failingSchedule, wanted);
            // The whole campaign, every schedule of it: a catch on an unperturbed schedule may be a rare interleaving,
            // which a perturbed one makes likely (and its script's runs, perturbed as it was, likely again).
            Func<string, bool> counts = anotherKind ? problem => !given.Matches(problem) : wanted.Matches;
            CampaignResult other = Campaign.Run(failed.Spec with { MaxStates = Math.Max(failed.Spec.MaxStates, RecatchStates) }, stopAtFirst: true, null, counts);
            if (other.FailingHistory is not { } otherHistory || other.FirstViolationSite is not { } otherSite || other.FirstViolation is not { } otherViolation)
            {
                progress?.Invoke($"minimising: the campaign run again caught nothing of {(anotherKind ? "another kind" : "its kind")} ({other.StatesChecked} states)");
                return false;
            }
            wanted = ViolationClass.Of(otherViolation);
            Adopt(otherHistory, otherSite);
            (List<List<UserOp>>? otherScript, bool otherSteady) = Reproduce();
            if (otherScript is not null && (!steadyOnly || otherSteady))
            {
                (script, steady) = (otherScript, otherSteady);
                return true;
            }
            progress?.Invoke(anotherKind
                ? $"minimising: the campaign run again caught another kind ({wanted.Kind}), but its script does not reproduce it every run either"
                : otherScript is null ? "minimising: the campaign run again caught it, but no script of that catch reproduces it either" : "minimising: the campaign run again caught it, but that catch's script does not reproduce it every run either");
            wanted = kept.Wanted;
            Adopt(kept.History, kept.Site);
            (last, failures, runsToFail, failingSchedule) = (kept.Last, kept.Failures, kept.Runs, kept.Schedule);
            return false;
        }

        (script, steady) = Reproduce();
        // A catch the script shows only now and then (or not at all: the device's threads are not the history's)
        // is a poor start: each removal needs many runs to judge, and a lucky one misleads. Another catch of the
        // same kind may reproduce every run. (A race between users is left alone: no script of one request at a
        // time shows it.)
        for (int again = 0; !steady && again < Recatches && ConcurrentUsers(history) is null && clock.Elapsed < budget / 3; again++)
        {
            bool hadScript = script is not null;
            if (TakeAnotherCatch(steadyOnly: hadScript))
            {
                progress?.Invoke(hadScript
                    ? "minimising: the failure reproduces from its script only now and then; another catch of its kind by the same campaign does every run: shrinking that one"
                    : "minimising: the failure does not reproduce from its script; another catch of its kind by the same campaign does: shrinking that one");
            }
        }
        // No catch of its kind reproduces every run: the symptom needs an interleaving the device's threads give only
        // now and then (a loaded machine's). The bug behind it may show another way that a script does reproduce:
        // shrinking that one gives a story that replays, where this kind gives none or a long one. Tried even late
        // when there is no script at all (nothing else would be returned).
        if (!steady && ConcurrentUsers(history) is null && (script is null || clock.Elapsed < budget / 2) && TakeAnotherCatch(steadyOnly: true, anotherKind: true))
        {
            progress?.Invoke($"minimising: no catch of its kind ({given.Kind}) reproduces from its script every run; a failure of another kind the same campaign finds ({wanted.Kind}) does: shrinking that one instead");
        }
        if (script is null)
        {
            progress?.Invoke(ConcurrentUsers(history) is { } together
                ? $"minimising: the failure needs requests in flight together ({together}); a script replays them one at a time, so it does not reproduce from one: it is not shrunk (the saved history replays it exactly)"
                : "minimising: the failure does not reproduce from its script: it is not shrunk");
            return null;
        }
        // One shrinking of a script, until the clock reads until (last: the run that failed with what it returns).
        // From the end: the chunks are tried last first (another path to a smaller script than from the start).
        List<(int Round, UserOp Op)> Shrink(List<(int Round, UserOp Op)> flat, TimeSpan until, bool fromTheEnd)
        {
            // Delta debugging by halving chunk sizes: each size sweeps the script once, a removed chunk's neighbours
            // tried in its place; at size 1 the sweeps repeat until no single operation can go (1-minimal). Unlike
            // restarting at big chunks after every removal, a chunk that could not go is not tried again at its size.
            for (int size = Math.Max(1, flat.Count / 2); clock.Elapsed < until && flat.Count >= 2;)
            {
                bool removed = false;
                int chunks = (flat.Count + size - 1) / size;
                // While the chunks are few, each alone first: a failure that needs only some of the script's operations
                // is often in one part of it (a short run near the crash), and removing the rest a chunk at a time can
                // end in a longer script that only fails whole (one whose every removal moves the ring's layout).
                // These few candidates cut the most, so each gets the race's chances: one missed leaves the long way.
                bool triedAlone = size > 1 && chunks <= MaxChunksAlone;
                if (triedAlone)
                {
                    foreach (int start in ChunkStarts(flat.Count, size, fromTheEnd))
                    {
                        if (clock.Elapsed >= until)
                        {
                            break;
                        }
                        List<(int, UserOp)> alone = [.. flat.Skip(start).Take(size)];
                        if (alone.Count < flat.Count && Fails(Unflatten(alone, script.Count), RaceRetries))
                        {
                            flat = alone;
                            removed = true;
                            progress?.Invoke($"minimising: {flat.Count} operations ({trials} runs)");
                            break;
                        }
                    }
                    if (removed)
                    {
                        size = Math.Max(1, flat.Count / 2);
                        continue;
                    }
                }
                // Of two chunks, removing one is keeping the other: tried alone already. From the start, a removal
                // brings the next chunk to where it was; from the end, the chunks before it stay where they are.
                for (int start = fromTheEnd ? (flat.Count - 1) / size * size : 0; !(triedAlone && chunks == 2) && start >= 0 && start < flat.Count && flat.Count >= 2 && clock.Elapsed < until;)
                {
                    List<(int, UserOp)> candidate = [.. flat.Take(start), .. flat.Skip(start + size)];
                    bool fails = Fails(Unflatten(candidate, script.Count));
                    if (fails)
                    {
                        flat = candidate;
                        removed = true;
                        progress?.Invoke($"minimising: {flat.Count} operations ({trials} runs)");
                    }
                    start = fromTheEnd ? start - size : fails ? start : start + size;
                }
                if (size == 1 && !removed)
                {
                    break; // 1-minimal: no single operation can go
                }
                size = Math.Max(1, Math.Min(size / 2, flat.Count / 2));
            }
            if (RetriesForRate() < RaceRetries && flat.Count > ReadableOps)
            {
                // 1-minimal at the script's rate, but still long. A failure that needs a lucky interleaving can
                // pass three runs of a smaller script: each single removal gets the race's chances before it stands.
                for (int i = flat.Count - 1; i >= 0 && flat.Count > 1 && clock.Elapsed < until; i--)
                {
                    List<(int, UserOp)> candidate = [.. flat.Take(i), .. flat.Skip(i + 1)];
                    if (Fails(Unflatten(candidate, script.Count), RaceRetries))
                    {
                        flat = candidate;
                        progress?.Invoke($"minimising: {flat.Count} operations ({trials} runs)");
                    }
                }
            }
            return flat;
        }

        List<(int Round, UserOp Op)> whole = Flatten(script);
        CampaignResult? wholeFailed = last;
        List<(int Round, UserOp Op)> shortest = whole;
        CampaignResult? shortestFailed = last;
        int shortestOriginal = original;
        ViolationClass shortestWanted = wanted;
        // A script that fails now may fail only now and then (the device's threads are not the history's): the
        // shrinking can take one lucky run's word for it, and then no removal reproduces, or take a long way (a
        // failure that needs a lap of the ring, where a shorter one needs none), or end where every removal moves
        // the ring's layout. Shrinking again takes another path: from the whole script's end (a failure of another
        // kind, when one reproduces every run), then from another catch of the same kind. Each shrinking gets its
        // share of the budget (the last one what is left) and the shortest result stands.
        int readable = script.Count > 1 ? ReadableOpsOfLives : ReadableOps;
        for (int shrink = 0; shrink < MaxShrinks && clock.Elapsed < budget && (shrink == 0 || shortest.Count > readable); shrink++)
        {
            // The second path, when the first ended long: a failure of another kind the same campaign finds, if its
            // script fails every run (a symptom may need a long script to show where the bug behind it shows another
            // way in a few operations; the shortest of either kind stands). The third: another catch of this kind.
            if (shrink == 1 && wanted == given && ConcurrentUsers(history) is null && TakeAnotherCatch(steadyOnly: true, anotherKind: true))
            {
                progress?.Invoke($"minimising: still {shortest.Count} operations; a failure of another kind the same campaign finds ({wanted.Kind}) reproduces every run: shrinking that one");
                (whole, wholeFailed) = (Flatten(script), last);
            }
            if (shrink == MaxShrinks - 1 && ConcurrentUsers(history) is null && TakeAnotherCatch(steadyOnly: false))
            {
                progress?.Invoke($"minimising: still {shortest.Count} operations; shrinking another catch of its kind by the same campaign");
                (whole, wholeFailed) = (Flatten(script), last);
            }
            last = wholeFailed;
            TimeSpan share = clock.Elapsed + budget / MaxShrinks;
            List<(int Round, UserOp Op)> shrunkOps = Shrink(whole, shrink == MaxShrinks - 1 || share > budget ? budget : share, fromTheEnd: shrink % 2 == 1);
            if (shrink == 0 || shrunkOps.Count < shortest.Count)
            {
                (shortest, shortestFailed, shortestOriginal, shortestWanted) = (shrunkOps, last, original, wanted);
            }
        }
        last = shortestFailed;
        wanted = shortestWanted;
        // The last run that failed was of the script as it now stands: its recorded history is the reproducer (a
        // saved history replays deterministically, whatever the threads did when it was recorded).
        if (last?.FailingHistory is not { } shrunk)
        {
            return null;
        }

        IReadOnlyList<IReadOnlyList<UserOp>> ops = [.. shrunk.Rounds.Select(r => UserOp.FromLog(r.Log))];
        string? insteadOf = wanted == given ? null : violation;
        if (last.FirstViolationSite is { Variant: < 0 } read)
        {
            // A live read: no crash state to simplify; the history itself replays it.
            return new MinimisedFailure(ops, shrunk, read.CrashPoint, -1, last.FirstViolation!, shortestOriginal, trials, Story.TellLiveRead(shrunk, read.CrashPoint, last.FirstViolation!)) { InsteadOf = insteadOf };
        }
        // The simplest failing state of the shrunk history's last round, of the same kind of violation.
        List<Campaign.SurveyedState> states = Campaign.SurveyLastRound(shrunk with { Spec = shrunk.Spec with { MaxStates = long.MaxValue } }, StatesPerPoint, wanted.Matches);
        if (states.Count == 0)
        {
            progress?.Invoke("minimising: no state of the shrunk history's last round fails the same way: it is not shrunk");
            return null;
        }
        Campaign.SurveyedState simplest = states.OrderBy(s => s.Complexity).ThenBy(s => s.Point).ThenBy(s => s.Variant).First();
        IReadOnlyList<string> story = Story.Tell(shrunk, simplest);
        return new MinimisedFailure(ops, shrunk, simplest.Point, simplest.Variant, simplest.Problem, shortestOriginal, trials, story) { InsteadOf = insteadOf };
    }

    /// <summary>Where the history's users had requests in flight together (several writer threads), in words; null when one at a time.</summary>
    private static string? ConcurrentUsers(CrashHistory history)
    {
        foreach (HistoryRound round in history.Rounds)
        {
            HashSet<int> pending = [];
            foreach ((CrashEvent e, int index) in round.Log.Events.Select((e, i) => (e, i)))
            {
                switch (e.Kind)
                {
                    case EventKind.UserWrite or EventKind.UserRead or EventKind.UserFlush:
                        if (pending.Count > 0)
                        {
                            return $"event {index} was issued while {pending.Count} other request(s) were";
                        }
                        pending.Add(index);
                        break;
                    case EventKind.UserWriteAck or EventKind.UserReadDone or EventKind.UserFlushAck:
                        pending.Remove(e.Ref);
                        break;
                }
            }
        }
        return null;
    }

    private static CampaignSpec ScriptSpec(CampaignSpec spec, int schedule, List<List<UserOp>> script) => spec with
    {
        Script = [.. script.Select(r => (IReadOnlyList<UserOp>)r)],
        Schedules = 1,
        FirstSchedule = schedule,
        MaxStates = 2_000 + StatesPerOp * Math.Min(script.Sum(r => r.Count), MaxOpsBudgeted),
        Shard = 0,
        Shards = 1,
    };

    /// <summary>The history's operations up to the crash: the failing round's issued before its crash point, each earlier round's before the state the next started from.</summary>
    private static List<List<UserOp>> CutAtTheCrash(CrashHistory history, ViolationSite site)
    {
        List<List<UserOp>> rounds = [];
        for (int r = 0; r < Math.Min(site.Round, history.Rounds.Count); r++)
        {
            HistoryRound round = history.Rounds[r];
            int cut = r == site.Round - 1 ? site.CrashPoint + 1 : round.CarriedPoint;
            CrashLog prefix = new();
            foreach (CrashEvent e in round.Log.Events.Take(Math.Max(0, cut)))
            {
                prefix.Append(e);
            }
            rounds.Add([.. UserOp.FromLog(prefix)]);
        }
        return rounds;
    }

    /// <summary>Where each chunk of <paramref name="size"/> operations starts, first to last or last to first.</summary>
    private static IEnumerable<int> ChunkStarts(int count, int size, bool fromTheEnd)
    {
        IEnumerable<int> starts = Enumerable.Range(0, (count + size - 1) / size).Select(c => c * size);
        return fromTheEnd ? starts.Reverse() : starts;
    }

    private static List<(int Round, UserOp Op)> Flatten(List<List<UserOp>> script) =>
        [.. script.SelectMany((ops, round) => ops.Select(op => (round, op)))];

    private static List<List<UserOp>> Unflatten(List<(int Round, UserOp Op)> flat, int rounds)
    {
        List<List<UserOp>> script = [.. Enumerable.Range(0, rounds).Select(_ => new List<UserOp>())];
        foreach ((int round, UserOp op) in flat)
        {
            script[round].Add(op);
        }
        return script;
    }
}

/// <summary>The kind of a violation, as the minimiser keeps it: what went wrong, not which sector or event.</summary>
internal readonly record struct ViolationClass(string Kind)
{
    public static ViolationClass Of(string problem)
    {
        string p = problem.StartsWith("round ", StringComparison.Ordinal) && problem.IndexOf(", ", StringComparison.Ordinal) is > 0 and var comma ? problem[(comma + 2)..] : problem;
        p = p.StartsWith("after a crash at event", StringComparison.Ordinal) && p.IndexOf(": ", StringComparison.Ordinal) is > 0 and var colon ? p[(colon + 2)..] : p;
        return new ViolationClass(p switch
        {
            _ when p.Contains("recovery threw", StringComparison.Ordinal) => "recovery threw",
            _ when p.Contains("recovery claimed a loss", StringComparison.Ordinal) => "claimed loss",
            _ when p.Contains("read of the recovered device failed", StringComparison.Ordinal) => "read error",
            _ when p.Contains("a live read", StringComparison.Ordinal) => "live read",
            _ when p.Contains("was never written", StringComparison.Ordinal) => "data nobody wrote",
            _ when p.Contains("holds neither its last durable value", StringComparison.Ordinal) => "lost or older data",
            _ when p.Contains("recovering round", StringComparison.Ordinal) => "recovery of a carried state failed",
            _ => "other",
        });
    }

    public bool Matches(string problem) => Of(problem).Kind == Kind;
}
