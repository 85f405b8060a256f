using System.Buffers.Binary;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Samples.DmWritecache;

/// <summary>Crash-consistency bugs from dm-writecache's fix history, re-created one at a time (README.md: the commits).</summary>
public enum WritecacheBug
{
    None,

    /// <summary>
    /// Before "dm writecache: handle REQ_FUA" (v5.5): a FUA write was copied into pmem and acknowledged, and its
    /// epoch was committed only by the autocommit count or timer; a crash before that discarded it.
    /// </summary>
    FuaNotCommitted,

    /// <summary>
    /// v5.7 to v5.13, "do direct write if the cache is full" without "flush origin device when writing and cache
    /// is full": with no free block, a write went straight to the origin, and a later flush only committed the
    /// cache, never the origin's volatile cache.
    /// </summary>
    DirectWriteFlushNotForwarded,

    /// <summary>
    /// The order "fix incorrect flush sequence when doing SSD mode commit" (v5.6) restored, carried to pmem: the
    /// superblock's epoch is bumped before the fence that makes the epoch's entries and data durable, so a crash
    /// can keep the new epoch and lose what it commits.
    /// </summary>
    CommitBeforeDataFenced,
}

/// <summary>The tunables of dm-writecache's table that durability depends on (its defaults).</summary>
/// <param name="HighWatermarkPercent">Writeback starts when this much of the cache is used.</param>
/// <param name="LowWatermarkPercent">And goes on until only this much is.</param>
/// <param name="AutocommitBlocks">An epoch is committed once this many blocks were written in it (the 1 s autocommit timer is not modelled: a run too short for it is a schedule the kernel allows).</param>
/// <param name="WritebackFua">Writeback writes the origin with FUA (the pmem default); false: plain writes, then one origin flush before the entries are freed (<c>nofua</c>).</param>
/// <param name="LockReleaseFences">
/// A write's release of the cache's lock completes its flushing stores, as the kernel's <c>wc_unlock</c> (a LOCK-prefixed
/// instruction on x86, which drains the CPU's write-combining buffers and orders its write-backs) does for a commit
/// another CPU runs next. False: only fences do (the pmem API's rule, which the harness judges by), README.md.
/// </param>
public sealed record WritecacheSettings(int HighWatermarkPercent = 50, int LowWatermarkPercent = 45, int AutocommitBlocks = 64, bool WritebackFua = true, bool LockReleaseFences = true)
{
    public int HighWatermarkPercent { get; } = HighWatermarkPercent is > 0 and <= 100 ? HighWatermarkPercent
        : throw new ArgumentOutOfRangeException(nameof(HighWatermarkPercent), HighWatermarkPercent, "a share of the cache, 1..100 %");

    public int LowWatermarkPercent { get; } = LowWatermarkPercent >= 0 && LowWatermarkPercent <= HighWatermarkPercent ? LowWatermarkPercent
        : throw new ArgumentOutOfRangeException(nameof(LowWatermarkPercent), LowWatermarkPercent, "at most the high watermark");

    public int AutocommitBlocks { get; } = AutocommitBlocks > 0 ? AutocommitBlocks
        : throw new ArgumentOutOfRangeException(nameof(AutocommitBlocks), AutocommitBlocks, "at least one block");
}

/// <summary>
/// dm-writecache in pmem mode (drivers/md/dm-writecache.c), re-created over a <see cref="PmemRegion"/> and an
/// origin <see cref="IBlockDevice"/>: its on-media layout and its commit, recovery and writeback protocol, with
/// 512-byte blocks. Everything is synchronous: the writeback and autocommit threads of the kernel run at the
/// moments they may (after a commit; when a writer finds no free block), one schedule among those it allows.
/// <code>
///  pmem: superblock (64 B)  [magic u32][version u32][block_size u32][pad u32][n_blocks u64][seq_count u64][0 ×32]
///        entries   (16 B each, from byte 64)  [original_sector u64][seq_count u64]   (seq_count all ones: free)
///        data      (from 64 + 16·n rounded up to the block size)  n blocks
/// </code>
/// A write takes a free block (never overwriting a committed one in place; an uncommitted one of the same sector
/// is), writes its entry with the current epoch and its data with flushing stores, and leaves them uncommitted.
/// A commit fences, bumps the superblock's epoch, fences: every entry of an older epoch is committed. Recovery
/// keeps committed entries (the newest per sector), discards uncommitted ones. Writeback writes committed blocks
/// to the origin (FUA), then frees their entries. All fields are little-endian.
/// </summary>
public sealed class WritecacheDevice : IBlockDevice
{
    public const uint Magic = 0x23489321;
    public const uint Version = 1;
    public const int BlockBytes = 512;
    private const int SuperblockBytes = 64;
    private const int EntryBytes = 16;
    private const long SeqCountOffset = 24;
    private const ulong FreeSeq = ulong.MaxValue;

