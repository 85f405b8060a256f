using Writeboost.CrashTest.Recording;

namespace Writeboost.CrashTest.States;

/// <summary>
/// What recovery must give back, per 512-byte sector, for a crash at event P (crash-model.md): the value of
/// the last write durable at the writeboost level before P — acknowledged with FUA, or acknowledged and then
/// followed by an acknowledged flush issued after that acknowledgement — or of any later write issued before
/// P; zeros where nothing durable was ever written. Never an older value, never garbage.
/// </summary>
internal sealed class Oracle
{
    private const int SectorBytes = 512;
    private readonly Dictionary<long, List<Entry>> _bySector = [];

    private readonly record struct Entry(int Issue, int DurableAt, byte[] Data, int DataOffset);

    public Oracle(IReadOnlyList<CrashEvent> events)
    {
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
                    break;
                case EventKind.UserFlushAck:
                    flushes.Add((e.Ref, i));
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
            if (ackOf.TryGetValue(i, out int ack))
            {
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
                list.Add(new Entry(i, durableAt, e.Data!, s * SectorBytes));
            }
        }
    }

    /// <summary>Null when every sector of <paramref name="device"/> is allowed for a crash at <paramref name="crashPoint"/>; else what is wrong.</summary>
    public string? Check(int crashPoint, ReadOnlySpan<byte> device)
    {
        ReadOnlySpan<byte> zeros = stackalloc byte[SectorBytes];
        for (long sector = 0; sector < device.Length / SectorBytes; sector++)
        {
            ReadOnlySpan<byte> actual = device.Slice((int)(sector * SectorBytes), SectorBytes);
            if (!_bySector.TryGetValue(sector, out List<Entry>? writes))
            {
                if (!actual.SequenceEqual(zeros))
                {
                    return $"sector {sector} was never written but does not read as zeros";
                }
                continue;
            }
            int lastDurable = -1;
            for (int i = 0; i < writes.Count && writes[i].Issue < crashPoint; i++)
            {
                if (writes[i].DurableAt < crashPoint)
                {
                    lastDurable = i;
                }
            }
            bool allowed = lastDurable < 0 && actual.SequenceEqual(zeros);
            for (int i = Math.Max(0, lastDurable); !allowed && i < writes.Count && writes[i].Issue < crashPoint; i++)
            {
                allowed = actual.SequenceEqual(writes[i].Data.AsSpan(writes[i].DataOffset, SectorBytes));
            }
            if (!allowed)
            {
                string durable = lastDurable < 0 ? "zeros (nothing durable yet)" : $"the write issued at event {writes[lastDurable].Issue}";
                return $"sector {sector} holds neither its last durable value ({durable}) nor a later write issued before event {crashPoint}";
            }
        }
        return null;
    }
}
