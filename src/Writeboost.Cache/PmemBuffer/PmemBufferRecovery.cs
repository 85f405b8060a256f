using System.Buffers.Binary;
using System.Diagnostics;
using Writeboost.Cache.Format;
using Writeboost.Cache.Recovery;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Cache.PmemBuffer;

/// <summary>One slot of a pmem buffer as recovery found it: a valid record and its data, or an acknowledged write lost to damage.</summary>
/// <param name="Lost">The record's fields hold but its data (or CRC) does not, and a later record of the buffer says the
/// slot was durable: the write was acknowledged and is lost — its block is poisoned. Otherwise its data, as its
/// record's check read it, is in its buffer's <see cref="RecoveredBuffer.Image"/>.</param>
/// <param name="DataCrc">The raw CRC-32C of the slot's data, as its record's check computed it (null: not known):
/// the segment rebuilt from the slot reuses it.</param>
internal sealed record RecoveredSlot(PmemRecord Record, bool Lost, uint? DataCrc = null);

/// <summary>A pmem buffer's acknowledged content, as recovery found it.</summary>
/// <param name="TornSlots">Records for this segment whose CRC fails and that no later record says were durable: a
/// write in flight at the crash (or damage nothing can tell from one).</param>
/// <param name="DamagedSlots">Records that cannot be the result of a crash (an id newer than the buffer's or of a
/// segment this buffer never holds) but that no later record says were durable.</param>
/// <param name="LostUnknownSlots">Slots a later record says were durable whose fields are damaged too: an
/// acknowledged write of an unknown block is lost.</param>
/// <param name="Scratch">The segment as it is rebuilt from this buffer (<see cref="Image"/>); given back when the
/// <see cref="PmemRecovery"/> is disposed.</param>
internal sealed record RecoveredBuffer(ulong SegmentId, int Buffer, IReadOnlyList<RecoveredSlot> Slots, int TornSlots, int DamagedSlots, int LostUnknownSlots, SegmentScratch Scratch)
{
    public int LostSlots => Slots.Count(s => s.Lost);

    /// <summary>
    /// The segment as it is rebuilt from this buffer, laid out as on the cache device: the data of <see cref="Slots"/>[j]
    /// at block 1 + j, as its record's check read and checksummed it (a lost slot's block, and block 0, where the
    /// metablocks go, hold anything). Read once from pmem into its place, never copied per slot: at order 11 a buffer
    /// is a megabyte, and a crash campaign recovers one for every state it checks.
    /// </summary>
    public byte[] Image => Scratch.Bytes;
}

/// <summary>What the pmem buffers hold beyond the cache device, and what they prove.</summary>
/// <param name="Buffers">Buffers holding segments after the id recovery asked about, in id order (not necessarily contiguous).</param>
/// <param name="ProvenDurableId">A buffer holding segment X was rebound only once X - pool size was durable on the cache device.</param>
/// <remarks>Disposing gives the buffers' images back (<see cref="SegmentScratch"/>); not disposing only costs the reuse.</remarks>
internal sealed record PmemRecovery(IReadOnlyList<RecoveredBuffer> Buffers, ulong ProvenDurableId, IReadOnlyList<string> Warnings) : IDisposable
{
    private bool _disposed;

    /// <summary>The memo the buffers' images were lent from, given back when this is disposed (null: they were rented).</summary>
    public PmemRecoveryMemo? Memo { get; init; }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (RecoveredBuffer buffer in Buffers)
        {
            buffer.Scratch.Dispose();
        }
        Memo?.Give();
    }
}

/// <summary>
/// Recovery's reading of the pmem buffers of mode 1 (<see cref="Read"/>): which segment each buffer holds, and which
/// of its slots are acknowledged writes, torn writes, damage, or lost. Only reads; the hot path that writes the
/// buffers is <see cref="PmemBufferPool"/>'s.
/// </summary>
/// <param name="memo">What an earlier recovery on this thread read, kept for this one (null: read every slot).</param>
internal sealed class PmemBufferRecovery(PmemRegion region, PmemLayout layout, Core.FaultHooks faults, PmemRecoveryMemo? memo = null)
{
    /// <summary>The memo, while this recovery holds it (from <see cref="Read"/> to the result's disposal).</summary>
    private PmemRecoveryMemo? _memo;