    private readonly IBlockDevice _origin;
    private readonly PmemRegion _pmem;
    private readonly WritecacheBug _bug;
    private readonly WritecacheSettings _settings;
    private readonly Lock _lock = new();
    // writecache_error: the first I/O error of the cache, after which every request fails (the kernel's wc->error,
    // set once; writecache_has_error then fails every bio). Guarded by _lock.
    private IOException? _error;
    private readonly long _blocks;
    private readonly long _dataOffsetBytes;
    private readonly (ulong Sector, ulong Seq)[] _entries;
    /// <summary>The newest entry of each cached sector (committed or not).</summary>
    private readonly Dictionary<ulong, int> _newest = [];
    /// <summary>A committed entry superseded by an uncommitted one of the same sector: freed when that one is committed.</summary>
    private readonly Dictionary<ulong, int> _superseded = [];
    /// <summary>Used blocks, oldest first (writeback takes from the front).</summary>
    private readonly LinkedList<int> _lru = [];
    private readonly LinkedListNode<int>?[] _lruNodes;
    private readonly Queue<int> _free = [];
    private ulong _seq;
    private int _uncommitted;

    /// <summary>Opens the cache: initialises a blank region (its first 8 bytes zero), recovers any other.</summary>
    /// <exception cref="InvalidDataException">the region holds something else, or metadata recovery cannot trust.</exception>
    public WritecacheDevice(IBlockDevice origin, PmemRegion pmem, WritecacheSettings? settings = null, WritecacheBug bug = WritecacheBug.None)
    {
        ArgumentNullException.ThrowIfNull(origin);
        ArgumentNullException.ThrowIfNull(pmem);
        _origin = origin;
        _pmem = pmem;
        _bug = bug;
        _settings = settings ?? new WritecacheSettings();
        SizeBytes = origin.SizeBytes / BlockBytes * BlockBytes;
        Span<byte> superblock = stackalloc byte[SuperblockBytes];
        pmem.Read(0, superblock);
        if (BinaryPrimitives.ReadUInt32LittleEndian(superblock) == 0)
        {
            // The kernel initialises only when magic and version are both zero; its init writes the magic last, so
            // a crash during it leaves version 1 without a magic, which it then refuses. Nothing was ever
            // acknowledged on such a region: initialising again loses nothing (README.md, "Simplified").
            Initialise(superblock);
        }
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(superblock);
        if (magic != Magic)
        {
            throw new InvalidDataException($"{pmem.Name}: not a dm-writecache superblock (magic 0x{magic:x8})");
        }
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(superblock[4..]);
        uint blockSize = BinaryPrimitives.ReadUInt32LittleEndian(superblock[8..]);
        if (version != Version || blockSize != BlockBytes)
        {
            throw new InvalidDataException($"{pmem.Name}: dm-writecache version {version}, block size {blockSize}: this model reads version {Version}, {BlockBytes}-byte blocks");
        }
        // As the kernel's constructor: a block count whose entries and data overflow, or do not fit, is refused.
        ulong blocks = BinaryPrimitives.ReadUInt64LittleEndian(superblock[16..]);
        if (blocks == 0 || blocks > (ulong)(pmem.LengthBytes / BlockBytes) || DataOffset((long)blocks) + (long)blocks * BlockBytes > pmem.LengthBytes)
        {
            throw new InvalidDataException($"{pmem.Name}: {blocks} blocks do not fit in {pmem.LengthBytes} bytes");
        }
        _blocks = (long)blocks;
        _dataOffsetBytes = DataOffset(_blocks);
        _seq = BinaryPrimitives.ReadUInt64LittleEndian(superblock[(int)SeqCountOffset..]);
        _entries = new (ulong, ulong)[_blocks];
        _lruNodes = new LinkedListNode<int>?[_blocks];
        Resume();
    }

