using System.Diagnostics;
using Writeboost.Cache.Format;

namespace Writeboost.Cache.Index;

/// <summary>
/// What the cache holds: one metablock per cache block — numbered g = ring slot × blocks per segment + index in the
/// segment — saying which backing block it holds, which of its sectors, whether they are dirty (newer than the
/// backing store) and whether an overwrite superseded it; and the block map, from a backing block to the one
/// metablock that serves it. The dirty count is kept here, with every change of dirtiness.
/// <list type="bullet">
/// <item>A mapped block's metablock holds that block: <c>map[b] = g ⇒ BlockAt(g) = b</c>.</item>
/// <item>A superseded copy is mapped by nothing and holds no dirty bit of its own: it is owed to writeback (see
/// <see cref="Supersede"/>) and then cleared.</item>
/// </list>
/// The device's lock guards it; it does not lock.
/// </summary>
internal sealed class CacheIndex
{
    private readonly long[] _block;       // backing block (4 KiB units) held, -1: none
    private readonly byte[] _sectors;     // sectors of that block held in the cache
    private readonly bool[] _dirty;       // true: those sectors are newer than the backing store
    // A dirty copy an overwrite moved to a newer segment. It no longer serves reads, but until the newer copy
    // is durable on the cache device it is the durable one: writeback still owes it to the backing store
    // before the superblock record may pass its segment (found by the crash harness).
    private readonly bool[] _superseded;
    private readonly Dictionary<long, int> _map;

    public CacheIndex(long nrSegments, int blocksPerSegment)
    {
        BlocksPerSegment = blocksPerSegment;
        long count = checked(nrSegments * blocksPerSegment);
        _block = new long[count];
        Array.Fill(_block, -1);
        _sectors = new byte[count];
        _dirty = new bool[count];
        _superseded = new bool[count];
        // Sized for a full cache up front: rehashing a large map on the write path stalls writers.
        _map = new Dictionary<long, int>((int)Math.Min(count, 1 << 22));
    }

    public int BlocksPerSegment { get; }

    /// <summary>Metablocks holding dirty sectors (the status line's nr_dirty_caches).</summary>
    public long DirtyCount { get; private set; }

    public int GlobalOf(long slot, int indexInSegment) => checked((int)(slot * BlocksPerSegment + indexInSegment));

    public long SlotOf(int g) => g / BlocksPerSegment;

    public int IndexInSegment(int g) => g % BlocksPerSegment;

    /// <summary>The metablock that serves <paramref name="block"/>, if the cache holds it.</summary>
    public bool TryFind(long block, out int g) => _map.TryGetValue(block, out g);

    public bool Holds(long block) => _map.ContainsKey(block);

    /// <summary>The backing block metablock g holds (-1: none).</summary>
    public long BlockAt(int g) => _block[g];

    /// <summary>The sectors of its block metablock g holds.</summary>
    public byte SectorsAt(int g) => _sectors[g];

    public bool IsDirty(int g) => _dirty[g];

    public bool IsSuperseded(int g) => _superseded[g];

    /// <summary>
    /// The sectors a read may take from metablock g: a dirty copy's own; a clean copy only when whole (read-cached:
    /// a clean partial one was written back, and the backing store has it).
    /// </summary>
    public byte ReadableSectorsAt(int g) => _dirty[g] ? _sectors[g] : _sectors[g] == Units.FullBlockBits ? Units.FullBlockBits : (byte)0;

    /// <summary>
    /// Metablock g (empty) now holds <paramref name="sectors"/> of <paramref name="block"/> and serves it. The one
    /// placement of every copy: a write, a read-cache staging (clean), a replayed or rebuilt segment. The caller
    /// has superseded or unmapped an older copy of the block first.
    /// </summary>
    public void Place(int g, long block, byte sectors, bool dirty)
    {
        Debug.Assert(_block[g] < 0, $"metablock {g} placed while it holds block {_block[g]}");
        Debug.Assert(!_map.TryGetValue(block, out int older) || _block[older] != block || _superseded[older],
            $"block {block} placed at {g} while metablock {older} still serves it");
        _block[g] = block;
        _sectors[g] = sectors;
        SetDirty(g, dirty);
        _map[block] = g;
    }

    /// <summary>Mode 0: a write merges into the copy in the open buffer: its sectors grow, and it is dirty.</summary>
    public void MergeInPlace(int g, byte sectors)
    {
        _sectors[g] |= sectors;
        SetDirty(g, true);
    }

    /// <summary>
    /// An overwrite moved block g's data to a newer copy (placed straight after). A dirty copy in a sealed segment
    /// (<paramref name="inOpenSegment"/> false) stays owed to writeback: superseded, its dirtiness given to the new
    /// copy; anything else is cleared. The map is left to the placement of the newer copy.
    /// </summary>
    public void Supersede(int g, bool inOpenSegment)
    {
        if (_dirty[g] && !inOpenSegment)
        {
            SetDirty(g, false);
            _superseded[g] = true;
            return;
        }
        Clear(g);
    }

    /// <summary>Written back: metablock g's sectors are on the backing store (a superseded copy's debt is paid too).</summary>
    public void MarkClean(int g)
    {
        SetDirty(g, false);
        _superseded[g] = false;
    }

    /// <summary>A superseded copy is no longer owed (its newer copy is durable).</summary>
    public void ForgetSuperseded(int g) => _superseded[g] = false;

    /// <summary>Metablock g holds nothing any more, and serves nothing.</summary>
    public void Unmap(int g)
    {
        long block = _block[g];
        if (block >= 0 && _map.TryGetValue(block, out int current) && current == g)
        {
            _map.Remove(block);
        }
        Clear(g);
    }

    /// <summary>A ring slot is taken for a new segment: whatever its old segment still maps goes.</summary>
    public void UnmapSlot(long slot)
    {
        for (int i = 0; i < BlocksPerSegment; i++)
        {
            int g = GlobalOf(slot, i);
            if (_block[g] >= 0)
            {
                Unmap(g);
            }
        }
    }

    /// <summary>Every metablock empty, the map empty (a format).</summary>
    public void Reset()
    {
        _map.Clear();
        Array.Fill(_block, -1);
        Array.Clear(_sectors);
        Array.Clear(_dirty);
        Array.Clear(_superseded);
        DirtyCount = 0;
    }

    private void Clear(int g)
    {
        _superseded[g] = false;
        SetDirty(g, false);
        _block[g] = -1;
        _sectors[g] = 0;
    }

    private void SetDirty(int g, bool dirty)
    {
        if (_dirty[g] != dirty)
        {
            _dirty[g] = dirty;
            DirtyCount += dirty ? 1 : -1;
        }
    }
}
