using Writeboost.Cache.Format;
using Writeboost.Devices;

namespace Writeboost.Cache.Core;

public sealed partial class WriteboostDevice
{
    /// <summary>
    /// Reads sectors. Per block, dirty data overlays the backing store at sector granularity: sectors dirty in
    /// a RAM buffer come from it, sectors held on the cache device come from there (a clean read-cached block
    /// whole, a dirty one only its dirty sectors), and the rest from the backing store. A full-block miss may be
    /// staged into the cache as a clean block (read_cache_threshold). Only the pieces that need the backing store
    /// are read from it, adjacent ones in one read. Planned under the lock (<see cref="ReadPlanner"/>), read with it
    /// let go.
    /// </summary>
    public void Read(long offsetBytes, Span<byte> destination)
    {
        DeviceRange.CheckAligned(this, offsetBytes, destination.Length, "read");
        // A failed device still serves reads: what it acknowledged is still in its buffers and on its devices.
        ObjectDisposedException.ThrowIf(_disposed && _monitor.Stopping, this);
        Counters.CountRead(destination.Length);
        ReadPlans plans;
        using (_monitor.Enter(SchedulePoint.ReaderAfterPlanning))
        {
            plans = _reads.PlanLocked(offsetBytes, destination.Length);
        }
        try
        {
            if (plans.NeedBacking)
            {
                ReadFromBacking(offsetBytes, destination, plans.Pieces);
            }
            Span<byte> cacheBlock = stackalloc byte[Units.BlockBytes];
            foreach (ReadPlan plan in plans.Pieces)
            {
                Span<byte> piece = destination.Slice(plan.PieceOffsetBytes, plan.LengthBytes);
                if (plan.FromBuffer != 0)
                {
                    OverlaySectors(piece, plan.FirstSector, plans.BufferCopies.AsSpan(plan.PieceOffsetBytes, piece.Length), plan.FromBuffer);
                }
                if (plan.FromCache != 0)
                {
                    _cache.Read(plan.CacheOffsetBytes, cacheBlock);
                    Counters.CountCacheRead(Units.BlockBytes);
                    OverlaySectors(piece, plan.FirstSector, cacheBlock[(plan.FirstSector * Units.SectorBytes)..][..piece.Length], plan.FromCache);
                }
                plan.Cell?.Fill(piece);
            }
        }
        finally
        {
            if (plans.MustRelease)
            {
                using (_monitor.Enter(SchedulePoint.ReaderAfterReleasingPlans))
                {
                    _reads.ReleaseLocked(plans);
                }
            }
        }
    }

    /// <summary>The pieces that need the backing store, read from it: each run of adjacent ones in one read.</summary>
    private void ReadFromBacking(long offsetBytes, Span<byte> destination, List<ReadPlan> plans)
    {
        int runStart = -1;
        int runEnd = 0;
        foreach (ReadPlan plan in plans)
        {
            if (plan.FromBacking)
            {
                runStart = runStart < 0 ? plan.PieceOffsetBytes : runStart;
                runEnd = plan.PieceOffsetBytes + plan.LengthBytes;
                continue;
            }
            if (runStart >= 0)
            {
                _backingStore.Read(offsetBytes + runStart, destination[runStart..runEnd]);
                runStart = -1;
            }
        }
        if (runStart >= 0)
        {
            _backingStore.Read(offsetBytes + runStart, destination[runStart..runEnd]);
        }
    }

    /// <summary>Copies the sectors of <paramref name="bits"/> from <paramref name="source"/> over <paramref name="piece"/> (both start at firstSector).</summary>
    private static void OverlaySectors(Span<byte> piece, int firstSector, ReadOnlySpan<byte> source, byte bits)
    {
        if (bits == 0)
        {
            return;
        }
        int count = piece.Length / Units.SectorBytes;
        for (int s = 0; s < count; s++)
        {
            if (Units.HasSector(bits, firstSector + s))
            {
                source.Slice(s * Units.SectorBytes, Units.SectorBytes).CopyTo(piece[(s * Units.SectorBytes)..]);
            }
        }
    }
}
