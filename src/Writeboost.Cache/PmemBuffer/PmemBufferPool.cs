using System.Buffers.Binary;
using System.Diagnostics;
using Writeboost.Cache.Format;
using Writeboost.Pmem;

namespace Writeboost.Cache.PmemBuffer;

/// <summary>What a cache opening its pmem buffer claims (see <see cref="PmemBufferPool.Open(Writeboost.Pmem.PmemRegion, PmemLayout, PmemClaim, out PmemOpened)"/>).</summary>
/// <param name="RecordedPmemUuid">The buffer the cache last used, as its sector 0 says (empty: unknown).</param>
/// <param name="OwnBufferMayHoldWrites">The cache was not closed cleanly in mode 1: its own buffer may hold acknowledged writes.</param>
/// <param name="Format">Format whatever is there (a new cache's reformat).</param>
/// <param name="Discard">Take the region even where that loses writes (<c>--discard-pmem</c>): format it.</param>
internal sealed record PmemClaim(Guid CacheUuid, string CacheName, Guid RecordedPmemUuid, bool OwnBufferMayHoldWrites, bool Format, bool Discard)
{
    /// <summary>The cache is being formatted: a buffer of its own is formatted too (its records belong to what the format gave up).</summary>
    public bool FormatOwn { get; init; }
}

/// <summary>What opening the pool did: formatted it (with this uuid), and what it warns of.</summary>
internal sealed record PmemOpened(bool Formatted, Guid PmemUuid, string? Warning);

/// <summary>
/// The persistent mirror of the RAM buffers in mode 1: every block placed in a buffer is also copied into the
/// same slot in pmem with its commit record, and persisted before the write is acknowledged.
/// <para>Persistence per backend. dax: each write flushes its data and record lines and fences on the writer's
/// own thread (an sfence orders only the stores and write-backs of the thread that issues it, so the fence
/// cannot be left to a later flush on another thread). block: a pwrite per write, and one device flush at the
/// next FUA or flush (a device flush covers every write completed before it, from any thread).</para>
/// <para>Writers place in parallel: the device reserves the slot under its lock and calls <see cref="Place"/>
/// outside it, so slots of one buffer may complete out of order. What a record says of the slots before it is
/// therefore the buffer's completed prefix — slots 0 .. n - 1 all placed (dax: written back and fenced; block:
/// written, and durable after a barrier) — never merely "every slot below mine".</para>
/// </summary>
internal sealed class PmemBufferPool
{
    private readonly PmemRegion _region;
    private readonly bool _fencePerWrite;
    internal Core.FaultHooks Faults { get; }
    private int _drainPending;
    // Per buffer: the segment it is bound to, which slots completed their placement (1), the completed prefix (slots
    // 0 .. n - 1 all completed), and (block backend) how much of that prefix a completed barrier made durable —
    // what a record says of the slots before it. Invariant: durable ≤ completed prefix ≤ blocks per segment.
    // Placements (the hot path) read and advance them without a lock: within a binding they only grow, and a buffer
    // is not rebound while a placement into it is in flight. _countsLock orders a rebinding against a barrier's
    // snapshot (block backend), the two other writers of these arrays.
    private readonly Lock _countsLock = new();
    /// <summary>Held for a barrier's whole device flush (block backend): see <see cref="Barrier"/>.</summary>
    private readonly Lock _barrierLock = new();
    private readonly ulong[] _boundId;
    private readonly int[][] _slotCompleted;
    private readonly int[] _completedPrefix;
    private readonly int[] _durableSlots;

    private PmemBufferPool(PmemRegion region, PmemLayout layout, Core.FaultHooks faults)
    {
        Faults = faults;
        _region = region;
        Layout = layout;
        _fencePerWrite = region.Backend == PmemBackend.Dax;
        _boundId = new ulong[layout.PoolSize];
        _slotCompleted = new int[layout.PoolSize][];
        for (int k = 0; k < layout.PoolSize; k++)
        {
            _slotCompleted[k] = new int[layout.BlocksPerSegment];
        }
        _completedPrefix = new int[layout.PoolSize];
        _durableSlots = new int[layout.PoolSize];
    }