    /// <summary>
    /// The buffers holding segments after <paramref name="afterId"/> (which the cache device gives back itself),
    /// in id order, each with its slots:
    /// <list type="number">
    /// <item>Buffer k only ever holds segments k + 1, k + 1 + pool, ...; the segment it holds is the newest id among
    /// its valid records. Its header word normally says the same; a header that names an impossible id, or an older
    /// one than its records, is damaged (reported), and the records decide. A header bound to a newer id with no
    /// record yet holds nothing to recover (the writer rebinds only once the old segment is durable on the cache).</item>
    /// <item>A valid record (id, slot byte, CRC) is an acknowledged write. Each one also says how many slots before it
    /// were durable; an invalid slot below that was acknowledged and is lost to damage: poisoned when its fields
    /// (their own checksum) still name the block, an unknown loss when they do not. An invalid slot no later record
    /// vouches for is a crash's torn write (discarded) — or, with an id no crash writes, damage of unknown durability.</item>
    /// </list>
    /// </summary>
    public PmemRecovery Read(ulong afterId)
    {
        _memo = memo is not null && memo.TryTake() ? memo : null;
        try
        {
            return ReadBuffers(afterId) with { Memo = _memo };
        }
        catch
        {
            _memo?.Give();
            throw;
        }
    }

    private PmemRecovery ReadBuffers(ulong afterId)
    {
        List<string> warnings = [];
        List<RecoveredBuffer> buffers = [];
        ulong proven = 0;
        ulong pool = (ulong)layout.PoolSize;
        byte[] word = new byte[sizeof(ulong)];
        byte[] records = new byte[layout.BlocksPerSegment * PmemLayout.RecordBytes];
        byte[] data = new byte[Units.BlockBytes];
        for (int k = 0; k < layout.PoolSize; k++)
        {
            region.Read(layout.BufferHeaderOffset(k), word);
            ulong header = BinaryPrimitives.ReadUInt64LittleEndian(word);
            region.Read(layout.RecordOffset(k, 0), records);
            bool Possible(ulong id) => id != 0 && (id - 1) % pool == (ulong)k;
            // The segment the buffer holds: the newest id with a valid record.
            ulong holds = 0;
            for (int i = 0; i < layout.BlocksPerSegment; i++)
            {
                ReadOnlySpan<byte> record = records.AsSpan(i * PmemLayout.RecordBytes, PmemLayout.RecordBytes);
                ulong id = BinaryPrimitives.ReadUInt64LittleEndian(record);
                if (Possible(id) && id > holds && PmemRecord.ReadValid(record, CheckedCrcOf(k, i, data), id, i) is not null)
                {
                    holds = id;
                }
            }
            if (header != 0 && !Possible(header))
            {
                warnings.Add(holds == 0
                    ? $"pmem buffer {k} claims segment {header}, which that buffer never holds (a damaged header): it is not replayed"
                    : $"pmem buffer {k} claims segment {header}, which that buffer never holds (a damaged header); its records are segment {holds}'s, recovered from them");
            }
            else if (header != 0 && holds > header)
            {
                warnings.Add($"pmem buffer {k} claims segment {header} but holds records of segment {holds} (a damaged header): recovered from the records");
            }
            if (holds == 0)
            {
                continue;
            }
            proven = Math.Max(proven, holds > pool ? holds - pool : 0);
            if (holds <= afterId)
            {
                continue;
            }
            buffers.Add(RecoverBuffer(k, holds, records));
        }
        buffers.Sort((a, b) => a.SegmentId.CompareTo(b.SegmentId));
        return new PmemRecovery(buffers, proven, warnings);
    }

