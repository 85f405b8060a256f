using System.Buffers.Binary;
using Writeboost.Cache.Format;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Samples.DmPcache;

/// <summary>The crash-consistency bugs fixed in dm-pcache after its merge (Linux 6.18), re-created one at a time (README.md: the commits).</summary>
public enum PcacheBug
{
    None,

    /// <summary>
    /// Before ebbb90344a7d "dm-pcache: advance slot index before writing slot": after a start, the first update of
    /// each metadata record (cache_info, a tail position, a segment's info or generation) overwrote the copy it had
    /// just loaded, the newest, instead of the other one. A torn write leaves an older copy or none.
    /// </summary>
    WriteOverLatestCopy,

    /// <summary>
    /// Before the same commit: <c>cache_info_write</c> had no fence after its flushing copy, so the start (and a
    /// gc_percent message) completed before cache_info was durable.
    /// </summary>
    InfoWriteWithoutFence,

    /// <summary>
    /// Before ee7633178321 "dm pcache: fix cache info indexing": cache_info's second copy was addressed with the
    /// record's size (24 bytes) as stride instead of its 4 KiB slot, where recovery never looks, and the slot
    /// index was never set from the copy loaded.
    /// </summary>
    CacheInfoIndexing,
}

/// <summary>
/// dm-pcache (drivers/md/dm-pcache, Linux 6.18) re-created over a <see cref="PmemRegion"/> and a backing
/// <see cref="IBlockDevice"/>: its layout, its log of key sets, its versioned metadata, writeback and gc, with one
/// key set head and one data head (one CPU), and segments scaled down from 16 MiB. Everything is synchronous:
/// writeback and gc run at moments their workers may.
/// <code>
///  pmem: 4 KiB superblock [crc u32][flags u32][magic u64][seg_num u32]      (one copy)
///        8 KiB cache_info ×2, 4 KiB apart [header 8][seg_id u32][n_segs u32][flags u32][reserved u32]
///       16 KiB cache_ctrl: key_tail ×2, dirty_tail ×2, 16 B each [header 8][cache_seg_id u32][seg_off u32]
///       20 KiB segments: [seg_info ×2, 4 KiB apart][gen ×2 at 8 KiB][data from 12 KiB]
///  header: [crc32c u32][seq u8][version u8][res u16]      kset: [crc u32][key_num | next_seg u32][magic u64][flags u64] keys of 40 B
/// </code>
/// A write's data is copied into the data head's segment and fenced, then its key joins the open key set; the key
/// set is written (with a zero terminator after it) and fenced on a FUA write, a flush, or when full. Recovery
/// replays the key sets from key_tail to the first invalid one, dropping keys of a segment whose generation moved
/// on. Writeback writes a key set's data to the backing device, flushes it, then moves dirty_tail past it; gc
/// releases the segments of key sets behind dirty_tail, bumping a freed segment's generation before key_tail
/// moves past it.
/// </summary>
public sealed class PcacheDevice : IBlockDevice
{
    public const ulong Magic = 0x65B05EFA96C596EF;
    public const ulong KsetMagic = 0x676894a64e164f1a;
    public const int SuperblockOffset = 4096;
    public const int CacheInfoOffset = 8192;
    public const int CacheInfoSlotBytes = 4096;
    public const int CacheCtrlOffset = 16384;
    public const int SegmentsOffset = 20480;
    public const int SegmentDataOffset = 12288;
    public const int KsetHeaderBytes = 24;
    public const int KeyBytes = 40;
    public const int KsetMaxKeys = 128;
    private const int SectorBytes = 512;
    private const int CacheInfoBytes = 24;
    private const int PositionBytes = 16;
    private const uint InfoInitDone = 1u << 1;
    private const int DefaultGcPercent = 70;
    private const uint SegHasNext = 1;
    private const uint SegTypeData = 1u << 1;
    private const ulong KsetLast = 1;