    public PmemLayout Layout { get; }

    /// <summary>True when <see cref="Barrier"/> does nothing: dax persists and fences each write on its own thread.</summary>
    public bool BarrierIsFree => _fencePerWrite;
    public PmemRegion Region => _region;

    /// <summary>The size check, alone, so a table can be refused before anything is written.</summary>
    /// <exception cref="Table.TableException">the region is too small.</exception>
    public static void CheckFits(PmemRegion region, PmemLayout layout)
    {
        if (region.LengthBytes < layout.RegionBytes)
        {
            throw new Table.TableException(
                $"pmem region {region.Name} is {region.LengthBytes} bytes; {layout.PoolSize} buffers of {layout.BlocksPerSegment} blocks need {layout.RegionBytes} bytes");
        }
    }

    /// <summary>
    /// Opens the pool on <paramref name="region"/> for the cache <paramref name="claim"/> describes. The region is
    /// used as it is when it is that cache's current buffer; it is formatted when it is blank and the cache's own
    /// buffer cannot hold acknowledged writes, when it is an earlier buffer of the cache that cannot either, or when
    /// the claim says to format or to discard. Anything else is refused before a byte is written: a blank or an
    /// earlier buffer in place of one that may hold acknowledged writes (they would be lost), another cache's
    /// buffer, or a region that is not a writeboost pmem buffer.
    /// </summary>
    /// <exception cref="Table.TableException">the region is too small.</exception>
    /// <exception cref="InvalidDataException">the region cannot be this cache's buffer (the message names why and the way past).</exception>
    public static PmemBufferPool Open(PmemRegion region, PmemLayout layout, PmemClaim claim, out PmemOpened opened) =>
        Open(region, layout, claim, Core.FaultHooks.None, out opened);

    /// <param name="faults">The seeded bugs' hooks the pool runs with (the harness's).</param>
    internal static PmemBufferPool Open(PmemRegion region, PmemLayout layout, PmemClaim claim, Core.FaultHooks faults, out PmemOpened opened)
    {
        CheckFits(region, layout);
        PmemBufferPool pool = new(region, layout, faults);
        byte[] header = new byte[PmemLayout.RegionHeaderBytes];
        region.Read(0, header);
        PmemHeaderCheck check = layout.CheckHeader(header, claim.CacheUuid);
        if (check.State == PmemHeaderState.Blank && pool.AnyBufferBound())
        {
            check = new PmemHeaderCheck(PmemHeaderState.Foreign, "its header is zeroed but its buffers hold segments (a damaged header)");
        }
        string? refusal = null;
        string? warning = null;
        bool format = claim.Format || (claim.FormatOwn && check.State == PmemHeaderState.Ours);
        if (!format)
        {
            switch (check.State)
            {
                case PmemHeaderState.Blank when claim.OwnBufferMayHoldWrites:
                    refusal = $"pmem {region.Name} is blank, but cache {claim.CacheName} was not closed cleanly in mode 1: its own pmem buffer{Uuid(claim.RecordedPmemUuid)} may hold acknowledged writes that are nowhere else (a wiped or recreated file?). Refusing to open, which would lose them: give the cache its own pmem buffer";
                    break;
                case PmemHeaderState.Blank:
                    format = true;
                    break;
                case PmemHeaderState.FormatInterrupted:
                    // Only a format the claim had decided on marks the region, and it zeroes the buffers before anything
                    // can be placed: whatever the cache's buffer held was elsewhere already.
                    format = true;
                    warning = $"pmem {region.Name}: a format of it was interrupted (a crash while it was formatted); it was formatted again";
                    break;
                case PmemHeaderState.Foreign:
                    refusal = $"pmem region {region.Name} cannot be this cache's buffer: {check.Problem}. Refusing to replay or overwrite it";
                    break;
                case PmemHeaderState.Ours when claim.RecordedPmemUuid != Guid.Empty && check.PmemUuid != Guid.Empty && check.PmemUuid != claim.RecordedPmemUuid:
                    if (claim.OwnBufferMayHoldWrites)
                    {
                        refusal = $"pmem {region.Name} is an earlier buffer of cache {claim.CacheName} (uuid {check.PmemUuid}), not its current one (uuid {claim.RecordedPmemUuid}), which may hold acknowledged writes: its records are stale. Refusing to open, which would lose the current buffer's writes: give the cache its current pmem buffer";
                    }
                    else
                    {
                        format = true;
                        warning = $"pmem {region.Name} was an earlier buffer of this cache (uuid {check.PmemUuid}); the cache was closed cleanly, so its stale records were formatted away";
                    }
                    break;
            }
        }
        if (refusal is not null && !claim.Discard)
        {
            throw new InvalidDataException($"{refusal} (--discard-pmem formats it anyway: what the cache's own buffer and this region hold is lost)");
        }
        if (refusal is not null)
        {
            format = true;
            warning = $"--discard-pmem: {refusal.Split(". Refusing", 2)[0]}; formatted it, and the acknowledged writes only the cache's own buffer held are lost";
        }
        Guid pmemUuid = check.PmemUuid;
        if (format)
        {
            // An interrupted format is finished under the buffer uuid the cache records, when it records one: that
            // format was of the cache's own buffer (a clear for write-around keeps its uuid), and a crash before sector 0
            // names a new one must find the region still the cache's current buffer.
            pmemUuid = check.State == PmemHeaderState.FormatInterrupted && claim.RecordedPmemUuid != Guid.Empty ? claim.RecordedPmemUuid : Guid.NewGuid();
            pool.Format(claim.CacheUuid, pmemUuid);
        }
        opened = new PmemOpened(format, pmemUuid, warning);
        return pool;
    }

