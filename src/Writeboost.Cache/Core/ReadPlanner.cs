using System.Numerics;
using Writeboost.Cache.Format;
using Writeboost.Cache.Index;
using Writeboost.Cache.Ring;
using Writeboost.Cache.Workers;

namespace Writeboost.Cache.Core;

/// <summary>Where one block piece of a read comes from, decided under the lock.</summary>
internal struct ReadPlan
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

/// <summary>The old copy of metablock <paramref name="G"/>, read from segment <paramref name="SegmentId"/> on the cache device.</summary>
internal sealed record OldCopy(int G, ulong SegmentId, byte[] Data);

/// <summary>A whole read's plans: one per block piece, and what the read does with the lock let go.</summary>
/// <param name="BufferCopies">The sectors copied from RAM buffers, at the request's offsets (null: none was).</param>
internal readonly record struct ReadPlans(List<ReadPlan> Pieces, byte[]? BufferCopies)
{
    /// <summary>Some piece needs the backing store.</summary>
    public bool NeedBacking => Pieces.Exists(p => p.FromBacking);

    /// <summary>A slot pinned or a read-cache cell reserved: only then is the lock taken again after (<see cref="ReadPlanner.ReleaseLocked"/>).</summary>
    public bool MustRelease => Pieces.Exists(p => p.FromCache != 0 || p.Cell is not null);
}

/// <summary>
/// The read path's part under the lock. Per block, dirty data overlays the backing store at sector granularity:
/// sectors dirty in a RAM buffer are copied from it here, sectors held on the cache device are read from there with
/// their slot pinned (a clean read-cached block whole, a dirty one only its dirty sectors), and the rest come from
/// the backing store. A full-block miss may reserve a read-cache cell, staged into the log head as a clean block
/// once every reserved cell has its data (dm-writeboost's read_cache_cells; <see cref="Cells"/>). The device reads
/// the devices between <see cref="PlanLocked"/> and <see cref="ReleaseLocked"/>, the lock let go.
/// </summary>
internal sealed class ReadPlanner(DeviceParts parts, CacheIndex index, PoisonSet poison, BufferPool buffers, LogHead head, HitStats stats)
{
    private readonly SegmentRing _ring = parts.Ring;

    /// <summary>The read-cache cells; a write to a block cancels its cell.</summary>
    public ReadCacheCells Cells { get; } = new(parts.Tunables.NrReadCacheCells);

    private FaultHooks Faults => parts.Options.Faults;

    /// <summary>Plans each block piece of a read of <paramref name="lengthBytes"/> at <paramref name="offsetBytes"/>.</summary>
    /// <exception cref="PoisonedBlockException">a sector of the range is poisoned.</exception>
    public ReadPlans PlanLocked(long offsetBytes, int lengthBytes)
    {
        if (!poison.IsEmpty && Faults.PoisonedBlockFailsReads)
        {
            ThrowIfPoisonedLocked(offsetBytes, lengthBytes);
        }
        List<ReadPlan> plans = [];
        byte[]? bufferCopies = null; // made only when a piece is in a RAM buffer: most reads have none
        foreach (BlockPiece piece in new BlockPieces(offsetBytes, lengthBytes))
        {
            ReadPlan plan = PlanPieceLocked(piece.Block, piece.FirstSector, piece.SectorCount, piece.OffsetInRequestBytes, ref bufferCopies, lengthBytes);
            byte wanted = Units.SectorMask(piece.FirstSector, piece.SectorCount);
            plan.FromBacking = (byte)(wanted & ~(plan.FromBuffer | plan.FromCache)) != 0;
            plans.Add(plan);
        }
        return new ReadPlans(plans, bufferCopies);
    }