    private RecoveredBuffer RecoverBuffer(int k, ulong id, byte[] records)
    {
        ulong pool = (ulong)layout.PoolSize;
        int blocks = layout.BlocksPerSegment;
        // Slot i's data is read to block 1 + i of the image; the slots kept move down over the ones dropped below.
        SegmentScratch scratch = ImageOf(k);
        byte[] image = scratch.Bytes;
        PmemRecoveryMemo.Kept? kept = KeptOf(k);
        int[] named = new int[blocks];
        int count = 0;
        for (int i = 0; i < blocks; i++)
        {
            if (RecordIdOf(records, i) == id)
            {
                named[count++] = i;
            }
        }
        uint[] dataCrcs = new uint[blocks];
        bool[] readNow = new bool[blocks];
        ChecksumSlots(k, image, kept, named.AsSpan(0, count), dataCrcs, readNow);
        PmemRecord?[] valid = new PmemRecord?[blocks];
        int vouched = 0; // slots below this were durable, by the newest claim of a valid record
        foreach (int i in named.AsSpan(0, count))
        {
            ReadOnlySpan<byte> record = records.AsSpan(i * PmemLayout.RecordBytes, PmemLayout.RecordBytes);
            if (!faults.PmemRecordCrcCoversData)
            {
                dataCrcs[i] = PmemBufferPool.ZeroBlockCrc; // a seeded bug's records checksum no data
            }
            if (PmemRecord.ReadValid(record, dataCrcs[i], id, i) is { } ok)
            {
                valid[i] = ok;
                vouched = Math.Max(vouched, Math.Min(ok.DurableSlots, i));
            }
        }
        List<RecoveredSlot> slots = [];
        int torn = 0;
        int damaged = 0;
        int lostUnknown = 0;
        for (int i = 0; i < blocks; i++)
        {
            if (valid[i] is { } ok)
            {
                Place(k, image, kept, i, slots.Count, readNow[i]);
                // The CRC is the data's unless a seeded bug checksums something else.
                slots.Add(new RecoveredSlot(ok, Lost: false, faults.PmemRecordCrcCoversData ? dataCrcs[i] : null));
                continue;
            }
            ReadOnlySpan<byte> record = records.AsSpan(i * PmemLayout.RecordBytes, PmemLayout.RecordBytes);
            ulong recordId = BinaryPrimitives.ReadUInt64LittleEndian(record);
            PmemRecord? fields = PmemRecord.ReadFields(record);
            if (fields is { DirtyBits: 0 } hole && hole.SegmentId == id && hole.SlotByte == (byte)i)
            {
                continue; // a clean block's slot (PlaceHole): nothing was mirrored there
            }
            bool acknowledged = i < vouched && faults.PmemVouchedRecordWasAcknowledged;
            if (acknowledged)
            {
                if (fields is { } f && f.SegmentId == id && f.SlotByte == (byte)i && f.DirtyBits != 0)
                {
                    kept?.Forget(slots.Count); // the rebuild clears a lost slot's block
                    slots.Add(new RecoveredSlot(f, Lost: true));
                }
                else
                {
                    lostUnknown++;
                }
                continue;
            }
            if (recordId == id)
            {
                torn++; // a write in flight at the crash, as far as the records show (no later one vouches for it)
            }
            else if (recordId > id || (recordId != 0 && (recordId - 1) % pool != (ulong)k))
            {
                damaged++; // from the future, or of a segment this buffer never holds: not what a crash leaves
            }
        }
        return new RecoveredBuffer(id, k, slots, torn, damaged, lostUnknown, scratch);
    }

    /// <summary>The CRC slot <paramref name="i"/>'s record checks its data by: read into <paramref name="data"/>, or into the memo's image.</summary>
    private uint CheckedCrcOf(int k, int i, byte[] data)
    {
        uint raw;
        if (KeptOf(k) is { } kept)
        {
            Span<uint> crcs = stackalloc uint[i + 1];
            Span<bool> read = stackalloc bool[i + 1];
            ChecksumSlots(k, kept.Image, kept, [i], crcs, read);
            raw = crcs[i];
        }
        else
        {
            region.Read(layout.DataOffset(k, i), data);
            raw = Crc32C.Append(0, data);
        }
        return faults.PmemRecordCrcCoversData ? raw : PmemBufferPool.ZeroBlockCrc;
    }

    /// <summary>Buffer <paramref name="k"/>'s rebuild image: the memo's (lent until the recovery is disposed), or a rented one.</summary>
    private SegmentScratch ImageOf(int k) => KeptOf(k) is { } kept
        ? SegmentScratch.Borrowed(kept.Image)
        : new SegmentScratch((1 + layout.BlocksPerSegment) * Units.BlockBytes); // the segment's size: its header block and its data blocks

