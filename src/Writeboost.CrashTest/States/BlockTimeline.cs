using Writeboost.CrashTest.Recording;

namespace Writeboost.CrashTest.States;

/// <summary>
/// One block device, advanced event by event: the durable image, and the writes issued but not yet durable.
/// The crash model: a write is durable once it completed and a flush begun after its completion has ended,
/// or once a FUA write completed. Anything else issued before the crash may be lost, kept, or torn per sector,
/// in any order.
/// </summary>
internal sealed class BlockTimeline(DeviceId device, byte[] initial)
{
    public BlockTimeline(DeviceId device, long sizeBytes) : this(device, new byte[sizeBytes])
    {
    }

    private readonly SortedDictionary<int, CrashEvent> _notDurable = [];
    private readonly HashSet<int> _completed = [];
    private readonly Dictionary<int, List<int>> _flushSets = [];

    public DeviceId Device => device;
    /// <summary>What the media holds for sure. Mutated as the timeline advances: use it only at the current point.</summary>
    public byte[] Durable { get; } = initial;
    /// <summary>Writes issued before the current point and not durable at it, in issue order.</summary>
    public IReadOnlyCollection<CrashEvent> NotDurable => _notDurable.Values;

    public void Apply(int index, CrashEvent e)
    {
        if (e.Device != device)
        {
            return;
        }
        switch (e.Kind)
        {
            case EventKind.Write:
                _notDurable[index] = e;
                break;
            case EventKind.WriteDone:
                _completed.Add(e.Ref);
                if (e.Fua)
                {
                    MakeDurable(e.Ref);
                }
                break;
            case EventKind.FlushBegin:
                _flushSets[index] = _completed.Where(_notDurable.ContainsKey).Order().ToList();
                break;
            case EventKind.FlushEnd:
                if (_flushSets.Remove(e.Ref, out List<int>? covered))
                {
                    foreach (int write in covered)
                    {
                        MakeDurable(write);
                    }
                }
                break;
            default:
                break;
        }
    }

    private void MakeDurable(int write)
    {
        if (_notDurable.Remove(write, out CrashEvent e))
        {
            e.Data!.CopyTo(Durable, e.OffsetBytes);
            _completed.Remove(write);
        }
    }
}

/// <summary>
/// The pmem region, advanced event by event: the durable image, and per 64-byte line the stores made since the
/// line was last persisted. The crash model (ADR): a line holds some prefix of its pending stores — lines are
/// independent; a store reaches the persistence domain once its line was written back and a fence completed,
/// or whenever the line was evicted on its own earlier.
/// </summary>
internal sealed class PmemTimeline(byte[] initial)
{
    public PmemTimeline(long sizeBytes) : this(new byte[sizeBytes])
    {
    }

    public const int LineBytes = 64;
    private readonly Dictionary<long, List<(int OffsetInLine, byte[] Bytes)>> _pending = [];
    private readonly Dictionary<long, int> _writtenBack = [];

    public byte[] Durable { get; } = initial;
    public IReadOnlyDictionary<long, List<(int OffsetInLine, byte[] Bytes)>> PendingLines => _pending;

    public void Apply(CrashEvent e)
    {
        if (e.Device != DeviceId.Pmem)
        {
            return;
        }
        switch (e.Kind)
        {
            case EventKind.PmemStore:
                long offset = e.OffsetBytes;
                ReadOnlySpan<byte> data = e.Data;
                while (!data.IsEmpty)
                {
                    long line = offset / LineBytes;
                    int inLine = (int)(offset % LineBytes);
                    int n = Math.Min(LineBytes - inLine, data.Length);
                    if (!_pending.TryGetValue(line, out List<(int, byte[])>? stores))
                    {
                        _pending[line] = stores = [];
                    }
                    stores.Add((inLine, data[..n].ToArray()));
                    data = data[n..];
                    offset += n;
                }
                break;
            case EventKind.PmemFlush:
                for (long line = e.OffsetBytes / LineBytes; line <= (e.OffsetBytes + Math.Max(0, e.LengthBytes - 1)) / LineBytes; line++)
                {
                    if (_pending.TryGetValue(line, out List<(int, byte[])>? stores))
                    {
                        _writtenBack[line] = stores.Count;
                    }
                }
                break;
            case EventKind.PmemFence:
                foreach ((long line, int count) in _writtenBack)
                {
                    List<(int OffsetInLine, byte[] Bytes)> stores = _pending[line];
                    ApplyPrefix(Durable, line, stores, count);
                    stores.RemoveRange(0, count);
                    if (stores.Count == 0)
                    {
                        _pending.Remove(line);
                    }
                }
                _writtenBack.Clear();
                break;
            default:
                break;
        }
    }

    public static void ApplyPrefix(Span<byte> image, long line, List<(int OffsetInLine, byte[] Bytes)> stores, int count)
    {
        for (int i = 0; i < count; i++)
        {
            stores[i].Bytes.CopyTo(image[(int)(line * LineBytes + stores[i].OffsetInLine)..]);
        }
    }
}
