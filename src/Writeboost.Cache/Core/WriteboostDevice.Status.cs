using System.Globalization;
using Writeboost.Cache.Format;
using Writeboost.Cache.Table;

namespace Writeboost.Cache.Core;

public sealed partial class WriteboostDevice
{
    public WriteboostCounters Counters { get; } = new();

    public WriteboostStatus Status()
    {
        using (_monitor.Enter(SchedulePoint.StatusAfterSnapshot))
        {
            ulong currentId = _ring.OpenId != 0 ? _ring.OpenId : _ring.QueuedId + 1;
            long cursor = Geometry.SlotOf(currentId) * Geometry.BlocksPerSegment + _head.OpenLength;
            return new WriteboostStatus
            {
                Cursor = cursor,
                NrCaches = Geometry.NrCaches,
                NrSegments = Geometry.NrSegments,
                CurrentId = currentId,
                LastFlushedId = _ring.FlushedId,
                LastWritebackId = _ring.WrittenBackId,
                NrDirtyCaches = _cacheIndex.DirtyCount,
                Stats = _stats.SnapshotLocked(),
                NrPartialFlushed = _head.Open.PartialSealsSinceCleared,
                Tunables = Tunables.Snapshot(),
                SegmentSizeOrder = Geometry.SegmentSizeOrder,
                BlocksPerSegment = Geometry.BlocksPerSegment,
                SizeBytes = SizeBytes,
                LastDurableId = _ring.DurableId,
                FullSegments = _head.Open.FullSeals,
                PartialSegments = _head.Open.PartialSeals,
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
                Poisoned = _poison.IsEmpty ? [] : _poison.List(Geometry.BlocksPerSegment),
                WritebackHeldBySegment = _writeback.HeldBy,
                ReadOnly = _options.ReadOnly,
            };
        }
    }

    /// <summary>
    /// dmsetup message: <c>clear_stat</c>, <c>drop_caches</c>, <c>clear_poison [sector]</c>, or
    /// <c>&lt;tunable&gt; &lt;value&gt;</c> for an online tunable.
    /// </summary>
    /// <exception cref="TableException">an unknown message, a static tunable, or a value out of range (see <see cref="DeviceMessage.Check"/>).</exception>
    public void Message(IReadOnlyList<string> words)
    {
        DeviceMessage.Check(words, SizeBytes);
        switch (words[0])
        {
            case "clear_poison":
                ClearPoison(words.Count == 2 ? long.Parse(words[1], CultureInfo.InvariantCulture) : null);
                return;
            case "clear_stat":
                using (_monitor.Enter(SchedulePoint.MessageAfterClearStat))
                {
                    _stats.ClearLocked();
                    _head.Open.ClearStats();
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
            poisoned = _poison.IsEmpty ? [] : _poison.List(Geometry.BlocksPerSegment);
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