    private PmemRecoveryMemo.Kept? KeptOf(int k) => _memo?.For(k, (1 + layout.BlocksPerSegment) * Units.BlockBytes);

    /// <summary>
    /// The raw CRCs of the data of <paramref name="slots"/> (ascending) of buffer <paramref name="k"/>, at their indexes of
    /// <paramref name="rawCrcs"/>: the memo's where the slot's page gives the token it was checked under, otherwise
    /// read into the slot's own block of <paramref name="image"/> (<paramref name="readNow"/>), neighbours in one read.
    /// Nothing else writes the region while recovery reads it.
    /// </summary>
    private void ChecksumSlots(int k, byte[] image, PmemRecoveryMemo.Kept? kept, ReadOnlySpan<int> slots, Span<uint> rawCrcs, Span<bool> readNow)
    {
        int first = 0; // the slots to read: slots[first .. first + run), neighbours
        int run = 0;
        for (int n = 0; n < slots.Length; n++)
        {
            int i = slots[n];
            if (kept is not null)
            {
                long offset = layout.DataOffset(k, i);
                kept.Now[i] = region.VersionOf(offset);
                if (kept.CrcOf(i, offset, kept.Now[i], out uint crc))
                {
                    rawCrcs[i] = crc;
                    continue;
                }
            }
            if (run > 0 && slots[first + run - 1] + 1 == i && first + run == n)
            {
                run++;
                continue;
            }
            ReadRun(k, image, kept, slots.Slice(first, run), rawCrcs, readNow);
            first = n;
            run = 1;
        }
        ReadRun(k, image, kept, slots.Slice(first, run), rawCrcs, readNow);
    }

    /// <summary>Reads <paramref name="neighbours"/> (slots that follow each other) to their own blocks in one read, and checksums each.</summary>
    private void ReadRun(int k, byte[] image, PmemRecoveryMemo.Kept? kept, ReadOnlySpan<int> neighbours, Span<uint> rawCrcs, Span<bool> readNow)
    {
        if (neighbours.IsEmpty)
        {
            return;
        }
        int from = neighbours[0];
        region.Read(layout.DataOffset(k, from), image.AsSpan((1 + from) * Units.BlockBytes, neighbours.Length * Units.BlockBytes));
        foreach (int i in neighbours)
        {
            rawCrcs[i] = Crc32C.Append(0, BlockOf(image, i));
            readNow[i] = true;
            long offset = layout.DataOffset(k, i);
            kept?.Checked(i, offset, kept.Now[i], rawCrcs[i]);
            kept?.Filled(i, offset, kept.Now[i]);
        }
    }

    /// <summary>
    /// Puts valid slot <paramref name="i"/>'s data at block <paramref name="block"/> (at most <paramref name="i"/>: the
    /// slots kept move down over the ones dropped below): moved from its own block when it was read there now, left
    /// where the memo's copy of its page already is, or read again.
    /// </summary>
    private void Place(int k, byte[] image, PmemRecoveryMemo.Kept? kept, int i, int block, bool readNow)
    {
        long offset = layout.DataOffset(k, i);
        PageVersion? version = kept?.Now[i];
        if (readNow)
        {
            if (block < i)
            {
                BlockOf(image, i).CopyTo(BlockOf(image, block));
                kept?.Filled(block, offset, version);
            }
            return;
        }
        Debug.Assert(kept is not null, "a slot not read now is the memo's");
        if (kept.BlockHolds(block, offset, version))
        {
            return;
        }
        if (block < i && kept.BlockHolds(i, offset, version))
        {
            BlockOf(image, i).CopyTo(BlockOf(image, block));
        }
        else
        {
            region.Read(offset, BlockOf(image, block));
        }
        kept.Filled(block, offset, version);
    }

    private static ulong RecordIdOf(byte[] records, int slot) =>
        BinaryPrimitives.ReadUInt64LittleEndian(records.AsSpan(slot * PmemLayout.RecordBytes));

    /// <summary>Where slot <paramref name="index"/>'s data is in a rebuilt segment's image (block 0 is its metablocks').</summary>
    private static Span<byte> BlockOf(byte[] image, int index) => image.AsSpan((1 + index) * Units.BlockBytes, Units.BlockBytes);
}
