using Writeboost.Cache.Format;

namespace Writeboost.Cache.Core;

public sealed partial class WriteboostDevice
{
    private readonly ReadCacheCells _readCache;

    /// <summary>Where one block piece of a read comes from, decided under the lock.</summary>
    private struct ReadPlan
    {
        public long Block;
        public int FirstSector;
        public int SectorCount;
        public int PieceOffsetBytes;
        /// <summary>Sectors already copied from a RAM buffer under the lock.</summary>
        public byte FromBuffer;
        /// <summary>Sectors to read from the cache device, at <see cref="CacheOffsetBytes"/> (slot pinned).</summary>
        public byte FromCache;
        public long CacheOffsetBytes;
        public long PinnedSlot;
        /// <summary>A read-cache cell reserved for this full-block miss (null when not staged).</summary>
        public ReadCacheCell? Cell;
        /// <summary>Some wanted sector is neither in a buffer nor on the cache device: the piece is read from the backing store first.</summary>
        public bool FromBacking;
        public readonly int LengthBytes => SectorCount * Units.SectorBytes;
    }

    /// <summary>
    /// Reads sectors. Per block, dirty data overlays the backing store at sector granularity: sectors dirty in
    /// a RAM buffer come from it, sectors held on the cache device come from there (a clean read-cached block
    /// whole, a dirty one only its dirty sectors), and the rest from the backing store. A full-block miss may be
    /// staged into the cache as a clean block (read_cache_threshold). Only the pieces that need the backing store
    /// are read from it, adjacent ones in one read.
    /// </summary>
    public void Read(long offsetBytes, Span<byte> destination)
    {
        Devices.DeviceRange.CheckAligned(this, offsetBytes, destination.Length, "read");
        // A failed device still serves reads: what it acknowledged is still in its buffers and on its devices.
        ObjectDisposedException.ThrowIf(_disposed && _monitor.Stopping, this);
        Counters.CountRead(destination.Length);
        List<ReadPlan> plans = [];
        bool needBacking = false;
        bool mustRelease = false; // a slot pinned or a read-cache cell reserved: only then is the lock taken again after
        byte[]? bufferCopies = null; // made only when a piece is in a RAM buffer: most reads have none
        using (_monitor.Enter(SchedulePoint.ReaderAfterPlanning))
        {
            if (!_poison.IsEmpty && Faults.PoisonedBlockFailsReads)
            {
                ThrowIfPoisonedLocked(offsetBytes, destination.Length);
            }
            foreach (BlockPiece piece in new BlockPieces(offsetBytes, destination.Length))
            {
                ReadPlan plan = PlanPieceLocked(piece.Block, piece.FirstSector, piece.SectorCount, piece.OffsetInRequestBytes, ref bufferCopies, destination.Length);
                byte wanted = Units.SectorMask(piece.FirstSector, piece.SectorCount);
                plan.FromBacking = (byte)(wanted & ~(plan.FromBuffer | plan.FromCache)) != 0;
                needBacking |= plan.FromBacking;
                mustRelease |= plan.FromCache != 0 || plan.Cell is not null;
                plans.Add(plan);
            }
        }
        try
        {
            if (needBacking)
            {
                ReadFromBacking(offsetBytes, destination, plans);
            }
            Span<byte> cacheBlock = stackalloc byte[Units.BlockBytes];
            foreach (ReadPlan plan in plans)
            {
                Span<byte> piece = destination.Slice(plan.PieceOffsetBytes, plan.LengthBytes);
                if (plan.FromBuffer != 0)
                {
                    OverlaySectors(piece, plan.FirstSector, bufferCopies.AsSpan(plan.PieceOffsetBytes, piece.Length), plan.FromBuffer);
                }
                if (plan.FromCache != 0)
                {
                    _cache.Read(plan.CacheOffsetBytes, cacheBlock);
                    Counters.CountCacheRead(Units.BlockBytes);
                    OverlaySectors(piece, plan.FirstSector, cacheBlock[(plan.FirstSector * Units.SectorBytes)..][..piece.Length], plan.FromCache);
                }
                if (plan.Cell is not null)
                {
                    plan.Cell.Fill(piece);
                }
            }
        }
        finally
        {
            if (mustRelease)
            {
                ReleasePlans(plans);
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

    /// <summary>
    /// A read of a poisoned sector fails before anything is read: its newest durable copy is lost, and its older
    /// data must not pass for it. The error names the block and where its copy was lost.
    /// </summary>
    /// <exception cref="IOException">a sector of the range is poisoned.</exception>
    private void ThrowIfPoisonedLocked(long offsetBytes, int lengthBytes)
    {
        foreach (BlockPiece piece in new BlockPieces(offsetBytes, lengthBytes))
        {
            byte hit = (byte)(_poison.SectorsOf(piece.Block) & Units.SectorMask(piece.FirstSector, piece.SectorCount));
            if (hit == 0)
            {
                continue;
            }
            int sector = System.Numerics.BitOperations.TrailingZeroCount(hit);
            (ulong segment, int g) = _poison.SourceOf(piece.Block, sector)!.Value;
            long backingSector = piece.Block * Units.SectorsPerBlock + sector;
            throw new PoisonedBlockException(piece.Block,
                $"{Name}: block {piece.Block} (backing sector {backingSector}) is lost: its newest durable copy, in segment {segment} (slot {SlotOfGlobal(g)}), was damaged on the cache device; reads of it fail until it is rewritten or the loss is acknowledged (message clear_poison)");
        }
    }

    /// <summary>Unpins the slots a read pinned and completes its read-cache cells (takes the lock).</summary>
    private void ReleasePlans(List<ReadPlan> plans)
    {
        using (_monitor.Enter(SchedulePoint.ReaderAfterReleasingPlans))
        {
            // Unpin every slot before staging: staging may wait for a free slot, and must not wait on our own pins.
            foreach (ReadPlan plan in plans)
            {
                if (plan.FromCache != 0 && _ring.Unpin(plan.PinnedSlot))
                {
                    _monitor.PulseAllLocked();
                }
            }
            foreach (ReadPlan plan in plans)
            {
                if (plan.Cell is not null)
                {
                    CompleteReadCacheCellLocked(plan.Cell);
                }
            }
        }
    }

    private ReadPlan PlanPieceLocked(long block, int firstSector, int sectorCount, int pieceOffset, ref byte[]? bufferCopies, int requestBytes)
    {
        ReadPlan plan = new() { Block = block, FirstSector = firstSector, SectorCount = sectorCount, PieceOffsetBytes = pieceOffset, PinnedSlot = -1 };
        byte wanted = Units.SectorMask(firstSector, sectorCount);
        bool fullsize = sectorCount == Units.SectorsPerBlock;
        if (!_cacheIndex.TryFind(block, out int g))
        {
            CountStat(write: false, hit: false, onBuffer: false, fullsize);
            if (fullsize)
            {
                plan.Cell = ReserveReadCacheCellLocked(block);
            }
            return plan;
        }
        long slot = SlotOfGlobal(g);
        bool inBuffer = IsInBuffer(g);
        CountStat(write: false, hit: true, onBuffer: _ring.OpenId != 0 && slot == Geometry.SlotOf(_ring.OpenId), fullsize);
        byte held = _cacheIndex.ReadableSectorsAt(g);
        byte use = (byte)(held & wanted);
        if (use == 0)
        {
            return plan;
        }
        if (inBuffer)
        {
            SegmentBuffer buffer = BufferOf(_ring.IdIn(slot));
            buffer.WaitCopied(IndexInSegment(g));
            buffer.Block(IndexInSegment(g)).Slice(firstSector * Units.SectorBytes, sectorCount * Units.SectorBytes)
                .CopyTo((bufferCopies ??= new byte[requestBytes]).AsSpan(pieceOffset));
            plan.FromBuffer = Faults.BufferServesOnlyHeldSectors ? use : wanted;
            return plan;
        }
        plan.FromCache = use;
        plan.CacheOffsetBytes = Geometry.DataBlockBytes(slot, IndexInSegment(g));
        plan.PinnedSlot = slot;
        _ring.Pin(slot);
        return plan;
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

    /// <summary>
    /// A full-block read miss reserves a cell (dm-writeboost's read_cache_cells) unless read caching is off,
    /// the cells are used up, or the read belongs to a sequential run longer than read_cache_threshold blocks
    /// (which then cancels the run's earlier cells too). A write to the block cancels its cell.
    /// </summary>
    private ReadCacheCell? ReserveReadCacheCellLocked(long block)
    {
        int threshold = Tunables.ReadCacheThreshold;
        // Without workers nothing would write a staged segment out: staging would wait for a buffer forever.
        return threshold == 0 || _options.WithoutWorkers ? null : _readCache.ReserveLocked(block, threshold);
    }

    /// <summary>When every reserved cell has its data, the uncancelled ones are written into the cache as clean blocks.</summary>
    private void CompleteReadCacheCellLocked(ReadCacheCell cell)
    {
        if (!_readCache.CompleteLocked(cell, out List<ReadCacheCell> ready))
        {
            return;
        }
        try
        {
            foreach (ReadCacheCell staged in ready)
            {
                StageLocked(staged);
            }
        }
        finally
        {
            _readCache.FinishStagingLocked(ready);
        }
    }

    /// <summary>Writes one staged cell into the open buffer as a clean block, unless a write got there first.</summary>
    private void StageLocked(ReadCacheCell staged)
    {
        if (staged.Cancelled || _cacheIndex.Holds(staged.Block) || _monitor.Failure is not null)
        {
            return;
        }
        try
        {
            EnsureOpenSlot();
        }
        catch (IOException)
        {
            return; // the device failed meanwhile; staging is only an optimisation, the read itself succeeded
        }
        if (staged.Cancelled || _cacheIndex.Holds(staged.Block))
        {
            return; // written while we waited for a slot
        }
        ulong landed = _ring.OpenId;
        int slot = _open.Length;
        staged.Data.CopyTo(BufferOf(landed).Block(slot));
        PlaceInOpenSegmentLocked(staged.Block, Units.FullBlockBits, dirty: false); // clean: not placed in pmem, nothing to recover
        if (_open.IsFull)
        {
            SealOpenLocked(partial: false);
        }
        _mirror.PlaceHoleUnlocked(landed, slot);
    }
}

/// <summary>A read hit a poisoned block: its newest durable copy is lost (damaged media). NBD answers it with EIO.</summary>
public sealed class PoisonedBlockException(long block, string message) : IOException(message)
{
    /// <summary>The 4 KiB block (backing block index) whose data is lost.</summary>
    public long Block { get; } = block;
}
