using System.Diagnostics;
using System.Numerics;
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
/// <para>Laid out for the write path, which looks a random block up on every write: a metablock's fields sit
/// together in one 16-byte entry, and the block map is a hash table chained through the entries themselves (as the
/// kernel's is), so finding a cached block and reading its state is two cache misses — its bucket and its
/// metablock — where a dictionary beside four arrays was up to six.</para>
/// </summary>
internal sealed class CacheIndex
{
    private const int NoMetablock = -1;
    /// <summary>In no chain: the metablock serves nothing (empty, or a superseded copy).</summary>
    private const int Unchained = -2;

    private readonly Metablock[] _metablocks;
    /// <summary>The head of each hash chain of serving metablocks (<see cref="NoMetablock"/>: none); a power of two, at least one per metablock.</summary>
    private readonly int[] _buckets;
    private readonly int _bucketShift;

    public CacheIndex(long nrSegments, int blocksPerSegment)
    {
        BlocksPerSegment = blocksPerSegment;
        long count = checked(nrSegments * blocksPerSegment);
        _metablocks = new Metablock[count];
        int bucketBits = Math.Max(4, 64 - BitOperations.LeadingZeroCount((ulong)count - 1));
        _buckets = new int[1 << bucketBits];
        _bucketShift = 64 - bucketBits;
        Reset();
    }

    public int BlocksPerSegment { get; }

    /// <summary>Metablocks holding dirty sectors (the status line's nr_dirty_caches).</summary>
    public long DirtyCount { get; private set; }

    public int GlobalOf(long slot, int indexInSegment) => checked((int)(slot * BlocksPerSegment + indexInSegment));

    public long SlotOf(int g) => g / BlocksPerSegment;

    public int IndexInSegment(int g) => g % BlocksPerSegment;

    /// <summary>The metablock that serves <paramref name="block"/>, if the cache holds it.</summary>
    public bool TryFind(long block, out int g)
    {
        for (g = _buckets[BucketOf(block)]; g != NoMetablock; g = _metablocks[g].Next)
        {
            if (_metablocks[g].Block == block)
            {
                return true;
            }
        }
        return false;
    }

    public bool Holds(long block) => TryFind(block, out _);

    /// <summary>The backing block metablock g holds (-1: none).</summary>
    public long BlockAt(int g) => _metablocks[g].Block;

    /// <summary>The sectors of its block metablock g holds.</summary>
    public byte SectorsAt(int g) => _metablocks[g].Sectors;

    public bool IsDirty(int g) => _metablocks[g].Dirty;

    public bool IsSuperseded(int g) => _metablocks[g].Superseded;

    /// <summary>
    /// The sectors a read may take from metablock g: a dirty copy's own; a clean copy only when whole (read-cached:
    /// a clean partial one was written back, and the backing store has it).
    /// </summary>
    public byte ReadableSectorsAt(int g)
    {
        ref Metablock m = ref _metablocks[g];
        return m.Dirty ? m.Sectors : m.Sectors == Units.FullBlockBits ? Units.FullBlockBits : (byte)0;
    }

    /// <summary>
    /// Metablock g (empty) now holds <paramref name="sectors"/> of <paramref name="block"/> and serves it. The one
    /// placement of every copy: a write, a read-cache staging (clean), a replayed or rebuilt segment. The caller
    /// has superseded or unmapped an older copy of the block first; a superseded copy that still served it stops.
    /// </summary>
    public void Place(int g, long block, byte sectors, bool dirty)
    {
        ref Metablock m = ref _metablocks[g];
        Debug.Assert(m.Block < 0, $"metablock {g} placed while it holds block {m.Block}");
        Debug.Assert(!TryFind(block, out int older) || _metablocks[older].Superseded,
            $"block {block} placed at {g} while metablock {older} still serves it");
        if (TryFind(block, out int previous))
        {
            Unchain(previous);
        }
        m.Block = block;
        m.Sectors = sectors;
        SetDirty(ref m, dirty);
        ref int head = ref _buckets[BucketOf(block)];
        m.Next = head;
        head = g;
    }

