using System.Globalization;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.States;
using Writeboost.CrashTest.Workloads;

namespace Writeboost.CrashTest.Minimise;

/// <summary>Writes a minimised failure as lines a person can follow.</summary>
internal static class Story
{
    /// <summary>The lost pmem lines a story names one by one (the first, in address order).</summary>
    private const int MaxLostLinesTold = 4;

    /// <summary>A live read that returned what the oracle forbids: the operations up to it, and the verdict.</summary>
    public static IReadOnlyList<string> TellLiveRead(CrashHistory history, int readDone, string problem)
    {
        List<string> lines = [.. Operations(history, readDone + 1, out List<Dictionary<int, int>> opsOfRounds)];
        Dictionary<int, int> ops = opsOfRounds[^1];
        CrashEvent done = history.Rounds[^1].Log.Events[readDone];
        string op = ops.TryGetValue(done.Ref, out int number) ? $"#{number}" : $"the read issued at event {done.Ref}";
        lines.Add($"No crash is needed: {op} read, while the device ran, what the oracle forbids.");
        lines.Add($"Verdict: {problem}.");
        return lines;
    }

    public static IReadOnlyList<string> Tell(CrashHistory history, Campaign.SurveyedState state)
    {
        List<string> lines = [.. Operations(history, state.Point, out List<Dictionary<int, int>> opsOfRounds)];
        Dictionary<int, int> opOfIssue = opsOfRounds[^1];
        HistoryRound final = history.Rounds[^1];
        IReadOnlyList<CrashEvent> log = final.Log.Events;
        if (state.Kind == StateKind.DuringRecovery && history.Rounds.Count > 1)
        {
            lines.Add($"The power fails again at event {state.Point} of round {history.Rounds.Count}, inside the recovery of the state above.");
        }
        else
        {
            lines.Add($"The power fails at event {state.Point} of round {history.Rounds.Count} ({Where(log, state.Point, opOfIssue)}).");
        }
        if (state.Fates.Length == 0 && state.Lines.Pending == 0)
        {
            lines.Add("  Nothing was in flight: every device holds exactly what it had made durable.");
        }
        foreach (WriteFate fate in state.Fates)
        {
            string what = fate.KeptSectors == 0 ? "lost" : fate.KeptSectors == fate.Sectors ? "kept" : $"torn: {fate.KeptSectors} of {fate.Sectors} sectors landed";
            lines.Add($"  {DeviceName(fate.Device)}: the write of {Sectors(fate.OffsetBytes, fate.LengthBytes)} (event {fate.Issue}), not yet durable, is {what}.");
        }
        if (state.Lines.Pending > 0)
        {
            lines.Add($"  pmem: {state.Lines.Pending} cache line(s) had stores not yet fenced: {state.Lines.None} kept none of them, {state.Lines.Partial} a partial prefix, {state.Lines.All} all.");
            foreach (string lost in state.LostPmem.Take(MaxLostLinesTold))
            {
                lines.Add($"    {lost}");
            }
            if (state.LostPmem.Count > MaxLostLinesTold)
            {
                lines.Add($"    and {state.LostPmem.Count - MaxLostLinesTold} more line(s).");
            }
        }
        if (state.RecoveryStory is { } recovery)
        {
            lines.Add($"Recovery: {recovery}.");
        }
        // A crash during recovery is judged by the round before's oracle: its verdict names that round's events.
        int judged = Math.Clamp(state.JudgedRound, 1, history.Rounds.Count) - 1;
        lines.Add($"Verdict: {Verdict(history, state, history.Rounds[judged].Log.Events, opsOfRounds[judged])}");
        return lines;
    }

    /// <summary>The header and every round's numbered operations, the last round's up to event <paramref name="end"/>; returns each round's numbering.</summary>
    private static List<string> Operations(CrashHistory history, int end, out List<Dictionary<int, int>> opsOfRounds)
    {
        CampaignSpec spec = history.Spec;
        List<string> lines = [];
        string seeded = spec.Mutant == "none" ? "" : $", with the seeded bug {spec.Mutant}";
        lines.Add($"{spec.ResolvedTarget.Name}{seeded}; the device starts blank.");
        int opBase = 0;
        opsOfRounds = [];
        for (int r = 0; r < history.Rounds.Count; r++)
        {
            HistoryRound round = history.Rounds[r];
            bool last = r == history.Rounds.Count - 1;
            int cut = last ? end : round.CarriedPoint;
            IReadOnlyList<CrashEvent> events = round.Log.Events;
            if (r > 0)
            {
                lines.Add($"Round {r + 1}: the device recovers that state and goes on.");
            }
            Dictionary<int, int> opOfIssue = NumberOps(events, opBase);
            opsOfRounds.Add(opOfIssue);
            foreach ((int issue, int number) in opOfIssue.OrderBy(o => o.Value))
            {
                CrashEvent e = events[issue];
                UserOp op = e.Kind switch
                {
                    EventKind.UserFlush => new UserOp(UserOpKind.Flush),
                    EventKind.UserRead => new UserOp(UserOpKind.Read, e.OffsetBytes, (int)e.LengthBytes),
                    _ => new UserOp(UserOpKind.Write, e.OffsetBytes, (int)e.LengthBytes, e.Data, e.Fua),
                };
                int done = DoneAt(events, issue);
                string fate = issue >= cut ? "issued after the crash (never happened)"
                    : done >= 0 && done < cut ? (e.Kind == EventKind.UserRead ? "returned" : "acknowledged")
                    : "in flight at the crash";
                lines.Add($"  #{number} {op}: {fate}");
            }
            opBase += opOfIssue.Count;
            if (!last)
            {
                lines.Add($"  The power fails at event {round.CarriedPoint} of round {r + 1} ({Where(events, round.CarriedPoint, opOfIssue)}).");
            }
        }
        return lines;
    }