    private static string Uuid(Guid uuid) => uuid == Guid.Empty ? "" : $" (uuid {uuid})";

    /// <summary>Clears every buffer's header and records (a cache formatted anew, or drained for write-around): nothing in it can be replayed.</summary>
    public void Clear(Guid cacheUuid, Guid pmemUuid)
    {
        Format(cacheUuid, pmemUuid);
        lock (_countsLock)
        {
            Array.Clear(_boundId);
            Array.Clear(_completedPrefix);
            Array.Clear(_durableSlots);
            foreach (int[] completed in _slotCompleted)
            {
                Array.Clear(completed);
            }
        }
    }

    private void Format(Guid cacheUuid, Guid pmemUuid)
    {
        // The pending magic first, alone: from here until the real magic is stored last, any crash leaves a region
        // the next open knows as an interrupted format (the header spans two cache lines, and a crash may keep either
        // without the other: without the mark, a zero magic beside a half-written header refused every open).
        _region.Store64(0, PmemLayout.FormatPendingMagic);
        _region.Persist(0, sizeof(ulong));
        // Buffer headers and records next (no segment can be recovered from them), the region header last. The
        // records too: recovery trusts a buffer's valid records over its header, so a reformat that left the old
        // cache's records would bring its segments back (or refuse the new cache for their sake).
        byte[] noRecords = new byte[Layout.RecordsAreaBytes];
        for (int k = 0; k < Layout.PoolSize; k++)
        {
            _region.Store64(Layout.BufferHeaderOffset(k), 0);
            _region.Write(Layout.RecordOffset(k, 0), noRecords);
        }
        _region.Persist(0, Layout.RegionBytes);
        byte[] header = new byte[PmemLayout.RegionHeaderBytes];
        Layout.WriteHeader(header, cacheUuid, pmemUuid);
        BinaryPrimitives.WriteUInt64LittleEndian(header, PmemLayout.FormatPendingMagic);
        _region.WritePersist(0, header);
        _region.Store64(0, PmemLayout.Magic);
        _region.Persist(0, sizeof(ulong));
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
        lock (_countsLock)
        {
            _boundId[buffer] = segmentId;
            Array.Clear(_slotCompleted[buffer]);
            _completedPrefix[buffer] = 0;
            _durableSlots[buffer] = 0;
        }
    }

