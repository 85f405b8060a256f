using System.Globalization;
using System.Text;
using Writeboost.Cache.Format;
using Writeboost.Cache.Table;

namespace Writeboost.Cache.Core;

/// <summary>A snapshot of a device's state: dm-writeboost's status fields, then ours.</summary>
public sealed record WriteboostStatus
{
    public long Cursor { get; init; }
    public long NrCaches { get; init; }
    public long NrSegments { get; init; }
    public ulong CurrentId { get; init; }
    public ulong LastFlushedId { get; init; }
    public ulong LastWritebackId { get; init; }
    public long NrDirtyCaches { get; init; }
    /// <summary>The 16 hit/miss counters; index = write &lt;&lt; 3 | hit &lt;&lt; 2 | on_buffer &lt;&lt; 1 | fullsize.</summary>
    public IReadOnlyList<long> Stats { get; init; } = [];
    public long NrPartialFlushed { get; init; }
    public IReadOnlyDictionary<string, long> Tunables { get; init; } = new Dictionary<string, long>();

    // Beyond dm-writeboost:
    public int SegmentSizeOrder { get; init; }
    public int BlocksPerSegment { get; init; }
    public long SizeBytes { get; init; }
    public ulong LastDurableId { get; init; }
    public long FullSegments { get; init; }
    public long PartialSegments { get; init; }
    public long UserBytesWritten { get; init; }
    public long UserBytesRead { get; init; }
    public long CacheBytesWritten { get; init; }
    public long BackingBytesWritten { get; init; }
    public long CacheFlushes { get; init; }
    public int BackingUtilPercent { get; init; }
    public long WritebackErrors { get; init; }
    public string? Failure { get; init; }
    public RecoveryReport Recovery { get; init; } = RecoveryReport.None;
    /// <summary>Some block is poisoned: its newest durable copy was lost to damaged media, and reads of it fail.</summary>
    public bool Degraded => PoisonedBlocks > 0;
    /// <summary>How many blocks are poisoned now (rewriting one, or clear_poison, clears it).</summary>
    public int PoisonedBlocks { get; init; }
    /// <summary>The poisoned blocks (backing block index, lost sectors, where the lost copy was).</summary>
    public IReadOnlyList<PoisonedBlock> Poisoned { get; init; } = [];
    /// <summary>Writeback cannot pass this segment until its poisoned blocks are rewritten or cleared (0: it is not held).</summary>
    public ulong WritebackHeldBySegment { get; init; }
    /// <summary>Opened read-only, only to look: nothing reached the devices.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>
    /// The status line as <c>dmsetup status</c> prints it after the target name: cursor, nr_caches, nr_segments,
    /// current_id, last_flushed_id, last_writeback_id, nr_dirty_caches, the 16 counters, nr_partial_flushed, then
    /// the tunables as "#pairs key value ...".
    /// </summary>
    public string ToStatusLine()
    {
        StringBuilder line = new();
        line.AppendJoin(' ', Cursor, NrCaches, NrSegments, CurrentId, LastFlushedId, LastWritebackId, NrDirtyCaches);
        foreach (long stat in Stats)
        {
            line.Append(' ').Append(stat.ToString(CultureInfo.InvariantCulture));
        }
        line.Append(' ').Append(NrPartialFlushed.ToString(CultureInfo.InvariantCulture));
        string[] printed =
        [
            TunableSpecs.WritebackThreshold, TunableSpecs.NrMaxBatchedWriteback, TunableSpecs.SyncDataInterval,
            TunableSpecs.UpdateSbRecordInterval, TunableSpecs.ReadCacheThreshold, TunableSpecs.BarrierDeadlineMs,
        ];
        line.Append(' ').Append((printed.Length * 2).ToString(CultureInfo.InvariantCulture));
        foreach (string key in printed)
        {
            line.Append(' ').Append(key).Append(' ').Append(Tunables[key].ToString(CultureInfo.InvariantCulture));
        }
        return line.ToString();
    }
}

public sealed partial class WriteboostDevice
{
    private readonly long[] _stats = new long[16];
    private long _nrPartialFlushed;
    private long _fullSegments;
    private long _partialSegments;

    public WriteboostCounters Counters { get; } = new();

    private void CountStat(bool write, bool hit, bool onBuffer, bool fullsize) =>
        _stats[(write ? 8 : 0) | (hit ? 4 : 0) | (onBuffer ? 2 : 0) | (fullsize ? 1 : 0)]++;