    public string Name => $"dm-writecache({_origin.Name}, {_pmem.Name})";
    public int SectorSizeBytes => BlockBytes;
    public long SizeBytes { get; }
    public bool DurabilityIsCheap => true;

    /// <summary>What the last open's recovery found: committed entries kept, uncommitted ones discarded, older duplicates freed.</summary>
    public (int Kept, int Discarded, int Duplicates) Recovered { get; private set; }

    /// <summary>The blocks the cache holds (n_blocks).</summary>
    public long Blocks => _blocks;

    /// <summary>The epoch: entries with a lower seq_count are committed.</summary>
    public ulong SeqCount => _seq;

    /// <summary>Where the data blocks start: after the superblock and the entries, rounded up to the block size.</summary>
    public static long DataOffset(long blocks) => (SuperblockBytes + EntryBytes * blocks + BlockBytes - 1) / BlockBytes * BlockBytes;

    /// <summary>Where the metadata of a region of <paramref name="regionBytes"/> is: the superblock, then the entries (original sector, seq_count) of its blocks.</summary>
    public static ((long OffsetBytes, int LengthBytes) Superblock, (long OffsetBytes, long LengthBytes) Entries) MetadataOf(long regionBytes) =>
        ((0, SuperblockBytes), (SuperblockBytes, EntryBytes * BlocksFor(regionBytes)));

    /// <summary>The most blocks a region holds (calculate_memory_size): as many as fit with their entries.</summary>
    public static long BlocksFor(long regionBytes)
    {
        long n = regionBytes / (BlockBytes + EntryBytes);
        while (n > 0 && DataOffset(n) + n * BlockBytes > regionBytes)
        {
            n--;
        }
        return n > 0 ? n : throw new ArgumentOutOfRangeException(nameof(regionBytes), regionBytes, "too small for one block");
    }

    /// <summary>init_memory: every field but the magic, every entry free, a fence, then the magic and a fence.</summary>
    private void Initialise(Span<byte> superblock)
    {
        long blocks = BlocksFor(_pmem.LengthBytes);
        superblock.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(superblock[4..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(superblock[8..], BlockBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(superblock[16..], (ulong)blocks);
        _pmem.WriteFlush(0, superblock);
        byte[] freeEntries = new byte[EntryBytes * blocks];
        freeEntries.AsSpan().Fill(0xff);
        _pmem.WriteFlush(SuperblockBytes, freeEntries);
        _pmem.Drain();
        BinaryPrimitives.WriteUInt32LittleEndian(superblock, Magic);
        _pmem.WriteFlush(0, superblock[..4]);
        _pmem.Drain();
    }

    /// <summary>writecache_resume: committed entries kept (the newest per sector), everything else freed, the repairs fenced.</summary>
    private void Resume()
    {
        byte[] table = new byte[EntryBytes * _blocks];
        _pmem.Read(SuperblockBytes, table);
        bool repaired = false;
        int discarded = 0, duplicates = 0;
        for (int b = 0; b < _blocks; b++)
        {
            ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(b * EntryBytes));
            ulong seq = BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(b * EntryBytes + 8));
            _entries[b] = (sector, seq);
            if (seq >= _seq)
            {
                if (seq != FreeSeq)
                {
                    ClearSeq(b); // written in the epoch the crash interrupted: it would be committed by the next bump
                    repaired = true;
                    discarded++;
                }
                _free.Enqueue(b);
                continue;
            }
            if (_newest.TryGetValue(sector, out int old))
            {
                if (_entries[old].Seq == seq)
                {
                    throw new InvalidDataException($"{_pmem.Name}: two identical entries for sector {sector} (blocks {old} and {b}, seq_count {seq})");
                }
                int older = _entries[old].Seq > seq ? b : old;
                ClearSeq(older);
                _free.Enqueue(older);
                repaired = true;
                duplicates++;
                if (older == b)
                {
                    continue;
                }
                _lru.Remove(_lruNodes[old]!);
                _lruNodes[old] = null;
            }
            _newest[sector] = b;
            _lruNodes[b] = _lru.AddLast(b);
        }
        if (repaired)
        {
            _pmem.Drain();
        }
        Recovered = (_newest.Count, discarded, duplicates);
    }

    public void Read(long offsetBytes, Span<byte> destination)
    {
        CheckRange(offsetBytes, destination.Length);
        lock (_lock)
        {
            ThrowIfFailed();
            for (int i = 0; i < destination.Length / BlockBytes; i++)
            {
                ulong sector = (ulong)(offsetBytes / BlockBytes + i);
                Span<byte> block = destination.Slice(i * BlockBytes, BlockBytes);
                if (_newest.TryGetValue(sector, out int e))
                {
                    try
                    {
                        _pmem.Read(DataAt(e), block);
                    }
                    catch (IOException error)
                    {
                        throw Failed(error); // the kernel's "hardware memory error when reading data"
                    }
                }
                else
                {
                    _origin.Read((long)sector * BlockBytes, block);
                }
            }
        }
    }

    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        CheckRange(offsetBytes, source.Length);
        bool fua = options.HasFlag(WriteOptions.Fua);
        lock (_lock)
        {
            ThrowIfFailed();
            try
            {
                for (int i = 0; i < source.Length / BlockBytes; i++)
                {
                    WriteBlock((ulong)(offsetBytes / BlockBytes + i), source.Slice(i * BlockBytes, BlockBytes), fua);
                }
                if ((fua && _bug != WritecacheBug.FuaNotCommitted) || _uncommitted >= _settings.AutocommitBlocks)
                {
                    Commit();
                }
                if (_settings.LockReleaseFences)
                {
                    _pmem.Drain(); // wc_unlock's locked instruction, made explicit: the harness does not see locks
                }
            }
            catch (IOException error)
            {
                throw Failed(error);
            }
        }
    }

