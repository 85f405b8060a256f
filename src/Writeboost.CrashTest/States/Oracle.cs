using Writeboost.CrashTest.Recording;

namespace Writeboost.CrashTest.States;

/// <summary>
/// What recovery must give back, per 512-byte sector, for a crash at event P (docs/crash-model.md): the value of
/// the last write durable at the writeboost level before P — acknowledged with FUA, or acknowledged and then
/// followed by an acknowledged flush issued after that acknowledgement — or of any later write issued before
/// P; the initial content (zeros, unless given) where nothing durable was ever written. Never an older value,
/// never garbage. Without a crash (<see cref="CheckLive"/>) a read must give the last acknowledged write, or a
/// later one not (yet, or ever: it failed) acknowledged.
/// </summary>
internal sealed class Oracle
{
    private const int SectorBytes = 512;
    private readonly Dictionary<long, List<Entry>> _bySector = [];
    private readonly byte[]? _initial;
    private readonly List<int> _acknowledgementPoints = [];

    /// <summary>The crash points right after each acknowledgement of a write or flush.</summary>
    public IReadOnlyList<int> AcknowledgementPoints => _acknowledgementPoints;

    private readonly record struct Entry(int Issue, int AckAt, int DurableAt, byte[] Data, int DataOffset);

    /// <param name="initial">What the device read before the first event; null: zeros.</param>
    public Oracle(IReadOnlyList<CrashEvent> events, byte[]? initial = null)
    {
        _initial = initial;
        Dictionary<int, int> ackOf = [];
        List<(int Issue, int Ack)> flushes = [];
        Dictionary<int, int> flushIssue = [];
        for (int i = 0; i < events.Count; i++)
        {
            CrashEvent e = events[i];
            switch (e.Kind)
            {
                case EventKind.UserWriteAck:
                    ackOf[e.Ref] = i;
                    _acknowledgementPoints.Add(i + 1);
                    break;
                case EventKind.UserFlushAck:
                    flushes.Add((e.Ref, i));
                    _acknowledgementPoints.Add(i + 1);
                    break;
                default:
                    break;
            }
        }
        for (int i = 0; i < events.Count; i++)
        {
            CrashEvent e = events[i];
            if (e.Kind != EventKind.UserWrite)
            {
                continue;
            }
            int durableAt = int.MaxValue;
            int ackAt = int.MaxValue;
            if (ackOf.TryGetValue(i, out int ack))
            {
                ackAt = ack;
                if (e.Fua)
                {
                    durableAt = ack;
                }
                else
                {
                    foreach ((int issue, int flushAck) in flushes)
                    {
                        if (issue > ack)
                        {
                            durableAt = flushAck;
                            break;
                        }
                    }
                }
            }
            for (int s = 0; s < e.LengthBytes / SectorBytes; s++)
            {
                long sector = e.OffsetBytes / SectorBytes + s;
                if (!_bySector.TryGetValue(sector, out List<Entry>? list))
                {
                    _bySector[sector] = list = [];
                }
                list.Add(new Entry(i, ackAt, durableAt, e.Data!, s * SectorBytes));
            }
        }
    }

    /// <summary>Null when every sector of <paramref name="device"/> is allowed for a crash at <paramref name="crashPoint"/>; else what is wrong.</summary>
    public string? Check(int crashPoint, ReadOnlySpan<byte> device) => Check(crashPoint, device, out _);

    /// <inheritdoc cref="Check(int, ReadOnlySpan{byte})"/>
    /// <param name="failingSector">The first sector that is wrong (-1 when none).</param>
    public string? Check(int crashPoint, ReadOnlySpan<byte> device, out long failingSector)
    {
        failingSector = -1;
        for (long sector = 0; sector < device.Length / SectorBytes; sector++)
        {
            ReadOnlySpan<byte> actual = device.Slice((int)(sector * SectorBytes), SectorBytes);
            ReadOnlySpan<byte> initial = Initial(sector);
            if (!_bySector.TryGetValue(sector, out List<Entry>? writes))
            {
                if (!actual.SequenceEqual(initial))
                {
                    failingSector = sector;
                    return $"sector {sector} was never written but does not read as it was before the first event";
                }
                continue;
            }
            int lastDurable = LastBefore(writes, crashPoint, durable: true);
            if (!Allowed(writes, lastDurable, crashPoint, actual, initial))
            {
                string durable = lastDurable < 0 ? "its initial content (nothing durable yet)" : $"the write issued at event {writes[lastDurable].Issue}";
                failingSector = sector;
                return $"sector {sector} holds neither its last durable value ({durable}) nor a later write issued before event {crashPoint}";
            }
        }
        return null;
    }

