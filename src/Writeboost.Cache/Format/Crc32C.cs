using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Writeboost.Cache.Format;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): seed ~0, result complemented — the standard
/// CRC-32C, which is what dm-writeboost v2.0.2 and later store (<c>~crc32c(~0, ...)</c>). The steps use
/// <see cref="BitOperations.Crc32C(uint, ulong)"/>, the SSE4.2 / ARMv8 CRC instruction where the CPU has it.
///
/// <para>Why three lanes: the crc32 instruction has a latency of about three cycles but a throughput of one,
/// so a single dependent chain runs at a third of the speed the CPU can. A long buffer is split into three
/// equal lanes computed together, then joined: CRC is linear over GF(2), so
/// <c>crc(c, A‖B) = crc(c, A)·x^(8|B|) mod P ⊕ crc(0, B)</c>. Segments are checksummed on the flush path, where
/// this halves the time the flush worker spends per 512 KiB segment.</para>
/// </summary>
public static class Crc32C
{
    private const uint ReflectedPolynomial = 0x82F63B78;
    private const int LaneThresholdBytes = 3 * 1024;

    // XToThe2ToThe[k] = x^(2^k) mod P, in the reflected representation (bit 31 is x^0).
    private static readonly uint[] XToThe2ToThe = BuildPowerTable();

    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(~0u, data);

    /// <summary>Raw update of a running (not complemented) CRC value.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        if (data.Length < LaneThresholdBytes)
        {
            return AppendSerial(crc, data);
        }
        int laneBytes = data.Length / 3 / sizeof(ulong) * sizeof(ulong);
        ReadOnlySpan<ulong> a = MemoryMarshal.Cast<byte, ulong>(data[..laneBytes]);
        ReadOnlySpan<ulong> b = MemoryMarshal.Cast<byte, ulong>(data.Slice(laneBytes, laneBytes));
        ReadOnlySpan<ulong> c = MemoryMarshal.Cast<byte, ulong>(data.Slice(2 * laneBytes, laneBytes));
        uint crcA = crc;
        uint crcB = 0;
        uint crcC = 0;
        for (int i = 0; i < a.Length; i++)
        {
            crcA = BitOperations.Crc32C(crcA, LittleEndian(a[i]));
            crcB = BitOperations.Crc32C(crcB, LittleEndian(b[i]));
            crcC = BitOperations.Crc32C(crcC, LittleEndian(c[i]));
        }
        uint shift = LaneShift(laneBytes);
        uint joined = MultiplyModP(MultiplyModP(crcA, shift) ^ crcB, shift) ^ crcC;
        return AppendSerial(joined, data[(3 * laneBytes)..]);
    }

    /// <summary>
    /// The raw state after appending B to a running state, given only B's raw CRC from state 0 and its length:
    /// <c>crc(c, A‖B) = crc(c, A)·x^(8|B|) mod P ⊕ crc(0, B)</c>. A segment's per-block checksums and its
    /// whole-segment checksum are made from one pass over each data block this way.
    /// </summary>
    public static uint Concat(uint state, uint appendedFromZero, int appendedBytes) =>
        MultiplyModP(state, LaneShift(appendedBytes)) ^ appendedFromZero;

    // x^(8n) mod P for recently used lane sizes n, each packed as (n << 32) | factor: one 64-bit word, read and
    // written atomically, so no lock. Few sizes recur (a 4 KiB block per pmem write, a segment per flush), and
    // computing the factor (a dozen bitwise multiplications) cost more than the CRC of a 4 KiB block itself.
    private static readonly long[] LaneShifts = new long[8];

    private static uint LaneShift(int laneBytes)
    {
        ref long entry = ref LaneShifts[(laneBytes >> 3) & (LaneShifts.Length - 1)];
        long cached = Volatile.Read(ref entry);
        if ((int)(cached >> 32) == laneBytes)
        {
            return (uint)cached;
        }
        uint shift = XToThePowerOf8n(laneBytes);
        Volatile.Write(ref entry, ((long)laneBytes << 32) | shift);
        return shift;
    }

    private static uint AppendSerial(uint crc, ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<ulong> words = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (ulong word in words)
        {
            crc = BitOperations.Crc32C(crc, LittleEndian(word));
        }
        foreach (byte b in data[(words.Length * sizeof(ulong))..])
        {
            crc = BitOperations.Crc32C(crc, b);
        }
        return crc;
    }

    private static ulong LittleEndian(ulong word) => BitConverter.IsLittleEndian ? word : BinaryPrimitives.ReverseEndianness(word);

    /// <summary>a·b mod P for polynomials in the reflected representation (bit 31 = x^0, bit 0 = x^31).</summary>
    /// <remarks>
    /// With a carry-less multiply (PCLMULQDQ) in about 6 ns, against 60 ns a bit at a time — a 4 KiB block's CRC
    /// joins its lanes with two of these and a segment's checksums take two per block. The 63-bit product, shifted
    /// left once, is a 64-bit reflected polynomial whose low word holds degrees 63..32 and whose high word holds
    /// 31..0; the CRC instruction on the low word from state 0 gives that word·x^32 mod P, and the high word is
    /// already reduced.
    /// </remarks>
    internal static uint MultiplyModP(uint a, uint b)
    {
        if (!Pclmulqdq.IsSupported)
        {
            return MultiplyModPBitwise(a, b);
        }
        ulong product = Pclmulqdq.CarrylessMultiply(Vector128.CreateScalar((ulong)a), Vector128.CreateScalar((ulong)b), 0).ToScalar() << 1;
        return BitOperations.Crc32C(0u, (uint)product) ^ (uint)(product >> 32);
    }

    /// <summary><see cref="MultiplyModP"/> a bit at a time: the definition, and the fallback without a carry-less multiply.</summary>
    internal static uint MultiplyModPBitwise(uint a, uint b)
    {
        // Branch-free: the bits of a CRC are random, so a branch per bit was mispredicted half the time.
        uint product = 0;
        for (int degree = 0; degree < 32; degree++)
        {
            product ^= b & (0u - ((a >> (31 - degree)) & 1));
            // b ← b·x mod P: in the reflected form a right shift, folding x^32 back in as P.
            b = (b >> 1) ^ (ReflectedPolynomial & (0u - (b & 1)));
        }
        return product;
    }

    /// <summary>x^(8n) mod P: the factor that moves a CRC state past n zero bytes.</summary>
    internal static uint XToThePowerOf8n(long n)
    {
        uint result = 0x80000000u; // x^0
        long exponent = n * 8;
        for (int k = 0; exponent != 0; k++, exponent >>= 1)
        {
            if ((exponent & 1) != 0)
            {
                result = MultiplyModP(result, XToThe2ToThe[k]);
            }
        }
        return result;
    }

    private static uint[] BuildPowerTable()
    {
        uint[] table = new uint[64];
        table[0] = 0x40000000u; // x^1
        for (int k = 1; k < table.Length; k++)
        {
            table[k] = MultiplyModP(table[k - 1], table[k - 1]);
        }
        return table;
    }
}