    private readonly IBlockDevice _backing;
    private readonly PmemRegion _pmem;
    private readonly PcacheBug _bug;
    private readonly int _segmentBytes;
    private readonly Lock _lock = new();
    // The first I/O error: the model stops there, every request after it fails (its in-memory index may no longer be
    // what the media hold). A simplification: the kernel's own error paths are not re-created. Guarded by _lock.
    private IOException? _error;
    private readonly int _segments;
    private readonly PcacheMeta _info;
    private readonly PcacheMeta _keyTailMeta;
    private readonly PcacheMeta _dirtyTailMeta;
    private readonly PcacheMeta[] _segInfo;
    private readonly PcacheMeta[] _segGenMeta;
    private readonly ulong[] _gen;
    private readonly int[] _refs;
    private readonly bool[] _used;
    private readonly Dictionary<long, (int Segment, int DataOffset, ulong Gen)> _index = [];
    private readonly List<byte[]> _openKeys = [];
    private uint _infoFlags;
    private (int Segment, int Offset) _keyTail;
    private (int Segment, int Offset) _dirtyTail;
    private (int Segment, int Offset) _keyHead;
    private (int Segment, int Offset) _lastKset = (-1, 0);
    private (int Segment, int Offset)? _dataHead;

    /// <summary>Starts the cache: formats a region without a superblock, loads and replays any other.</summary>
    /// <exception cref="InvalidDataException">the superblock or a tail position has no valid copy, or the region is not a pcache.</exception>
    public PcacheDevice(IBlockDevice backing, PmemRegion pmem, int segmentBytes = 32 * 1024, PcacheBug bug = PcacheBug.None)
    {
        ArgumentNullException.ThrowIfNull(backing);
        ArgumentNullException.ThrowIfNull(pmem);
        if (segmentBytes < SegmentDataOffset + 4096 || segmentBytes % 4096 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(segmentBytes), segmentBytes, "whole 4 KiB pages, with room for data after the segment's 12 KiB of metadata");
        }
        _backing = backing;
        _pmem = pmem;
        _bug = bug;
        _segmentBytes = segmentBytes;
        SizeBytes = backing.SizeBytes / SectorBytes * SectorBytes;
        _segments = StartSuperblock();
        _info = new PcacheMeta(pmem, CacheInfoOffset, CacheInfoSlotBytes, CacheInfoBytes, "cache_info");
        _keyTailMeta = new PcacheMeta(pmem, CacheCtrlOffset, PositionBytes, PositionBytes, "key_tail");
        _dirtyTailMeta = new PcacheMeta(pmem, CacheCtrlOffset + 2 * PositionBytes, PositionBytes, PositionBytes, "dirty_tail");
        _segInfo = new PcacheMeta[_segments];
        _segGenMeta = new PcacheMeta[_segments];
        for (int s = 0; s < _segments; s++)
        {
            _segInfo[s] = new PcacheMeta(pmem, SegmentAt(s), 4096, 16, $"segment {s} info");
            _segGenMeta[s] = new PcacheMeta(pmem, SegmentAt(s) + 8192, 16, 16, $"segment {s} gen");
        }
        _gen = new ulong[_segments];
        _refs = new int[_segments];
        _used = new bool[_segments];
        Start();
    }

    public string Name => $"dm-pcache({_backing.Name}, {_pmem.Name})";
    public int SectorSizeBytes => SectorBytes;
    public long SizeBytes { get; }
    public bool DurabilityIsCheap => true;

    /// <summary>What the start found: a new cache (formatted), key sets and keys replayed, stale keys dropped.</summary>
    public (bool NewCache, int Ksets, int Keys, int Stale) Started { get; private set; }

    public int Segments => _segments;

    /// <summary>Where replay starts (gc moves it) and where writeback resumes.</summary>
    public (int Segment, int Offset) KeyTail => _keyTail;

    public (int Segment, int Offset) DirtyTail => _dirtyTail;

    /// <summary>A segment's generation: bumped each time gc frees it, so keys written before are stale.</summary>
    public ulong Generation(int segment) => _gen[segment];

    /// <summary>
    /// What the start met that the next update must not make worse: a record with one valid copy (right after a
    /// format, or after a crash tore the other), which an update written over the newest copy would leave with none.
    /// </summary>
    public IReadOnlyCollection<string> Debris => _debris;

    private readonly SortedSet<string> _debris = new(StringComparer.Ordinal);

    private int DataBytes => _segmentBytes - SegmentDataOffset;

    private long SegmentAt(int segment) => SegmentsOffset + (long)segment * _segmentBytes;

    /// <summary>
    /// Where the fixed metadata of a cache of <paramref name="segments"/> segments is (both copies of each record, as
    /// the constructor places them): the superblock, cache_info, the tail positions, each segment's info and
    /// generation. The key sets are in the log and move with it.
    /// </summary>
    public static IEnumerable<(string Name, long OffsetBytes, int LengthBytes)> MetadataOf(int segments, int segmentBytes)
    {
        yield return ("superblock", SuperblockOffset, 24);
        yield return ("cache_info", CacheInfoOffset, CacheInfoBytes);
        yield return ("cache_info", CacheInfoOffset + CacheInfoSlotBytes, CacheInfoBytes);
        yield return ("tail positions", CacheCtrlOffset, 4 * PositionBytes); // key_tail's two copies, then dirty_tail's
        for (int s = 0; s < segments; s++)
        {
            long at = SegmentsOffset + (long)s * segmentBytes;
            yield return ("segment info", at, 16);
            yield return ("segment info", at + 4096, 16);
            yield return ("segment generation", at + 8192, 2 * 16);
        }
    }

    private long DataAt((int Segment, int Offset) position) => SegmentAt(position.Segment) + SegmentDataOffset + position.Offset;

    /// <summary>The superblock (sb_init / sb_validate): formatted when its magic reads zero, else checked; the segment count.</summary>
    private int StartSuperblock()
    {
        byte[] sb = new byte[24];
        _pmem.Read(SuperblockOffset, sb);
        if (BinaryPrimitives.ReadUInt64LittleEndian(sb.AsSpan(8)) == 0)
        {
            int count = (int)((_pmem.LengthBytes - SegmentsOffset) / _segmentBytes);
            if (count < 2)
            {
                throw new ArgumentOutOfRangeException(nameof(_pmem), _pmem.LengthBytes, "too small for two segments");
            }
            _pmem.WriteFlush(CacheInfoOffset, new byte[CacheCtrlOffset + 4096 - CacheInfoOffset]); // the cache_info slots and cache_ctrl zeroed
            Array.Clear(sb);
            BinaryPrimitives.WriteUInt64LittleEndian(sb.AsSpan(8), Magic);
            BinaryPrimitives.WriteUInt32LittleEndian(sb.AsSpan(16), (uint)count);
            BinaryPrimitives.WriteUInt32LittleEndian(sb, Crc32C.Append(PcacheMeta.CrcSeed, sb.AsSpan(4)));
            _pmem.WriteFlush(SuperblockOffset, sb);
            _pmem.Drain();
        }
        if (BinaryPrimitives.ReadUInt64LittleEndian(sb.AsSpan(8)) != Magic || BinaryPrimitives.ReadUInt32LittleEndian(sb) != Crc32C.Append(PcacheMeta.CrcSeed, sb.AsSpan(4)))
        {
            throw new InvalidDataException($"{_pmem.Name}: not a dm-pcache superblock (magic or crc)");
        }
        int segments = (int)BinaryPrimitives.ReadUInt32LittleEndian(sb.AsSpan(16));
        if (segments < 2 || SegmentAt(segments) > _pmem.LengthBytes)
        {
            throw new InvalidDataException($"{_pmem.Name}: {segments} segments do not fit");
        }
        return segments;
    }

    /// <summary>pcache_cache_start: cache_info, the segments, the tails, the replay; then INIT_DONE written.</summary>
    private void Start()
    {
        byte[]? info = _info.Load(setIndex: _bug != PcacheBug.CacheInfoIndexing);
        bool newCache = info is null;
        if (newCache)
        {
            // No valid cache_info: a new cache (cache_info_init's default), whatever the segments hold.
            _infoFlags = (uint)DefaultGcPercent << 6;
            for (int s = 0; s < _segments; s++)
            {
                byte[] segInfo = new byte[8];
                BinaryPrimitives.WriteUInt32LittleEndian(segInfo, s < _segments - 1 ? SegHasNext | SegTypeData : SegTypeData);
                BinaryPrimitives.WriteUInt32LittleEndian(segInfo.AsSpan(4), (uint)(s + 1));
                _segInfo[s].Write(segInfo);
                WriteGen(s);
            }
            _keyHead = (AllocateSegment(), 0);
            _pmem.WriteFlush(DataAt(_keyHead), new byte[KsetHeaderBytes]);
            _keyTail = _dirtyTail = _keyHead;
            WriteTail(_keyTailMeta, _keyTail);
            WriteTail(_dirtyTailMeta, _dirtyTail);
        }
        else
        {
            _infoFlags = BinaryPrimitives.ReadUInt32LittleEndian(info!.AsSpan(8));
            for (int s = 0; s < _segments; s++)
            {
                _ = _segInfo[s].Load() ?? throw new InvalidDataException($"{_pmem.Name}: segment {s} has no valid info");
                _gen[s] = _segGenMeta[s].Load() is { } gen ? BinaryPrimitives.ReadUInt64LittleEndian(gen) : 0;
            }
            _keyTail = ReadTail(_keyTailMeta);
            _dirtyTail = ReadTail(_dirtyTailMeta);
            foreach (PcacheMeta meta in new[] { _info, _keyTailMeta, _dirtyTailMeta }.Concat(_segGenMeta))
            {
                if (meta.ValidCopies == 1)
                {
                    _debris.Add($"{(meta.Name.StartsWith("segment", StringComparison.Ordinal) ? "a segment gen" : meta.Name)} with one valid copy");
                }
            }
        }
        Started = Replay(newCache);
        _infoFlags |= InfoInitDone;
        WriteInfo();
    }

    /// <summary>cache_replay: key sets from key_tail until one does not check out; keys of a reused segment dropped.</summary>
    private (bool, int, int, int) Replay(bool newCache)
    {
        int ksets = 0, keys = 0, stale = 0;
        (int Segment, int Offset) at = _keyTail;
        _used[at.Segment] = true;
        while (ReadKset(at) is { } kset)
        {
            if (kset.Last)
            {
                at = (kset.NextSegment, 0);
                _used[at.Segment] = true;
                continue;
            }
            ksets++;
            foreach (byte[] key in kset.Keys)
            {
                (long off, int len, int segment, int segOff, ulong gen) = DecodeKey(key);
                _refs[segment]++;
                _used[segment] = true;
                keys++;
                if (gen < _gen[segment])
                {
                    stale++;
                    continue;
                }
                Index(off, len, segment, segOff, gen);
            }
            _lastKset = at;
            at = (at.Segment, at.Offset + kset.Bytes);
        }
        _keyHead = at;
        return (newCache, ksets, keys, stale);
    }

    public void Read(long offsetBytes, Span<byte> destination)
    {
        CheckRange(offsetBytes, destination.Length);
        lock (_lock)
        {
            ThrowIfFailed();
            for (int i = 0; i < destination.Length / SectorBytes; i++)
            {
                long sector = offsetBytes / SectorBytes + i;
                Span<byte> block = destination.Slice(i * SectorBytes, SectorBytes);
                if (_index.TryGetValue(sector, out var cached) && cached.Gen == _gen[cached.Segment])
                {
                    try
                    {
                        _pmem.Read(DataAt((cached.Segment, cached.DataOffset)), block);
                    }
                    catch (IOException error)
                    {
                        throw Failed(error);
                    }
                }
                else
                {
                    _backing.Read(sector * SectorBytes, block);
                }
            }
        }
    }

    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        CheckRange(offsetBytes, source.Length);
        lock (_lock)
        {
            ThrowIfFailed();
            try
            {
                WriteLocked(offsetBytes, source, options);
            }
            catch (IOException error)
            {
                throw Failed(error);
            }
        }
    }

    private void WriteLocked(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options)
    {
        {
            while (!source.IsEmpty)
            {
                if (_dataHead is not { } head || head.Offset + SectorBytes > DataBytes)
                {
                    if (_dataHead is { } full)
                    {
                        Put(full.Segment);
                    }
                    _dataHead = null;
                    int segment = AllocateSegment(mayCloseKset: true);
                    _refs[segment]++; // the data head's own reference
                    _dataHead = head = (segment, 0);
                }
                int length = Math.Min(source.Length, (DataBytes - head.Offset) / SectorBytes * SectorBytes);
                _pmem.WriteFlush(DataAt(head), source[..length]);
                _pmem.Drain(); // the data durable before its key can be
                byte[] key = EncodeKey(offsetBytes, length, head.Segment, head.Offset, _gen[head.Segment]);
                _refs[head.Segment]++;
                Index(offsetBytes, length, head.Segment, head.Offset, _gen[head.Segment]);
                _openKeys.Add(key);
                _dataHead = (head.Segment, head.Offset + length);
                if (_openKeys.Count == KsetMaxKeys)
                {
                    CloseKset();
                }
                source = source[length..];
                offsetBytes += length;
            }
            if (options.HasFlag(WriteOptions.Fua))
            {
                CloseKset();
            }
        }
    }

    /// <summary>REQ_PREFLUSH: every open key set closed. The backing device is not flushed: the cache is durable.</summary>
    public void Flush()
    {
        lock (_lock)
        {
            ThrowIfFailed();
            try
            {
                CloseKset();
            }
            catch (IOException error)
            {
                throw Failed(error);
            }
        }
    }

    private void ThrowIfFailed()
    {
        if (_error is not null)
        {
            throw new IOException($"{Name}: stopped at an earlier I/O error: {_error.Message}", _error);
        }
    }

    /// <summary>The first I/O error is kept, and the request that met it fails with it.</summary>
    private IOException Failed(IOException error)
    {
        _error ??= error;
        return error;
    }

    /// <summary>cache_kset_close: the key set and a zero terminator after it, fenced; a full log segment ends with a last key set naming the next.</summary>
    private void CloseKset()
    {
        if (_openKeys.Count == 0)
        {
            return;
        }
        int bytes = KsetHeaderBytes + _openKeys.Count * KeyBytes;
        if (_keyHead.Offset + bytes + KsetHeaderBytes > DataBytes)
        {
            int next = AllocateSegment();
            _pmem.WriteFlush(DataAt((next, 0)), new byte[KsetHeaderBytes]); // whatever log the segment held before is over
            byte[] last = new byte[KsetHeaderBytes];
            BinaryPrimitives.WriteUInt32LittleEndian(last.AsSpan(4), (uint)next);
            BinaryPrimitives.WriteUInt64LittleEndian(last.AsSpan(8), KsetMagic);
            BinaryPrimitives.WriteUInt64LittleEndian(last.AsSpan(16), KsetLast);
            BinaryPrimitives.WriteUInt32LittleEndian(last, Crc32C.Append(PcacheMeta.CrcSeed, last.AsSpan(4)));
            _pmem.WriteFlush(DataAt(_keyHead), last);
            _pmem.Drain();
            _keyHead = (next, 0);
        }
        byte[] kset = new byte[bytes];
        BinaryPrimitives.WriteUInt32LittleEndian(kset.AsSpan(4), (uint)_openKeys.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(kset.AsSpan(8), KsetMagic);
        for (int k = 0; k < _openKeys.Count; k++)
        {
            _openKeys[k].CopyTo(kset, KsetHeaderBytes + k * KeyBytes);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(kset, Crc32C.Append(PcacheMeta.CrcSeed, kset.AsSpan(4)));
        _pmem.WriteFlush(DataAt(_keyHead) + bytes, new byte[KsetHeaderBytes]);
        _pmem.WriteFlush(DataAt(_keyHead), kset);
        _pmem.Drain();
        _lastKset = _keyHead;
        _keyHead = (_keyHead.Segment, _keyHead.Offset + bytes);
        _openKeys.Clear();
        // The writeback worker's turn: every key set but the newest; then gc's, when the cache is used enough.
        Writeback(stopAt: _lastKset);
        CollectGarbage(force: false);
    }

    /// <summary>cache_writeback_fn: a key set's data to the backing device, a backing flush, then dirty_tail past it.</summary>
    private void Writeback((int Segment, int Offset)? stopAt)
    {
        while (_dirtyTail != _keyHead && _dirtyTail != stopAt && ReadKset(_dirtyTail) is { } kset)
        {
            if (kset.Last)
            {
                _dirtyTail = (kset.NextSegment, 0);
                WriteTail(_dirtyTailMeta, _dirtyTail);
                continue;
            }
            foreach (byte[] key in kset.Keys)
            {
                (long off, int len, int segment, int segOff, _) = DecodeKey(key);
                byte[] data = new byte[len];
                _pmem.Read(DataAt((segment, segOff)), data);
                _backing.Write(off, data);
            }
            _backing.Flush();
            _dirtyTail = (_dirtyTail.Segment, _dirtyTail.Offset + kset.Bytes);
            WriteTail(_dirtyTailMeta, _dirtyTail);
        }
    }

    /// <summary>pcache_cache_gc_fn: behind dirty_tail, each key set's segments released (a freed one's generation bumped first), then key_tail past it.</summary>
    private void CollectGarbage(bool force)
    {
        while (_keyTail != _dirtyTail && (force || _used.Count(u => u) * 100 >= _segments * GcPercent) && ReadKset(_keyTail) is { } kset)
        {
            if (kset.Last)
            {
                if (_dirtyTail.Segment == _keyTail.Segment)
                {
                    return;
                }
                int old = _keyTail.Segment;
                _keyTail = (kset.NextSegment, 0);
                WriteTail(_keyTailMeta, _keyTail);
                _used[old] = _refs[old] > 0 || _dataHead?.Segment == old;
                continue;
            }
            foreach (byte[] key in kset.Keys)
            {
                Put(DecodeKey(key).Segment);
            }
            _keyTail = (_keyTail.Segment, _keyTail.Offset + kset.Bytes);
            WriteTail(_keyTailMeta, _keyTail);
        }
    }

    private int GcPercent => (int)((_infoFlags >> 6) & 0x7f);

    /// <summary>cache_seg_put: the last reference gone, the segment's generation is bumped (and durable) and it is free again.</summary>
    private void Put(int segment)
    {
        if (--_refs[segment] > 0)
        {
            return;
        }
        _gen[segment]++;
        WriteGen(segment);
        _used[segment] = _keyHead.Segment == segment || _keyTail.Segment == segment || _dirtyTail.Segment == segment;
    }

    /// <summary>
    /// A free segment; with none, the writeback and gc workers are waited for, and (for a data segment,
    /// <paramref name="mayCloseKset"/>) the open key set is closed first, as the kernel's timer would close it:
    /// its keys pin their data segments until it is written, written back and collected.
    /// </summary>
    private int AllocateSegment(bool mayCloseKset = false)
    {
        for (int pass = 0; pass < 3; pass++)
        {
            for (int s = 0; s < _segments; s++)
            {
                if (!_used[s] && _refs[s] == 0)
                {
                    _used[s] = true;
                    return s;
                }
            }
            if (pass == 1 && mayCloseKset)
            {
                CloseKset();
            }
            Writeback(stopAt: null);
            CollectGarbage(force: true);
        }
        throw new IOException($"{Name}: no free segment: the open key set and the data head hold them all");
    }

    private void Index(long offsetBytes, int lengthBytes, int segment, int segOff, ulong gen)
    {
        for (int s = 0; s < lengthBytes / SectorBytes; s++)
        {
            _index[offsetBytes / SectorBytes + s] = (segment, segOff + s * SectorBytes, gen);
        }
    }

    private void WriteInfo()
    {
        byte[] payload = new byte[CacheInfoBytes - PcacheMeta.HeaderBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, 0); // seg_id: the chain starts at segment 0
        BinaryPrimitives.WriteUInt32LittleEndian(payload.AsSpan(4), (uint)_segments);
        BinaryPrimitives.WriteUInt32LittleEndian(payload.AsSpan(8), _infoFlags);
        _info.Write(payload, overLatest: _bug == PcacheBug.WriteOverLatestCopy, fence: _bug != PcacheBug.InfoWriteWithoutFence,
            wrongStrideBytes: _bug == PcacheBug.CacheInfoIndexing ? CacheInfoBytes : null);
    }

    private void WriteTail(PcacheMeta meta, (int Segment, int Offset) position)
    {
        byte[] payload = new byte[PositionBytes - PcacheMeta.HeaderBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)position.Segment);
        BinaryPrimitives.WriteUInt32LittleEndian(payload.AsSpan(4), (uint)position.Offset);
        meta.Write(payload, overLatest: _bug == PcacheBug.WriteOverLatestCopy);
    }

    private (int, int) ReadTail(PcacheMeta meta)
    {
        byte[] payload = meta.Load() ?? throw new InvalidDataException($"{_pmem.Name}: corrupted {meta.Name}: neither copy checks out");
        int segment = (int)BinaryPrimitives.ReadUInt32LittleEndian(payload);
        int offset = (int)BinaryPrimitives.ReadUInt32LittleEndian(payload.AsSpan(4));
        return segment < _segments && offset < DataBytes ? (segment, offset)
            : throw new InvalidDataException($"{_pmem.Name}: {meta.Name} at segment {segment} offset {offset} is out of range");
    }

    private void WriteGen(int segment)
    {
        byte[] payload = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, _gen[segment]);
        _segGenMeta[segment].Write(payload, overLatest: _bug == PcacheBug.WriteOverLatestCopy);
    }

    private sealed record Kset(bool Last, int NextSegment, IReadOnlyList<byte[]> Keys, int Bytes);

    /// <summary>The key set at <paramref name="at"/>, or null where the log ends (magic or crc wrong).</summary>
    private Kset? ReadKset((int Segment, int Offset) at)
    {
        if (at.Offset + KsetHeaderBytes > DataBytes)
        {
            return null;
        }
        byte[] header = new byte[KsetHeaderBytes];
        _pmem.Read(DataAt(at), header);
        if (BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(8)) != KsetMagic)
        {
            return null;
        }
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
        bool last = (BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(16)) & KsetLast) != 0;
        int bytes = last ? KsetHeaderBytes : KsetHeaderBytes + (int)Math.Min(count, KsetMaxKeys) * KeyBytes;
        if (!last && (count == 0 || count > KsetMaxKeys || at.Offset + bytes > DataBytes))
        {
            return null;
        }
        byte[] kset = new byte[bytes];
        _pmem.Read(DataAt(at), kset);
        if (BinaryPrimitives.ReadUInt32LittleEndian(kset) != Crc32C.Append(PcacheMeta.CrcSeed, kset.AsSpan(4)))
        {
            return null;
        }
        if (last)
        {
            return count < _segments ? new Kset(true, (int)count, [], bytes) : null;
        }
        return new Kset(false, -1, [.. Enumerable.Range(0, (int)count).Select(k => kset[(KsetHeaderBytes + k * KeyBytes)..(KsetHeaderBytes + (k + 1) * KeyBytes)])], bytes);
    }

    private static byte[] EncodeKey(long offsetBytes, int lengthBytes, int segment, int segOff, ulong gen)
    {
        byte[] key = new byte[KeyBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(key, (ulong)offsetBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(key.AsSpan(8), (uint)lengthBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(key.AsSpan(16), (uint)segment);
        BinaryPrimitives.WriteUInt32LittleEndian(key.AsSpan(20), (uint)segOff);
        BinaryPrimitives.WriteUInt64LittleEndian(key.AsSpan(24), gen);
        return key;
    }

    private (long Off, int Len, int Segment, int SegOff, ulong Gen) DecodeKey(byte[] key)
    {
        long off = (long)BinaryPrimitives.ReadUInt64LittleEndian(key);
        int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(key.AsSpan(8));
        int segment = (int)BinaryPrimitives.ReadUInt32LittleEndian(key.AsSpan(16));
        int segOff = (int)BinaryPrimitives.ReadUInt32LittleEndian(key.AsSpan(20));
        if (segment >= _segments || segOff + len > DataBytes || len % SectorBytes != 0 || off + len > SizeBytes)
        {
            throw new InvalidDataException($"{_pmem.Name}: a key out of range (segment {segment}, offset {segOff}, {len} bytes at {off})");
        }
        return (off, len, segment, segOff, BinaryPrimitives.ReadUInt64LittleEndian(key.AsSpan(24)));
    }

    private void CheckRange(long offsetBytes, int lengthBytes)
    {
        if (offsetBytes < 0 || offsetBytes % SectorBytes != 0 || lengthBytes % SectorBytes != 0 || offsetBytes + lengthBytes > SizeBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(offsetBytes), $"{Name}: {lengthBytes} bytes at {offsetBytes}: not whole sectors within {SizeBytes} bytes");
        }
    }

    /// <summary>A clean stop closes the open key set (as a suspend flushes).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_error is null)
            {
                CloseKset();
            }
        }
    }
}