    /// <summary>
    /// Null when a read of <paramref name="data"/> at <paramref name="offsetBytes"/>, completed at
    /// <paramref name="point"/> on a device that has not crashed, gives for each sector the last write acknowledged
    /// before it or a later one not acknowledged by then (in flight, or failed: a failed write may have landed
    /// in part, per sector); else what is wrong.
    /// </summary>
    public string? CheckLive(int point, long offsetBytes, ReadOnlySpan<byte> data)
    {
        for (int s = 0; s < data.Length / SectorBytes; s++)
        {
            long sector = offsetBytes / SectorBytes + s;
            ReadOnlySpan<byte> actual = data.Slice(s * SectorBytes, SectorBytes);
            ReadOnlySpan<byte> initial = Initial(sector);
            List<Entry> writes = _bySector.TryGetValue(sector, out List<Entry>? list) ? list : [];
            int lastAcked = LastBefore(writes, point, durable: false);
            if (!Allowed(writes, lastAcked, point, actual, initial))
            {
                string expected = lastAcked < 0 ? "its initial content" : $"the write issued at event {writes[lastAcked].Issue}";
                return $"a read of sector {sector} at event {point} gave neither the last acknowledged write ({expected}) nor a later unacknowledged one";
            }
        }
        return null;
    }

    /// <summary>
    /// Null when a read issued at event <paramref name="issuedAt"/> and completed at <paramref name="completedAt"/>
    /// on a running device gave, for each sector, the last write acknowledged before the read was issued or a later
    /// one issued before it completed (in flight meanwhile); else what is wrong. Writes to one sector are never in
    /// flight together in the harness's workloads, so issue order is the order they apply in.
    /// </summary>
    public string? CheckRead(int issuedAt, int completedAt, long offsetBytes, ReadOnlySpan<byte> data)
    {
        for (int s = 0; s < data.Length / SectorBytes; s++)
        {
            long sector = offsetBytes / SectorBytes + s;
            ReadOnlySpan<byte> actual = data.Slice(s * SectorBytes, SectorBytes);
            List<Entry> writes = _bySector.TryGetValue(sector, out List<Entry>? list) ? list : [];
            int lastAcked = LastBefore(writes, issuedAt, durable: false);
            if (!Allowed(writes, lastAcked, completedAt, actual, Initial(sector)))
            {
                string expected = lastAcked < 0 ? "its initial content" : $"the write issued at event {writes[lastAcked].Issue}";
                return $"a live read of sector {sector} (issued at event {issuedAt}, done at {completedAt}) gave neither the last acknowledged write ({expected}) nor a later one in flight";
            }
        }
        return null;
    }

    /// <summary>
    /// The sectors of <paramref name="device"/> that hold an older value than a crash at <paramref name="crashPoint"/>
    /// allows (<see cref="Check(int, ReadOnlySpan{byte})"/>'s rule), leaving out those that read as an error (<paramref name="failed"/>): what
    /// damaged media made the device give back silently.
    /// </summary>
    public List<long> Reverted(int crashPoint, ReadOnlySpan<byte> device, IReadOnlySet<long> failed)
    {
        List<long> reverted = [];
        for (long sector = 0; sector < device.Length / SectorBytes; sector++)
        {
            if (failed.Contains(sector))
            {
                continue;
            }
            ReadOnlySpan<byte> actual = device.Slice((int)(sector * SectorBytes), SectorBytes);
            List<Entry> writes = _bySector.TryGetValue(sector, out List<Entry>? list) ? list : [];
            if (!Allowed(writes, LastBefore(writes, crashPoint, durable: true), crashPoint, actual, Initial(sector)))
            {
                reverted.Add(sector);
            }
        }
        return reverted;
    }

    /// <summary>
    /// Null when every sector of <paramref name="device"/> holds its initial content or the data of some write
    /// of the log (damaged media may lose acknowledged data, but must never produce data nobody wrote there).
    /// Sectors in <paramref name="failed"/> read as an error and hold nothing.
    /// </summary>
    public string? CheckEverWritten(ReadOnlySpan<byte> device, IReadOnlySet<long>? failed = null) =>
        NeverWritten(device, failed, firstOnly: true) is [long sector, ..] ? $"sector {sector} holds data that was never written there" : null;

    /// <summary>The sectors of <paramref name="device"/> (outside <paramref name="failed"/>) that hold neither their initial content nor any write's data.</summary>
    public List<long> NeverWritten(ReadOnlySpan<byte> device, IReadOnlySet<long>? failed = null, bool firstOnly = false)
    {
        List<long> wrong = [];
        for (long sector = 0; sector < device.Length / SectorBytes && !(firstOnly && wrong.Count > 0); sector++)
        {
            if (failed?.Contains(sector) == true)
            {
                continue;
            }
            ReadOnlySpan<byte> actual = device.Slice((int)(sector * SectorBytes), SectorBytes);
            List<Entry> writes = _bySector.TryGetValue(sector, out List<Entry>? list) ? list : [];
            if (!Allowed(writes, -1, int.MaxValue, actual, Initial(sector)))
            {
                wrong.Add(sector);
            }
        }
        return wrong;
    }

