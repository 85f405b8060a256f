using System.Buffers.Binary;
using Writeboost.Cache.Format;
using Writeboost.Pmem;

namespace Writeboost.Cache.PmemBuffer;

/// <summary>A pmem buffer's acknowledged content, as recovery found it.</summary>
/// <param name="TornSlots">Records for this segment whose CRC fails: a write in flight at the crash (or damage).</param>
/// <param name="DamagedSlots">Records that cannot be the result of a crash: an id newer than the buffer's or of a
/// segment this buffer never holds, or an older one before a later slot of this segment (slots fill in order, so
/// that slot was written for this segment).</param>
internal sealed record RecoveredBuffer(ulong SegmentId, IReadOnlyList<(PmemRecord Record, byte[] Data)> Slots, int TornSlots, int DamagedSlots = 0);

/// <summary>
/// The persistent mirror of the RAM buffers in mode 1: every block placed in a buffer is also copied into the
/// same slot in pmem with its commit record, and persisted before the write is acknowledged.
/// <para>Persistence per backend. dax: each write flushes its data and record lines and fences on the writer's
/// own thread (an sfence orders only the stores and write-backs of the thread that issues it, so the fence
/// cannot be left to a later flush on another thread). block: a pwrite per write, and one device flush at the
/// next FUA or flush (a device flush covers every write completed before it, from any thread).</para>
/// </summary>
internal sealed class PmemBufferPool
{
    private readonly PmemRegion _region;
    private readonly bool _fencePerWrite;
    internal Core.Mutant Mutant { get; set; }
    private int _drainPending;

    private PmemBufferPool(PmemRegion region, PmemLayout layout)
    {
        _region = region;
        Layout = layout;
        _fencePerWrite = region.Backend == PmemBackend.Dax;
    }

    public PmemLayout Layout { get; }

    /// <summary>True when <see cref="Barrier"/> does nothing: dax persists and fences each write on its own thread.</summary>
    public bool BarrierIsFree => _fencePerWrite;
    public PmemRegion Region => _region;

    /// <summary>Opens the pool on <paramref name="region"/>, formatting a blank region (or any, with <paramref name="format"/>).</summary>
    /// <exception cref="Table.TableException">the region is too small.</exception>
    /// <exception cref="InvalidDataException">the region belongs to another cache or is not a writeboost pmem buffer.</exception>
    public static PmemBufferPool Open(PmemRegion region, PmemLayout layout, Guid cacheUuid, bool format, out bool formatted)
    {
        if (region.LengthBytes < layout.RegionBytes)
        {
            throw new Table.TableException(
                $"pmem region {region.Name} is {region.LengthBytes} bytes; {layout.PoolSize} buffers of {layout.BlocksPerSegment} blocks need {layout.RegionBytes} bytes");
        }
        PmemBufferPool pool = new(region, layout);
        byte[] header = new byte[PmemLayout.RegionHeaderBytes];
        region.Read(0, header);
        PmemHeaderCheck check = layout.CheckHeader(header, cacheUuid);
        if (check.State == PmemHeaderState.Blank && pool.AnyBufferBound())
        {
            check = new PmemHeaderCheck(PmemHeaderState.Foreign, "its header is zeroed but its buffers hold segments (a damaged header)");
        }
        formatted = format || check.State == PmemHeaderState.Blank;
        if (!formatted && check.State == PmemHeaderState.Foreign)
        {
            throw new InvalidDataException($"pmem region {region.Name} cannot be this cache's buffer: {check.Problem} (refusing to replay or overwrite it; reformat to take it over)");
        }
        if (formatted)
        {
            pool.Format(cacheUuid);
        }
        return pool;
    }

    private void Format(Guid cacheUuid)
    {
        // Buffer headers first (no segment can be recovered from them), the region header last.
        for (int k = 0; k < Layout.PoolSize; k++)
        {
            _region.Store64(Layout.BufferHeaderOffset(k), 0);
        }
        _region.Persist(0, Layout.RegionBytes);
        byte[] header = new byte[PmemLayout.RegionHeaderBytes];
        Layout.WriteHeader(header, cacheUuid);
        _region.WritePersist(0, header);
    }

