namespace Writeboost.Cache.Core;

/// <summary>What keeps writeback from passing a segment (see <see cref="PoisonSet.Blocking"/>).</summary>
internal enum WritebackHold
{
    None,
    Poisoned,
    ClearedNotDurable,
}

/// <summary>One poisoned block: the sectors whose newest durable copy is lost, and where that copy was.</summary>
public readonly record struct PoisonedBlock(long Block, byte Sectors, ulong SegmentId, long Slot);

/// <summary>
/// Blocks whose newest durable copy recovery found lost (a damaged block of a durable segment, a damaged pmem
/// record of an acknowledged write). A read of a poisoned sector fails; a write of a sector clears it, and once
/// that write is durable the damaged copy is owed nothing more. Recovery derives the set again from the media at
/// every open, so it needs no on-disk form of its own: the damaged copy stays where it is until every sector it
/// poisons is rewritten (writeback never passes a segment that still holds one, see
/// <see cref="HoldsSegment"/>). Sparse: poison is rare. Called with the device lock held.
/// </summary>
internal sealed class PoisonSet
{
    /// <summary>A lost copy at metablock g: the sectors it still poisons, and the newest segment whose write cleared one of them.</summary>
    private sealed class LostCopy(long block, byte sectors, ulong segmentId)
    {
        public long Block { get; } = block;
        public byte Sectors { get; set; } = sectors;
        public ulong SegmentId { get; } = segmentId;
        public ulong ClearedBy { get; set; }
    }

    private readonly Dictionary<int, LostCopy> _byEntry = [];
    private readonly Dictionary<long, List<int>> _byBlock = [];

    public bool IsEmpty => _byEntry.Count == 0;

    /// <summary>Blocks with at least one poisoned sector.</summary>
    public int BlockCount => _byBlock.Count;

    /// <summary>The poisoned sectors of <paramref name="block"/> (0: none).</summary>
    public byte SectorsOf(long block)
    {
        if (!_byBlock.TryGetValue(block, out List<int>? entries))
        {
            return 0;
        }
        byte sectors = 0;
        foreach (int g in entries)
        {
            sectors |= _byEntry[g].Sectors;
        }
        return sectors;
    }

    /// <summary>The lost copy that poisons <paramref name="sector"/> of <paramref name="block"/>, if any.</summary>
    public (ulong SegmentId, int G)? SourceOf(long block, int sector)
    {
        if (_byBlock.TryGetValue(block, out List<int>? entries))
        {
            foreach (int g in entries)
            {
                if ((_byEntry[g].Sectors & (1 << sector)) != 0)
                {
                    return (_byEntry[g].SegmentId, g);
                }
            }
        }
        return null;
    }

    /// <summary>Metablock g of segment <paramref name="segmentId"/> held a copy of the block's <paramref name="sectors"/> that is lost.</summary>
    public void Poison(long block, byte sectors, int g, ulong segmentId)
    {
        Forget(g);
        Clear(block, sectors, segmentId); // the newer loss is what those sectors now are
        _byEntry[g] = new LostCopy(block, sectors, segmentId);
        if (!_byBlock.TryGetValue(block, out List<int>? entries))
        {
            _byBlock[block] = entries = [];
        }
        entries.Add(g);
    }

    /// <summary>A newer copy of the block's <paramref name="sectors"/> (in segment <paramref name="bySegment"/>) supersedes what was lost there.</summary>
    /// <returns>Whether any poisoned sector was cleared.</returns>
    public bool Clear(long block, byte sectors, ulong bySegment)
    {
        if (!_byBlock.TryGetValue(block, out List<int>? entries))
        {
            return false;
        }
        bool cleared = false;
        foreach (int g in entries)
        {
            LostCopy copy = _byEntry[g];
            if ((copy.Sectors & sectors) != 0)
            {
                copy.Sectors &= (byte)~sectors;
                copy.ClearedBy = Math.Max(copy.ClearedBy, bySegment);
                cleared = true;
            }
        }
        entries.RemoveAll(g => _byEntry[g].Sectors == 0);
        if (entries.Count == 0)
        {
            _byBlock.Remove(block);
        }
        return cleared;
    }

    /// <summary>
    /// Whether metablock g still holds a lost copy writeback must not pass: some of its sectors are still poisoned,
    /// or the writes that cleared them are not durable yet (until then, the lost copy is what the media say).
    /// </summary>
    public bool Holds(int g, ulong lastDurableId) =>
        _byEntry.TryGetValue(g, out LostCopy? copy) && (copy.Sectors != 0 || copy.ClearedBy > lastDurableId);

    /// <summary>Whether any metablock of slot <paramref name="slot"/> holds a lost copy (see <see cref="Holds"/>).</summary>
    public bool HoldsSegment(long slot, int blocksPerSegment, ulong lastDurableId) =>
        Blocking(slot, blocksPerSegment, lastDurableId, out _) != WritebackHold.None;

    /// <summary>
    /// What keeps writeback from passing the segment in <paramref name="slot"/>: nothing; sectors still poisoned
    /// (only a rewrite or clear_poison frees it); or writes that cleared them, not durable yet — until segment
    /// <paramref name="durableNeeded"/> is.
    /// </summary>
    public WritebackHold Blocking(long slot, int blocksPerSegment, ulong lastDurableId, out ulong durableNeeded)
    {
        durableNeeded = 0;
        WritebackHold hold = WritebackHold.None;
        foreach ((int g, LostCopy copy) in _byEntry)
        {
            if (g / blocksPerSegment != slot)
            {
                continue;
            }
            if (copy.Sectors != 0)
            {
                return WritebackHold.Poisoned;
            }
            if (copy.ClearedBy > lastDurableId)
            {
                durableNeeded = Math.Max(durableNeeded, copy.ClearedBy);
                hold = WritebackHold.ClearedNotDurable;
            }
        }
        return hold;
    }

    /// <summary>How many blocks the lost copies in slot <paramref name="slot"/> still poison.</summary>
    public int CountInSlot(long slot, int blocksPerSegment) =>
        _byEntry.Count(e => e.Key / blocksPerSegment == slot && e.Value.Sectors != 0);

    /// <summary>Metablock g is reused (its slot taken by a new segment, or reformatted): it holds nothing any more.</summary>
    public void Forget(int g)
    {
        if (_byEntry.Remove(g, out LostCopy? copy) && _byBlock.TryGetValue(copy.Block, out List<int>? entries))
        {
            entries.Remove(g);
            if (entries.Count == 0)
            {
                _byBlock.Remove(copy.Block);
            }
        }
    }

    /// <summary>Every metablock of ring slot <paramref name="slot"/> is reused: <see cref="Forget"/> for each.</summary>
    public void ForgetSlot(long slot, int blocksPerSegment)
    {
        if (IsEmpty)
        {
            return;
        }
        for (int i = 0; i < blocksPerSegment; i++)
        {
            Forget(checked((int)(slot * blocksPerSegment + i)));
        }
    }

    public void ForgetAll()
    {
        _byEntry.Clear();
        _byBlock.Clear();
    }

    /// <summary>Every poisoned block, with the lost copy of its first poisoned sector, in block order.</summary>
    public List<PoisonedBlock> List(int blocksPerSegment) =>
        _byBlock.OrderBy(b => b.Key)
            .Select(b =>
            {
                byte sectors = SectorsOf(b.Key);
                LostCopy first = _byEntry[b.Value[0]];
                return new PoisonedBlock(b.Key, sectors, first.SegmentId, b.Value[0] / blocksPerSegment);
            })
            .ToList();
}