    public WriteboostStatus Status()
    {
        using (_monitor.Enter(SchedulePoint.StatusAfterSnapshot))
        {
            ulong currentId = _ring.OpenId != 0 ? _ring.OpenId : _ring.QueuedId + 1;
            long cursor = Geometry.SlotOf(currentId) * BlocksPerSegment + (_ring.OpenId != 0 ? _open.Length : 0);
            return new WriteboostStatus
            {
                Cursor = cursor,
                NrCaches = Geometry.NrCaches,
                NrSegments = Geometry.NrSegments,
                CurrentId = currentId,
                LastFlushedId = _ring.FlushedId,
                LastWritebackId = _ring.WrittenBackId,
                NrDirtyCaches = _cacheIndex.DirtyCount,
                Stats = _stats.ToArray(),
                NrPartialFlushed = _nrPartialFlushed,
                Tunables = Tunables.Snapshot(),
                SegmentSizeOrder = Geometry.SegmentSizeOrder,
                BlocksPerSegment = BlocksPerSegment,
                SizeBytes = SizeBytes,
                LastDurableId = _ring.DurableId,
                FullSegments = _fullSegments,
                PartialSegments = _partialSegments,
                UserBytesWritten = Counters.User.BytesWritten,
                UserBytesRead = Counters.User.BytesRead,
                CacheBytesWritten = Counters.CacheBytesWritten,
                BackingBytesWritten = Counters.BackingBytesWritten,
                CacheFlushes = Counters.CacheFlushes,
                BackingUtilPercent = _writeback.BackingUtilPercent,
                WritebackErrors = _writeback.Errors,
                Failure = _monitor.Failure?.Message,
                Recovery = Recovery,
                PoisonedBlocks = _poison.BlockCount,
                Poisoned = _poison.IsEmpty ? [] : _poison.List(BlocksPerSegment),
                WritebackHeldBySegment = _writeback.HeldBy,
                ReadOnly = _options.ReadOnly,
            };
        }
    }

    /// <summary>
    /// Checks a message without a device, so a tool can refuse a bad one before it opens (and so writes to) anything:
    /// the forms <see cref="Message"/> takes, a tunable's name, whether it may change online, its range, and a
    /// clear_poison sector inside a device of <paramref name="sizeBytes"/>.
    /// </summary>
    /// <exception cref="TableException">what is wrong with it.</exception>
    public static void CheckMessage(IReadOnlyList<string> words, long sizeBytes)
    {
        ArgumentNullException.ThrowIfNull(words);
        long sectors = sizeBytes / Units.BlockBytes * Units.BlockBytes / Units.SectorBytes;
        switch (words.Count)
        {
            case 0:
                throw new TableException("an empty message (expected clear_stat, drop_caches, clear_poison [sector], or <tunable> <value>)");
            case 1 when words[0] is "clear_stat" or "drop_caches" or "clear_poison":
                return;
            case 2 when words[0] == "clear_poison":
                if (!long.TryParse(words[1], NumberStyles.None, CultureInfo.InvariantCulture, out long sector) || sector >= sectors)
                {
                    throw new TableException($"clear_poison {words[1]}: expected a sector of the device (0..{sectors - 1})");
                }
                return;
            case 2:
                TunableSpec spec = TunableSpecs.Find(words[0])
                    ?? throw new TableException($"unknown message '{string.Join(' ', words)}' (expected clear_stat, drop_caches, clear_poison [sector], or <tunable> <value>; tunables: {string.Join(", ", TunableSpecs.All.Where(t => t.Online).Select(t => t.Key))})");
                if (!spec.Online)
                {
                    throw new TableException($"{spec.Key} can only be set when the device is created");
                }
                TunableSpecs.Parse(spec, words[1]);
                return;
            default:
                throw new TableException($"unknown message '{string.Join(' ', words)}' (expected clear_stat, drop_caches, clear_poison [sector], or <tunable> <value>)");
        }
    }

    /// <summary>
    /// dmsetup message: <c>clear_stat</c>, <c>drop_caches</c>, <c>clear_poison [sector]</c>, or
    /// <c>&lt;tunable&gt; &lt;value&gt;</c> for an online tunable.
    /// </summary>
    /// <exception cref="TableException">an unknown message, a static tunable, or a value out of range (see <see cref="CheckMessage"/>).</exception>
    public void Message(IReadOnlyList<string> words)
    {
        CheckMessage(words, SizeBytes);
        switch (words[0])
        {
            case "clear_poison":
                ClearPoison(words.Count == 2 ? long.Parse(words[1], CultureInfo.InvariantCulture) : null);
                return;
            case "clear_stat":
                using (_monitor.Enter(SchedulePoint.MessageAfterClearStat))
                {
                    Array.Clear(_stats);
                    _nrPartialFlushed = 0;
                }
                return;
            case "drop_caches":
                DropCaches();
                return;
            default:
                Tunables.SetOnline(words[0], words[1]);
                _writeback.Wake(); // a new writeback_threshold or batch size takes effect now
                return;
        }
    }

    /// <summary>
    /// Acknowledges the loss of poisoned blocks (all of them, or the one holding <paramref name="sector"/>): their
    /// lost sectors are overwritten with zeros and made durable, so they read as zeros from now on, at every later
    /// open too (the zeros are a newer copy than the damaged one, which recovery then no longer counts as lost), and
    /// writeback may pass the damaged segment once no lost copy is left in it.
    /// </summary>
    /// <returns>How many blocks were cleared.</returns>
    public int ClearPoison(long? sector = null)
    {
        List<PoisonedBlock> poisoned;
        using (_monitor.Enter(SchedulePoint.ClearPoisonAfterListing))
        {
            poisoned = _poison.IsEmpty ? [] : _poison.List(BlocksPerSegment);
        }
        if (sector is { } only)
        {
            poisoned = poisoned.Where(p => p.Block == only / Units.SectorsPerBlock).ToList();
        }
        byte[] zeros = new byte[Units.BlockBytes];
        foreach (PoisonedBlock block in poisoned)
        {
            foreach ((int first, int count) in Units.SectorRuns(block.Sectors))
            {
                Write(Units.BlocksToBytes(block.Block) + first * Units.SectorBytes, zeros.AsSpan(0, count * Units.SectorBytes));
            }
        }
        if (poisoned.Count > 0)
        {
            Flush();
        }
        return poisoned.Count;
    }
}