    /// <summary>Unpins the slots a read pinned and completes its read-cache cells.</summary>
    public void ReleaseLocked(ReadPlans plans)
    {
        // Unpin every slot before staging: staging may wait for a free slot, and must not wait on our own pins.
        foreach (ReadPlan plan in plans.Pieces)
        {
            if (plan.FromCache != 0 && _ring.Unpin(plan.PinnedSlot))
            {
                parts.Monitor.PulseAllLocked();
            }
        }
        foreach (ReadPlan plan in plans.Pieces)
        {
            if (plan.Cell is not null)
            {
                CompleteCellLocked(plan.Cell);
            }
        }
    }

    /// <summary>Metablock g's segment is still in a RAM buffer (open, or sealed and not yet written).</summary>
    public bool InBufferLocked(int g) => _ring.IdIn(index.SlotOf(g)) > _ring.FlushedId;

    /// <summary>
    /// A partial overwrite of block g, dirty in a RAM buffer: copies the old copy (the caller merges its sectors the
    /// write does not cover), once a mode-1 writer still copying it in is done.
    /// </summary>
    public void CopyOldFromBufferLocked(int g, Span<byte> destination)
    {
        SegmentBuffer buffer = buffers.Of(_ring.IdIn(index.SlotOf(g)));
        buffer.WaitCopied(index.IndexInSegment(g));
        buffer.Block(index.IndexInSegment(g)).CopyTo(destination);
    }

    /// <summary>
    /// A partial overwrite of block g, dirty on the cache device: reads its old copy with the lock let go, the slot
    /// pinned meanwhile (no segment takes it over). The caller decides again with the lock back: the copy is still
    /// g's while <see cref="IsCopyOf"/> says so.
    /// </summary>
    public OldCopy ReadOldCopyUnlocked(int g)
    {
        long slot = index.SlotOf(g);
        OldCopy copy = new(g, _ring.IdIn(slot), new byte[Units.BlockBytes]);
        _ring.Pin(slot);
        try
        {
            using (parts.Monitor.Leave(SchedulePoint.WriterBeforeReadingOldCopy))
            {
                parts.Cache.Read(parts.Geometry.DataBlockBytes(slot, index.IndexInSegment(g)), copy.Data);
                parts.Counters.CountCacheRead(Units.BlockBytes);
            }
        }
        finally
        {
            if (_ring.Unpin(slot))
            {
                parts.Monitor.PulseAllLocked();
            }
        }
        return copy;
    }

    /// <summary>The copy read is still metablock g's: the same segment holds g's slot (a segment on the cache device never changes).</summary>
    public bool IsCopyOf(OldCopy? copy, int g) => copy is not null && copy.G == g && copy.SegmentId == _ring.IdIn(index.SlotOf(g));

    /// <summary>
    /// A read of a poisoned sector fails before anything is read: its newest durable copy is lost, and its older
    /// data must not pass for it. The error names the block and where its copy was lost.
    /// </summary>
    private void ThrowIfPoisonedLocked(long offsetBytes, int lengthBytes)
    {
        foreach (BlockPiece piece in new BlockPieces(offsetBytes, lengthBytes))
        {
            byte hit = (byte)(poison.SectorsOf(piece.Block) & Units.SectorMask(piece.FirstSector, piece.SectorCount));
            if (hit == 0)
            {
                continue;
            }
            int sector = BitOperations.TrailingZeroCount(hit);
            (ulong segment, int g) = poison.SourceOf(piece.Block, sector)!.Value;
            long backingSector = piece.Block * Units.SectorsPerBlock + sector;
            throw new PoisonedBlockException(piece.Block,
                $"{parts.DeviceName}: block {piece.Block} (backing sector {backingSector}) is lost: its newest durable copy, in segment {segment} (slot {index.SlotOf(g)}), was damaged on the cache device; reads of it fail until it is rewritten or the loss is acknowledged (message clear_poison)");
        }
    }