    /// <summary>REQ_PREFLUSH: commits the epoch. The origin gets nothing: in pmem mode it only ever receives FUA writebacks (or flushed ones).</summary>
    public void Flush()
    {
        lock (_lock)
        {
            ThrowIfFailed();
            try
            {
                Commit();
            }
            catch (IOException error)
            {
                throw Failed(error);
            }
        }
    }

    /// <summary>writecache_has_error: a cache that met an I/O error fails every request after it.</summary>
    private void ThrowIfFailed()
    {
        if (_error is not null)
        {
            throw new IOException($"{Name}: the cache has failed after an I/O error (writecache_error): {_error.Message}", _error);
        }
    }

    /// <summary>writecache_error: the first error is kept (what the cache holds in memory may no longer be what pmem and the origin hold); the request that met it fails with it.</summary>
    private IOException Failed(IOException error)
    {
        _error ??= error;
        return error;
    }

    private void WriteBlock(ulong sector, ReadOnlySpan<byte> data, bool fua)
    {
        bool cached = _newest.TryGetValue(sector, out int current);
        if (cached && _entries[current].Seq >= _seq)
        {
            _pmem.WriteFlush(DataAt(current), data); // uncommitted: overwritten in place
            return;
        }
        if (_free.Count == 0)
        {
            if (_bug == WritecacheBug.DirectWriteFlushNotForwarded && !cached)
            {
                _origin.Write((long)sector * BlockBytes, data, fua ? WriteOptions.Fua : WriteOptions.None); // the bio remapped, its flags with it
                return;
            }
            Writeback(untilFree: 1); // the writer waits for writeback to free a block
            cached = _newest.TryGetValue(sector, out current); // writeback may have freed the sector's block
        }
        int e = _free.Dequeue();
        WriteEntry(e, sector, _seq);
        _pmem.WriteFlush(DataAt(e), data);
        if (cached)
        {
            _superseded[sector] = current; // committed: kept until the new one is
        }
        _newest[sector] = e;
        _lruNodes[e] = _lru.AddLast(e);
        _uncommitted++;
    }

