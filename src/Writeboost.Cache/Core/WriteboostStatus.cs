using System.Globalization;
using System.Text;
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
