using System.Buffers.Binary;
using Writeboost.Cache.Format;
using Writeboost.Pmem;

namespace Writeboost.Samples.DmPcache;

/// <summary>
/// dm-pcache's versioned metadata: every record (cache_info, the two tail positions, each segment's info and
/// generation) has two copies. A copy starts with a header — crc32c of the rest (seeded), an 8-bit sequence number,
/// a version — and recovery takes the valid copy with the newest sequence number (pcache_meta_find_latest). An
/// update writes the other copy with the next sequence number, with flushing 8-byte stores, then fences: a crash
/// tears at most the copy being written, and the one before still stands.
/// </summary>
public sealed class PcacheMeta(PmemRegion pmem, long baseBytes, int strideBytes, int recordBytes, string name)
{
    public const uint CrcSeed = 0x3B15A;
    public const int HeaderBytes = 8;

    /// <summary>The slot of the newest copy (the one the next update must not touch).</summary>
    public int Index { get; set; }

    public byte Seq { get; private set; }

    public string Name => name;

    /// <summary>How many copies checked out at the last <see cref="Load"/> (0, 1 or 2).</summary>
    public int ValidCopies { get; private set; }

    /// <summary>The payload after the header of the newest valid copy, or null when neither copy checks out; sets <see cref="Index"/> and <see cref="Seq"/> from it.</summary>
    public byte[]? Load(bool setIndex = true)
    {
        byte[]? best = null;
        int bestSlot = -1;
        ValidCopies = 0;
        for (int slot = 0; slot < 2; slot++)
        {
            byte[] copy = new byte[recordBytes];
            pmem.Read(baseBytes + (long)slot * strideBytes, copy);
            if (BinaryPrimitives.ReadUInt32LittleEndian(copy) != Crc(copy))
            {
                continue;
            }
            ValidCopies++;
            if (best is null || (sbyte)(copy[4] - best[4]) > 0)
            {
                best = copy;
                bestSlot = slot;
            }
        }
        if (best is null)
        {
            return null;
        }
        Seq = best[4];
        if (setIndex)
        {
            Index = bestSlot;
        }
        return best[HeaderBytes..];
    }

    /// <summary>
    /// Writes <paramref name="payload"/> as the next copy: the slot after <see cref="Index"/> (the fixed order), or
    /// <see cref="Index"/> itself before moving on (<paramref name="overLatest"/>: 6.18's order, which overwrites the
    /// newest copy first after a load); <paramref name="wrongStrideBytes"/> when given replaces the slots' true stride.
    /// </summary>
    public void Write(ReadOnlySpan<byte> payload, bool overLatest = false, bool fence = true, int? wrongStrideBytes = null)
    {
        int slot;
        if (overLatest)
        {
            slot = Index;
            Index = (Index + 1) % 2;
        }
        else
        {
            Index = (Index + 1) % 2;
            slot = Index;
        }
        Seq++;
        byte[] record = new byte[recordBytes];
        record[4] = Seq;
        record[5] = 1; // version
        payload.CopyTo(record.AsSpan(HeaderBytes));
        BinaryPrimitives.WriteUInt32LittleEndian(record, Crc(record));
        long at = baseBytes + (long)slot * (wrongStrideBytes ?? strideBytes);
        for (int word = 0; word < recordBytes; word += sizeof(ulong))
        {
            pmem.Store64(at + word, BinaryPrimitives.ReadUInt64LittleEndian(record.AsSpan(word))); // memcpy_flushcache: 8-byte stores
        }
        pmem.Flush(at, recordBytes);
        if (fence)
        {
            pmem.Drain();
        }
    }

    private static uint Crc(ReadOnlySpan<byte> record) => Crc32C.Append(CrcSeed, record[4..]);
}