    /// <summary>The user operations of one log, numbered from <paramref name="first"/> + 1, by the event that issued each.</summary>
    private static Dictionary<int, int> NumberOps(IReadOnlyList<CrashEvent> events, int first)
    {
        Dictionary<int, int> numbers = [];
        for (int i = 0; i < events.Count; i++)
        {
            if (events[i].Kind is EventKind.UserWrite or EventKind.UserFlush or EventKind.UserRead)
            {
                numbers[i] = first + numbers.Count + 1;
            }
        }
        return numbers;
    }

    private static int DoneAt(IReadOnlyList<CrashEvent> events, int issue)
    {
        for (int i = issue + 1; i < events.Count; i++)
        {
            if (events[i].Ref == issue && events[i].Kind is EventKind.UserWriteAck or EventKind.UserFlushAck or EventKind.UserReadDone)
            {
                return i;
            }
        }
        return -1;
    }

    private static string Where(IReadOnlyList<CrashEvent> events, int point, Dictionary<int, int> ops)
    {
        for (int i = Math.Min(point, events.Count) - 1; i >= 0; i--)
        {
            CrashEvent e = events[i];
            if (e.Device != DeviceId.User)
            {
                continue;
            }
            bool done = e.Kind is EventKind.UserWriteAck or EventKind.UserFlushAck or EventKind.UserReadDone;
            int issue = done ? e.Ref : i;
            string op = ops.TryGetValue(issue, out int number) ? $"#{number}" : $"the request issued at event {issue}";
            return done ? $"after {op} completed" : $"while {op} was in flight";
        }
        return "before any user request";
    }

    private static string Verdict(CrashHistory history, Campaign.SurveyedState state, IReadOnlyList<CrashEvent> log, Dictionary<int, int> ops)
    {
        string Op(int issue) => ops.TryGetValue(issue, out int number) ? $"#{number}" : $"the write issued at event {issue}";
        if (state.Verdict is not { } v || state.Sector < 0)
        {
            return state.Problem + ".";
        }
        string held = v.HeldIssue switch
        {
            null => EarlierRoundsWrite(history, state.Sector, state.SectorContent) ?? "data no operation wrote there",
            -1 => history.Rounds.Count == 1 ? "its content from before the first operation" : "what it held when this round began",
            int issue => $"{Op(issue)}'s data",
        };
        if (v.LastDurableIssue < 0)
        {
            string owed = history.Rounds.Count == 1 ? "its content from before the first operation" : "what recovery gave back when this round began";
            return $"sector {state.Sector} should read as {owed} (nothing durable was written to it since), or as a later write; it holds {held}.";
        }
        string why = v.DurableByFua
            ? "acknowledged with FUA"
            : log[v.DurableAt].Kind == EventKind.UserFlushAck ? $"acknowledged, then a flush ({Op(log[v.DurableAt].Ref)}) was acknowledged" : "durable";
        return $"sector {state.Sector} should hold {Op(v.LastDurableIssue)}'s data ({why}: nothing acknowledged may be lost) or a later write's; it holds {held}.";
    }

    /// <summary>A write of an earlier round whose data the sector holds: a value that round's crash had taken back.</summary>
    private static string? EarlierRoundsWrite(CrashHistory history, long sector, byte[]? content)
    {
        if (content is null)
        {
            return null;
        }
        int number = 0;
        (int Number, int Round)? found = null;
        for (int r = 0; r < history.Rounds.Count - 1; r++)
        {
            foreach (CrashEvent e in history.Rounds[r].Log.Events)
            {
                if (e.Kind is EventKind.UserWrite or EventKind.UserFlush or EventKind.UserRead)
                {
                    number++;
                    if (e.Kind == EventKind.UserWrite && sector * 512 >= e.OffsetBytes && sector * 512 < e.OffsetBytes + e.LengthBytes
                        && e.Data.AsSpan((int)(sector * 512 - e.OffsetBytes), 512).SequenceEqual(content))
                    {
                        found = (number, r + 1);
                    }
                }
            }
        }
        return found is { } write ? $"#{write.Number}'s data from round {write.Round}, which that round's recovery had not given back: a stale value come back" : null;
    }

    private static string DeviceName(DeviceId device) => device switch
    {
        DeviceId.Backing => "backing store",
        DeviceId.Cache => "cache device",
        _ => "pmem (block backend)",
    };

    /// <summary>A device write in the story's unit, sectors as the operations are told: "sectors 2080-2103", with bytes in brackets where it is not sector-sized.</summary>
    private static string Sectors(long offsetBytes, long lengthBytes)
    {
        long first = offsetBytes / 512;
        long last = (offsetBytes + Math.Max(1, lengthBytes) - 1) / 512;
        string sectors = first == last ? $"sector {first}" : $"sectors {first}-{last}";
        return offsetBytes % 512 == 0 && lengthBytes % 512 == 0 ? sectors : $"{sectors} ({lengthBytes} bytes at byte {offsetBytes})";
    }
}