    private ReadPlan PlanPieceLocked(long block, int firstSector, int sectorCount, int pieceOffset, ref byte[]? bufferCopies, int requestBytes)
    {
        ReadPlan plan = new() { Block = block, FirstSector = firstSector, SectorCount = sectorCount, PieceOffsetBytes = pieceOffset, PinnedSlot = -1 };
        byte wanted = Units.SectorMask(firstSector, sectorCount);
        bool fullsize = sectorCount == Units.SectorsPerBlock;
        if (!index.TryFind(block, out int g))
        {
            stats.CountLocked(write: false, hit: false, onBuffer: false, fullsize);
            if (fullsize)
            {
                plan.Cell = ReserveCellLocked(block);
            }
            return plan;
        }
        long slot = index.SlotOf(g);
        ulong id = _ring.IdIn(slot);
        stats.CountLocked(write: false, hit: true, onBuffer: _ring.OpenId != 0 && slot == parts.Geometry.SlotOf(_ring.OpenId), fullsize);
        byte use = (byte)(index.ReadableSectorsAt(g) & wanted);
        if (use == 0)
        {
            return plan;
        }
        if (id > _ring.FlushedId)
        {
            // Still in a RAM buffer (open, or queued and not yet written).
            SegmentBuffer buffer = buffers.Of(id);
            buffer.WaitCopied(index.IndexInSegment(g));
            buffer.Block(index.IndexInSegment(g)).Slice(firstSector * Units.SectorBytes, sectorCount * Units.SectorBytes)
                .CopyTo((bufferCopies ??= new byte[requestBytes]).AsSpan(pieceOffset));
            plan.FromBuffer = Faults.BufferServesOnlyHeldSectors ? use : wanted;
            return plan;
        }
        plan.FromCache = use;
        plan.CacheOffsetBytes = parts.Geometry.DataBlockBytes(slot, index.IndexInSegment(g));
        plan.PinnedSlot = slot;
        _ring.Pin(slot);
        return plan;
    }

    /// <summary>
    /// A full-block read miss reserves a cell (dm-writeboost's read_cache_cells) unless read caching is off,
    /// the cells are used up, or the read belongs to a sequential run longer than read_cache_threshold blocks
    /// (which then cancels the run's earlier cells too). A write to the block cancels its cell.
    /// </summary>
    private ReadCacheCell? ReserveCellLocked(long block)
    {
        int threshold = parts.Tunables.ReadCacheThreshold;
        // Without workers nothing would write a staged segment out: staging would wait for a buffer forever.
        return threshold == 0 || parts.Options.WithoutWorkers ? null : Cells.ReserveLocked(block, threshold);
    }

    /// <summary>When every reserved cell has its data, the uncancelled ones are written into the cache as clean blocks.</summary>
    private void CompleteCellLocked(ReadCacheCell cell)
    {
        if (!Cells.CompleteLocked(cell, out List<ReadCacheCell> ready))
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
            Cells.FinishStagingLocked(ready);
        }
    }

    /// <summary>Writes one staged cell into the open buffer as a clean block, unless a write got there first.</summary>
    private void StageLocked(ReadCacheCell staged)
    {
        if (staged.Cancelled || index.Holds(staged.Block) || parts.Monitor.Failure is not null)
        {
            return;
        }
        try
        {
            head.EnsureRoomLocked();
        }
        catch (IOException)
        {
            return; // the device failed meanwhile; staging is only an optimisation, the read itself succeeded
        }
        if (staged.Cancelled || index.Holds(staged.Block))
        {
            return; // written while we waited for a slot
        }
        ulong landed = head.OpenId;
        staged.Data.CopyTo(buffers.Of(landed).Block(head.Open.Length));
        int slot = head.PlaceLocked(staged.Block, Units.FullBlockBits, dirty: false); // clean: not placed in pmem, nothing to recover
        if (head.Open.IsFull)
        {
            head.SealLocked(partial: false);
        }
        head.Mirror.PlaceHoleUnlocked(landed, slot);
    }
}

/// <summary>A read hit a poisoned block: its newest durable copy is lost (damaged media). NBD answers it with EIO.</summary>
public sealed class PoisonedBlockException(long block, string message) : IOException(message)
{
    /// <summary>The 4 KiB block (backing block index) whose data is lost.</summary>
    public long Block { get; } = block;
}