    /// <summary>
    /// Copies a placed block and its record into the buffer's slot and (dax) persists both. Called outside the
    /// device lock, concurrently with other writers' placements into other slots; the caller reserved the slot and
    /// keeps the buffer bound to <paramref name="segmentId"/> (no <see cref="Acquire"/> of it) until this returns.
    /// Returns the data's raw CRC from state 0, which the record's checksum is made of: the segment's checksums
    /// reuse it (<see cref="Core.SegmentBuffer.KnowDataCrc"/>) instead of reading the data a second time.
    /// </summary>
    /// <param name="knownDataCrc">The slot's raw CRC when the caller computed it copying the slot in (null: computed here).</param>
    public uint Place(int buffer, int slot, ulong segmentId, long block, byte dirtyBits, ReadOnlySpan<byte> slotData, uint? knownDataCrc = null)
    {
        Span<byte> record = stackalloc byte[PmemLayout.RecordBytes];
        Debug.Assert(Volatile.Read(ref _boundId[buffer]) == segmentId, "a placement into a buffer bound to another segment");
        // dax: the completed prefix was written back and fenced; block: what the last barrier made durable of it.
        int durableBefore = Math.Min(slot, Volatile.Read(ref _fencePerWrite ? ref _completedPrefix[buffer] : ref _durableSlots[buffer]));
        uint dataCrc = knownDataCrc ?? Crc32C.Append(0, slotData[..Units.BlockBytes]);
        Debug.Assert(dataCrc == Crc32C.Append(0, slotData[..Units.BlockBytes]), "a known CRC that is not the slot's");
        new PmemRecord(segmentId, block, dirtyBits, (byte)slot, (byte)durableBefore).WriteTo(record, Faults.PmemRecordCrcCoversData ? dataCrc : ZeroBlockCrc);
        long dataOffset = Layout.DataOffset(buffer, slot);
        long recordOffset = Layout.RecordOffset(buffer, slot);
        if (_fencePerWrite && Faults.PmemWritesBackBeforeAck)
        {
            // The block stored and written back in one call (non-temporal stores: no line to write back). The record
            // is stored first and written back after, so the log keeps the shape it had (both stores, then both
            // write-backs, then the fence): with the block's store and write-back before the record's store, the
            // harness caught recovery-skips-its-flush on a busy core in 6 of 8 runs instead of every one.
            _region.Write(recordOffset, record);
            _region.WriteFlush(dataOffset, slotData[..Units.BlockBytes]);
            _region.Flush(recordOffset, PmemLayout.RecordBytes);
            if (Faults.PmemFencesWrittenBackLines)
            {
                _region.Drain();
            }
        }
        else
        {
            _region.Write(dataOffset, slotData[..Units.BlockBytes]);
            _region.Write(recordOffset, record);
        }
        Complete(buffer, slot);
        return dataCrc;
    }

    /// <summary>Slot <paramref name="slot"/>'s placement completed: the buffer's completed prefix may grow past it.</summary>
    /// <remarks>
    /// Without a lock: the slot is marked, then the prefix advanced over every completed slot it reaches. Both the
    /// mark and each advance are full fences, so of two writers completing slots n and n + 1 at once, either the one
    /// at n sees n + 1 completed after advancing past n, or the one at n + 1 sees the prefix already at n + 1: the
    /// prefix never stops short of a completed run.
    /// </remarks>
    private void Complete(int buffer, int slot)
    {
        int[] completed = _slotCompleted[buffer];
        int was = Interlocked.Exchange(ref completed[slot], 1);
        Debug.Assert(was == 0, "a slot placed twice in one binding");
        while (true)
        {
            int prefix = Volatile.Read(ref _completedPrefix[buffer]);
            if (prefix >= completed.Length || Volatile.Read(ref completed[prefix]) == 0)
            {
                Debug.Assert(Volatile.Read(ref _durableSlots[buffer]) <= Volatile.Read(ref _completedPrefix[buffer]), "durable slots beyond the completed prefix");
                break;
            }
            Interlocked.CompareExchange(ref _completedPrefix[buffer], prefix + 1, prefix);
        }
        if (!_fencePerWrite)
        {
            Volatile.Write(ref _drainPending, 1); // after the write completed: the next barrier's flush covers it
        }
    }