    /// <summary>Whether any buffer header names a segment (a blank region has none).</summary>
    private bool AnyBufferBound()
    {
        byte[] word = new byte[sizeof(ulong)];
        for (int k = 0; k < Layout.PoolSize; k++)
        {
            _region.Read(Layout.BufferHeaderOffset(k), word);
            if (BinaryPrimitives.ReadUInt64LittleEndian(word) != 0)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Binds buffer <paramref name="buffer"/> to a new segment: its header word, persisted before any record.</summary>
    public void Acquire(int buffer, ulong segmentId)
    {
        long offset = Layout.BufferHeaderOffset(buffer);
        _region.Store64(offset, segmentId);
        _region.Persist(offset, sizeof(ulong));
    }

    /// <summary>Copies a placed block and its record into the buffer's slot (called under the device lock).</summary>
    public void Place(int buffer, int slot, ulong segmentId, long block, byte dirtyBits, ReadOnlySpan<byte> slotData)
    {
        Span<byte> record = stackalloc byte[PmemLayout.RecordBytes];
        new PmemRecord(segmentId, block, dirtyBits, (byte)slot).WriteTo(record, ChecksummedData(slotData));
        long dataOffset = Layout.DataOffset(buffer, slot);
        long recordOffset = Layout.RecordOffset(buffer, slot);
        _region.Write(dataOffset, slotData[..Units.BlockBytes]);
        _region.Write(recordOffset, record);
        if (_fencePerWrite)
        {
            if (Mutant == Core.Mutant.AckBeforePmemPersist)
            {
                return;
            }
            _region.Flush(dataOffset, Units.BlockBytes);
            _region.Flush(recordOffset, PmemLayout.RecordBytes);
            if (Mutant != Core.Mutant.DropPmemFence)
            {
                _region.Drain();
            }
        }
        else
        {
            Volatile.Write(ref _drainPending, 1); // after the write completed: the next barrier's flush covers it
        }
    }

    /// <summary>What a record's CRC covers of its slot's data: all of it (a mutant: none of it).</summary>
    private ReadOnlySpan<byte> ChecksummedData(ReadOnlySpan<byte> slotData) =>
        Mutant == Core.Mutant.PmemRecordCrcSkipsData ? NoData : slotData;

    private static readonly byte[] NoData = new byte[Units.BlockBytes];

    /// <summary>FUA / flush: every placed block is durable in pmem when this returns.</summary>
    public void Barrier()
    {
        if (!_fencePerWrite && Interlocked.Exchange(ref _drainPending, 0) == 1)
        {
            _region.Drain();
        }
    }

    /// <summary>
    /// The buffers holding segments after <paramref name="afterId"/> (the last one the cache device gave back),
    /// in id order and contiguous from afterId + 1, with each one's valid records in slot order.
    /// </summary>
    public List<RecoveredBuffer> Recover(ulong afterId, out string? gap)
    {
        gap = null;
        SortedDictionary<ulong, int> byId = [];
        byte[] word = new byte[sizeof(ulong)];
        for (int k = 0; k < Layout.PoolSize; k++)
        {
            _region.Read(Layout.BufferHeaderOffset(k), word);
            ulong id = BinaryPrimitives.ReadUInt64LittleEndian(word);
            if (id != 0 && (id - 1) % (ulong)Layout.PoolSize != (ulong)k)
            {
                // Buffer k only ever holds segments k + 1, k + 1 + pool, ...: any other id is a damaged header.
                gap ??= $"pmem buffer {k} claims segment {id}, which that buffer never holds (a damaged header): it is not replayed";
                continue;
            }
            if (id > afterId)
            {
                byId[id] = k;
            }
        }
        List<RecoveredBuffer> buffers = [];
        ulong expected = afterId + 1;
        byte[] records = new byte[Layout.BlocksPerSegment * PmemLayout.RecordBytes];
        foreach ((ulong id, int k) in byId)
        {
            if (id != expected)
            {
                gap ??= $"pmem buffer {k} holds segment {id}, but segment {expected} is neither on the cache device nor in pmem: {id} and later are not replayed";
                break;
            }
            _region.Read(Layout.RecordOffset(k, 0), records);
            List<(PmemRecord, byte[])> slots = [];
            int torn = 0;
            int damaged = 0;
            int notThisSegment = 0;
            for (int i = 0; i < Layout.BlocksPerSegment; i++)
            {
                ReadOnlySpan<byte> record = records.AsSpan(i * PmemLayout.RecordBytes, PmemLayout.RecordBytes);
                ulong recordId = BinaryPrimitives.ReadUInt64LittleEndian(record);
                if (recordId > id || (recordId != 0 && (recordId - 1) % (ulong)Layout.PoolSize != (ulong)k))
                {
                    damaged++; // from the future, or of a segment this buffer never holds: not what a crash leaves
                    continue;
                }
                if (recordId != id)
                {
                    notThisSegment++; // never written for this segment (an older one's), or damaged if a later slot was
                    continue;
                }
                // With a fence per write, slot i was durable before slot i + 1 was even stored; the block backend
                // persists at barriers only, so there a crash may keep a later slot and lose an earlier one.
                damaged += _fencePerWrite ? notThisSegment : 0;
                notThisSegment = 0;
                byte[] data = new byte[Units.BlockBytes];
                _region.Read(Layout.DataOffset(k, i), data);
                if (PmemRecord.ReadValid(record, ChecksummedData(data), id, i) is { } valid)
                {
                    slots.Add((valid, data));
                }
                else
                {
                    torn++;
                }
            }
            buffers.Add(new RecoveredBuffer(id, slots, torn, damaged));
            expected++;
        }
        return buffers;
    }
}