    /// <summary>A commit, then the writeback thread's turn when the cache is used above its high watermark.</summary>
    private void Commit()
    {
        CommitEpoch();
        if (_free.Count * 100L <= _blocks * (100 - _settings.HighWatermarkPercent))
        {
            Writeback(untilFree: _blocks * (100 - _settings.LowWatermarkPercent) / 100);
        }
    }

    /// <summary>writecache_flush: fence the epoch's entries and data, bump the epoch, fence; then free the versions it superseded.</summary>
    private void CommitEpoch()
    {
        if (_uncommitted == 0)
        {
            return;
        }
        if (_bug != WritecacheBug.CommitBeforeDataFenced)
        {
            _pmem.Drain();
        }
        _seq++;
        _pmem.Store64(SeqCountOffset, _seq);
        _pmem.Flush(SeqCountOffset, sizeof(ulong));
        _pmem.Drain();
        _uncommitted = 0;
        if (_superseded.Count > 0)
        {
            foreach (int old in _superseded.Values)
            {
                FreeEntry(old);
            }
            _superseded.Clear();
            _pmem.Drain();
        }
    }

    /// <summary>
    /// Writes the oldest blocks to the origin, makes them durable there, then frees their entries and fences: an
    /// entry is freed only once the origin holds its data. Only committed blocks are written back: the epoch is
    /// committed first (the kernel commits when its next candidate is uncommitted; sooner is what its autocommit
    /// timer may do anyway).
    /// </summary>
    private void Writeback(long untilFree)
    {
        CommitEpoch();
        List<int> batch = [];
        for (LinkedListNode<int>? node = _lru.First; node is not null && _free.Count + batch.Count < untilFree; node = node.Next)
        {
            batch.Add(node.Value);
        }
        byte[] block = new byte[BlockBytes];
        foreach (int e in batch)
        {
            _pmem.Read(DataAt(e), block);
            _origin.Write((long)_entries[e].Sector * BlockBytes, block, _settings.WritebackFua ? WriteOptions.Fua : WriteOptions.None);
        }
        if (!_settings.WritebackFua && batch.Count > 0)
        {
            _origin.Flush();
        }
        foreach (int e in batch)
        {
            FreeEntry(e);
        }
        if (batch.Count > 0)
        {
            _pmem.Drain();
        }
    }

    /// <summary>writecache_free_entry: out of the index, seq_count set free (the sector left stale), to the free list's tail.</summary>
    private void FreeEntry(int e)
    {
        ulong sector = _entries[e].Sector;
        if (_newest.TryGetValue(sector, out int newest) && newest == e)
        {
            _newest.Remove(sector);
        }
        if (_superseded.TryGetValue(sector, out int old) && old == e)
        {
            _superseded.Remove(sector);
        }
        if (_lruNodes[e] is { } node)
        {
            _lru.Remove(node);
            _lruNodes[e] = null;
        }
        ClearSeq(e);
        _free.Enqueue(e);
    }

    /// <summary>write_original_sector_seq_count: two 8-byte flushing stores, not fenced (the next commit's fence covers them).</summary>
    private void WriteEntry(int e, ulong sector, ulong seq)
    {
        _entries[e] = (sector, seq);
        _pmem.Store64(EntryAt(e), sector);
        _pmem.Store64(EntryAt(e) + 8, seq);
        _pmem.Flush(EntryAt(e), EntryBytes);
    }

    private void ClearSeq(int e)
    {
        _entries[e] = (_entries[e].Sector, FreeSeq);
        _pmem.Store64(EntryAt(e) + 8, FreeSeq);
        _pmem.Flush(EntryAt(e) + 8, sizeof(ulong));
    }

    private static long EntryAt(int e) => SuperblockBytes + (long)e * EntryBytes;

    private long DataAt(int e) => _dataOffsetBytes + (long)e * BlockBytes;

    private void CheckRange(long offsetBytes, int lengthBytes)
    {
        if (offsetBytes < 0 || offsetBytes % BlockBytes != 0 || lengthBytes % BlockBytes != 0 || offsetBytes + lengthBytes > SizeBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(offsetBytes), $"{Name}: {lengthBytes} bytes at {offsetBytes}: not whole {BlockBytes}-byte blocks within {SizeBytes} bytes");
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_error is null)
            {
                Commit();
            }
        }
    }
}
