using System.Diagnostics;
using Writeboost.Cache.Format;
using Writeboost.Cache.Index;

namespace Writeboost.Cache.Core;

/// <summary>
/// The segment being filled: how many of its slots are taken, and what each slot was given when it was placed.
/// The seal writes that for a slot a later write superseded (mode 1's copy-on-write), so the kernel's replay,
/// applying the entries in order, ends the same. Which segment is open, and its buffer, are the ring's and the
/// pool's; this owns only the slots. Guarded by the device's lock. Invariant: slots below <see cref="Length"/> are
/// placed, and <see cref="Length"/> never passes the segment's blocks.
/// </summary>
internal sealed class OpenSegment
{
    private readonly long[] _placedBlock;
    private readonly byte[] _placedBits;

    public OpenSegment(int blocksPerSegment)
    {
        _placedBlock = new long[blocksPerSegment];
        _placedBits = new byte[blocksPerSegment];
    }

    /// <summary>Slots placed so far.</summary>
    public int Length { get; private set; }

    /// <summary>Every slot is placed: the segment is sealed next.</summary>
    public bool IsFull => Length == _placedBlock.Length;

    /// <summary>A new segment opens: nothing placed.</summary>
    public void Begin()
    {
        Array.Fill(_placedBlock, -1);
        Array.Clear(_placedBits);
        Length = 0;
    }

    /// <summary>The next slot holds <paramref name="sectors"/> of <paramref name="block"/> (dirty: written; clean: staged by the read cache). Returns its index.</summary>
    public int Place(long block, byte sectors, bool dirty)
    {
        Debug.Assert(!IsFull, "a placement into a full open segment");
        int index = Length++;
        _placedBlock[index] = block;
        _placedBits[index] = dirty ? sectors : (byte)0;
        return index;
    }

    /// <summary>Mode 0: a write merged into slot <paramref name="index"/> in place; it now holds <paramref name="sectors"/>.</summary>
    public void Merged(int index, byte sectors)
    {
        Debug.Assert(index < Length, "a merge into a slot not placed");
        _placedBits[index] = sectors;
    }

    /// <summary>Segments sealed full, and sealed partial (a barrier's partial log), in this device's life.</summary>
    public long FullSeals { get; private set; }

    public long PartialSeals { get; private set; }

    /// <summary>dm-writeboost's nr_partial_flushed: partial seals since the last <c>clear_stat</c>.</summary>
    public long PartialSealsSinceCleared { get; private set; }

    public void ClearStats() => PartialSealsSinceCleared = 0;

    /// <summary>
    /// Seals segment <paramref name="id"/>: writes into <paramref name="image"/> a metablock per placed slot and the
    /// header (id, length; the checksum is the buffer's, computed outside the lock), and returns its length. A slot
    /// the index still maps (<paramref name="firstGlobal"/> + slot) is written as it is now; one superseded in the
    /// open segment (mode 1's copy-on-write) as it was placed, so the kernel's replay, applying the entries in order,
    /// ends the same; one dropped by write-around as placed too, clean, which replay ignores. None is open after.
    /// </summary>
    /// <param name="partial">A barrier sealed it before it was full (counted as a partial log when it is not).</param>
    public int Seal(ulong id, Span<byte> image, CacheIndex index, int firstGlobal, int entryBytes, bool partial, FaultHooks faults)
    {
        int length = Length;
        for (int i = 0; i < length; i++)
        {
            int g = firstGlobal + i;
            MetablockOnDisk entry = index.BlockAt(g) >= 0
                ? new MetablockOnDisk(index.BlockAt(g) * Units.SectorsPerBlock, index.IsDirty(g) ? index.SectorsAt(g) : (byte)0)
                : AsPlaced(i);
            (entry with { DirtyBits = faults.DirtyBitsToSeal(entry.DirtyBits, entryBytes) }).WriteTo(image, i, entryBytes);
        }
        new SegmentHeaderOnDisk(id, 0, (byte)length).WriteTo(image);
        if (partial && length < _placedBlock.Length)
        {
            PartialSeals++;
            PartialSealsSinceCleared++;
        }
        else
        {
            FullSeals++;
        }
        Length = 0;
        return length;
    }

    /// <summary>The metablock of slot <paramref name="index"/> as it was placed (for a slot the index no longer maps).</summary>
    private MetablockOnDisk AsPlaced(int index) => new(Math.Max(0, _placedBlock[index]) * Units.SectorsPerBlock, _placedBits[index]);
}