    /// <summary>
    /// Whether <paramref name="actual"/> is exactly one bit away from the sector's initial content or from what some
    /// write put there: a flipped bit of the data itself read back as it was damaged, not data from the wrong place.
    /// </summary>
    public bool OneBitFromWritten(long sector, ReadOnlySpan<byte> actual)
    {
        if (BitsApart(actual, Initial(sector)) == 1)
        {
            return true;
        }
        foreach (Entry write in _bySector.TryGetValue(sector, out List<Entry>? list) ? list : [])
        {
            if (BitsApart(actual, write.Data.AsSpan(write.DataOffset, SectorBytes)) == 1)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>How many bits two sectors differ in, counting no further than two.</summary>
    private static int BitsApart(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        int bits = 0;
        for (int i = 0; i < a.Length && bits < 2; i++)
        {
            bits += System.Numerics.BitOperations.PopCount((uint)(a[i] ^ b[i]));
        }
        return bits;
    }

    /// <summary>What the oracle knows of one sector for a crash at one crash point, for a story.</summary>
    /// <param name="LastDurableIssue">The event that issued the last durable write (-1: none; the initial content).</param>
    /// <param name="DurableAt">The event that made it durable: its FUA acknowledgement, or the acknowledgement of the flush after it.</param>
    /// <param name="HeldIssue">The event that issued the write whose data the sector holds (-1: the initial content; null: no write's).</param>
    internal readonly record struct SectorVerdict(int LastDurableIssue, int DurableAt, bool DurableByFua, int? HeldIssue);

    internal SectorVerdict Explain(int crashPoint, long sector, ReadOnlySpan<byte> actual)
    {
        List<Entry> writes = _bySector.TryGetValue(sector, out List<Entry>? list) ? list : [];
        int last = LastBefore(writes, crashPoint, durable: true);
        int? held = actual.SequenceEqual(Initial(sector)) ? -1 : null;
        for (int i = writes.Count - 1; i >= 0 && held is null; i--)
        {
            if (writes[i].Issue < crashPoint && actual.SequenceEqual(writes[i].Data.AsSpan(writes[i].DataOffset, SectorBytes)))
            {
                held = writes[i].Issue;
            }
        }
        return last < 0
            ? new SectorVerdict(-1, -1, false, held)
            : new SectorVerdict(writes[last].Issue, writes[last].DurableAt, writes[last].DurableAt == writes[last].AckAt, held);
    }

    /// <summary>The data of the last write to <paramref name="sector"/> durable before <paramref name="point"/>, or empty when none was.</summary>
    public ReadOnlySpan<byte> LastDurable(int point, long sector)
    {
        if (!_bySector.TryGetValue(sector, out List<Entry>? writes) || LastBefore(writes, point, durable: true) is not (>= 0 and int last))
        {
            return [];
        }
        return writes[last].Data.AsSpan(writes[last].DataOffset, SectorBytes);
    }

    /// <summary>The last write issued before <paramref name="point"/> that was durable (or acknowledged) before it; -1 if none.</summary>
    private static int LastBefore(List<Entry> writes, int point, bool durable)
    {
        int last = -1;
        for (int i = 0; i < writes.Count && writes[i].Issue < point; i++)
        {
            if ((durable ? writes[i].DurableAt : writes[i].AckAt) < point)
            {
                last = i;
            }
        }
        return last;
    }

    /// <summary>The value at <paramref name="last"/> (the initial content when -1), or any write after it issued before <paramref name="point"/>.</summary>
    private static bool Allowed(List<Entry> writes, int last, int point, ReadOnlySpan<byte> actual, ReadOnlySpan<byte> initial)
    {
        if (last < 0 && actual.SequenceEqual(initial))
        {
            return true;
        }
        for (int i = Math.Max(0, last); i < writes.Count && writes[i].Issue < point; i++)
        {
            if (actual.SequenceEqual(writes[i].Data.AsSpan(writes[i].DataOffset, SectorBytes)))
            {
                return true;
            }
        }
        return false;
    }

    private ReadOnlySpan<byte> Initial(long sector) =>
        _initial is null ? ZeroSector : _initial.AsSpan((int)(sector * SectorBytes), SectorBytes);

    private static readonly byte[] ZeroSector = new byte[SectorBytes];
}