    /// <summary>What a record's CRC covers of its slot's data: all of it (the seeded bug: a block of zeros instead).</summary>
    private ReadOnlySpan<byte> ChecksummedData(ReadOnlySpan<byte> slotData) => ChecksummedData(Faults, slotData);

    /// <inheritdoc cref="ChecksummedData(ReadOnlySpan{byte})"/>
    internal static ReadOnlySpan<byte> ChecksummedData(Core.FaultHooks faults, ReadOnlySpan<byte> slotData) =>
        faults.PmemRecordCrcCoversData ? slotData : NoData;

    private static readonly byte[] NoData = new byte[Units.BlockBytes];

    /// <summary>The raw CRC of <see cref="NoData"/>: what a hole's record covers, and the seeded bug's records instead of their data.</summary>
    internal static readonly uint ZeroBlockCrc = Crc32C.Append(0, NoData);

    /// <summary>
    /// Marks slot <paramref name="slot"/> as holding nothing to recover (a clean, read-cached block takes a slot of
    /// the segment but is not mirrored): a record with no dirty bits, whose fields checksum holds. Without it the
    /// slot would keep an older record, and a later record saying the slots before it are durable would make it
    /// look like an acknowledged write lost to damage. Persisted like a placed record.
    /// </summary>
    public void PlaceHole(int buffer, int slot, ulong segmentId)
    {
        Span<byte> record = stackalloc byte[PmemLayout.RecordBytes];
        new PmemRecord(segmentId, 0, 0, (byte)slot).WriteTo(record, ZeroBlockCrc);
        long recordOffset = Layout.RecordOffset(buffer, slot);
        if (Faults.PmemHoleRecordWritten)
        {
            _region.Write(recordOffset, record);
            if (_fencePerWrite)
            {
                _region.Persist(recordOffset, PmemLayout.RecordBytes);
            }
        }
        Complete(buffer, slot);
    }

    /// <summary>FUA / flush: every placed block is durable in pmem when this returns.</summary>
    /// <remarks>
    /// Barriers take turns: a barrier that finds nothing pending may return only once the device flush that took
    /// its placements has ended, not while another barrier is still inside it (two writers' FUAs, the block
    /// backend: the second was acknowledged before the flush that covered it had completed).
    /// </remarks>
    public void Barrier()
    {
        if (_fencePerWrite)
        {
            return;
        }
        lock (_barrierLock)
        {
            DrainPending();
        }
    }

    private void DrainPending()
    {
        Debug.Assert(_barrierLock.IsHeldByCurrentThread);
        if (Interlocked.Exchange(ref _drainPending, 0) == 1)
        {
            // The completed prefix of each buffer (those writes completed) before the device flush starts is durable
            // once it ends. A slot completed out of order beyond the prefix is durable too, but no record may say so.
            ulong[] bound;
            int[] placed;
            lock (_countsLock)
            {
                bound = [.. _boundId];
                placed = new int[_completedPrefix.Length];
                for (int k = 0; k < placed.Length; k++)
                {
                    placed[k] = Volatile.Read(ref _completedPrefix[k]); // placements advance it meanwhile, without the lock
                }
            }
            _region.Drain();
            lock (_countsLock)
            {
                for (int k = 0; k < bound.Length; k++)
                {
                    if (_boundId[k] == bound[k])
                    {
                        Volatile.Write(ref _durableSlots[k], Math.Max(_durableSlots[k], placed[k]));
                    }
                }
            }
        }
    }

    /// <summary>What the buffers hold after segment <paramref name="afterId"/>, read as recovery does (<see cref="PmemBufferRecovery.Read"/>).</summary>
    public PmemRecovery Recover(ulong afterId, PmemRecoveryMemo? memo = null) => new PmemBufferRecovery(_region, Layout, Faults, memo).Read(afterId);
}