    /// <summary>Mode 0: a write merges into the copy in the open buffer: its sectors grow, and it is dirty.</summary>
    public void MergeInPlace(int g, byte sectors)
    {
        ref Metablock m = ref _metablocks[g];
        m.Sectors |= sectors;
        SetDirty(ref m, true);
    }

    /// <summary>
    /// An overwrite moved block g's data to a newer copy (placed straight after). A dirty copy in a sealed segment
    /// (<paramref name="inOpenSegment"/> false) stays owed to writeback: superseded, its dirtiness given to the new
    /// copy; anything else is cleared. The map is left to the placement of the newer copy.
    /// </summary>
    public void Supersede(int g, bool inOpenSegment)
    {
        ref Metablock m = ref _metablocks[g];
        if (m.Dirty && !inOpenSegment)
        {
            SetDirty(ref m, false);
            m.Superseded = true;
            return;
        }
        Clear(g);
    }

    /// <summary>Written back: metablock g's sectors are on the backing store (a superseded copy's debt is paid too).</summary>
    public void MarkClean(int g)
    {
        ref Metablock m = ref _metablocks[g];
        SetDirty(ref m, false);
        m.Superseded = false;
    }

    /// <summary>A superseded copy is no longer owed (its newer copy is durable).</summary>
    public void ForgetSuperseded(int g) => _metablocks[g].Superseded = false;

    /// <summary>Metablock g holds nothing any more, and serves nothing.</summary>
    public void Unmap(int g) => Clear(g);

    /// <summary>A ring slot is taken for a new segment: whatever its old segment still maps goes.</summary>
    public void UnmapSlot(long slot)
    {
        for (int i = 0; i < BlocksPerSegment; i++)
        {
            int g = GlobalOf(slot, i);
            if (_metablocks[g].Block >= 0)
            {
                Unmap(g);
            }
        }
    }

    /// <summary>Every metablock empty, the map empty (a format).</summary>
    public void Reset()
    {
        Array.Fill(_buckets, NoMetablock);
        Array.Fill(_metablocks, new Metablock { Block = -1, Next = Unchained });
        DirtyCount = 0;
    }

    private int BucketOf(long block) => (int)(((ulong)block * 0x9E3779B97F4A7C15UL) >> _bucketShift);

    /// <summary>Metablock g stops serving its block: out of its chain (it may hold the block still, superseded).</summary>
    private void Unchain(int g)
    {
        ref Metablock m = ref _metablocks[g];
        if (m.Next == Unchained)
        {
            return;
        }
        ref int link = ref _buckets[BucketOf(m.Block)];
        while (link != g)
        {
            Debug.Assert(link != NoMetablock, $"metablock {g} marked chained but not in its bucket's chain");
            link = ref _metablocks[link].Next;
        }
        link = m.Next;
        m.Next = Unchained;
    }

    private void Clear(int g)
    {
        Unchain(g);
        ref Metablock m = ref _metablocks[g];
        m.Superseded = false;
        SetDirty(ref m, false);
        m.Block = -1;
        m.Sectors = 0;
    }

    private void SetDirty(ref Metablock m, bool dirty)
    {
        if (m.Dirty != dirty)
        {
            m.Dirty = dirty;
            DirtyCount += dirty ? 1 : -1;
        }
    }

    /// <summary>One cache block's metadata and its link in the block map: 16 bytes, one cache line at most.</summary>
    private struct Metablock
    {
        /// <summary>Backing block (4 KiB units) held; -1: none.</summary>
        public long Block;
        /// <summary>The next metablock in this one's hash chain (<see cref="NoMetablock"/>: the last), or <see cref="Unchained"/>.</summary>
        public int Next;
        /// <summary>The sectors of that block held in the cache.</summary>
        public byte Sectors;
        /// <summary>Those sectors are newer than the backing store.</summary>
        public bool Dirty;
        /// <summary>
        /// A dirty copy an overwrite moved to a newer segment. It no longer serves reads, but until the newer copy is
        /// durable on the cache device it is the durable one: writeback still owes it to the backing store before the
        /// superblock record may pass its segment (found by the crash harness).
        /// </summary>
        public bool Superseded;
    }
}
