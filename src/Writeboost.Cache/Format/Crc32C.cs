using System.Buffers.Binary;
using System.Diagnostics;
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
///
/// <para>Why folding, where the CPU has a 512-bit carry-less multiply (VPCLMULQDQ with AVX-512): the crc32
/// instruction takes 8 bytes a cycle at best, so a 4 KiB block costs about 500 cycles however its lanes are
/// arranged — a quarter of a mode-1 FUA write. Folding keeps the buffer's polynomial in four 512-bit registers
/// (sixteen 128-bit pieces) and moves each piece 256 bytes on with two carry-less multiplies by a power of x mod P,
/// taking in the next 256 bytes: 32 bytes a cycle. The pieces are folded into one 128-bit value at the end, whose
/// CRC from state 0 (two crc32 steps) is the buffer's (see <see cref="AppendFolded"/>).</para>
/// </summary>
public static class Crc32C
{
    private const uint ReflectedPolynomial = 0x82F63B78;
    private const int LaneThresholdBytes = 3 * 1024;
    /// <summary>The least a folded CRC takes: one pass of its four 64-byte registers.</summary>
    internal const int FoldThresholdBytes = 256;

    // XToThe2ToThe[k] = x^(2^k) mod P, in the reflected representation (bit 31 is x^0).
    private static readonly uint[] XToThe2ToThe = BuildPowerTable();

    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(~0u, data);

    /// <summary>Raw update of a running (not complemented) CRC value.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        if (data.Length >= FoldThresholdBytes && CanFold)
        {
            return AppendFolded(crc, data);
        }
        return AppendThreeLanes(crc, data);
    }

    /// <summary>The crc32 instruction in three interleaved lanes (short buffers: one), without the carry-less folding.</summary>
    internal static uint AppendThreeLanes(uint crc, ReadOnlySpan<byte> data)
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

    /// <summary>Whether <see cref="AppendFolded"/> runs here: a 512-bit carry-less multiply and the crc32 instruction.</summary>
    internal static bool CanFold => Pclmulqdq.V512.IsSupported && Sse42.X64.IsSupported;

    /// <summary>
    /// The raw CRC of <paramref name="data"/> (at least <see cref="FoldThresholdBytes"/>) from state
    /// <paramref name="crc"/>, by folding (<see cref="CanFold"/> must hold).
    /// </summary>
    /// <remarks>
    /// <para>The algebra, in the reflected representation (the first byte's bit 0 is the highest power of x). Loaded
    /// little-endian, a 16-byte piece is a 128-bit register whose low qword H holds its first 8 bytes: the piece is
    /// H·x^64 + L. Moving it D bits further into the buffer multiplies it by x^D, and mod P that is
    /// H·(x^(64+D) mod P) + L·(x^D mod P), two 64 × 32-bit carry-less products that fit the register again. A
    /// carry-less product of two reflected 64-bit values is their product times x (one bit short of 128), so each
    /// constant is taken one power lower: x^(63+D) and x^(D-1), reflected into the high half of a qword.</para>
    /// <para>The running state enters by an XOR into the first 4 bytes (crc(c, B) = crc(0, B with c XORed into its
    /// head), as the crc32 instruction does). What is left at the end is one 128-bit value congruent to everything
    /// before it; its CRC from state 0 is the buffer's, and the bytes past the last whole 16 go on serially.</para>
    /// </remarks>
    internal static uint AppendFolded(uint crc, ReadOnlySpan<byte> data) => FoldedCrc(crc, data, copyTo: default);

    /// <summary>
    /// The raw CRC of <paramref name="source"/> from state <paramref name="crc"/>, copying it into
    /// <paramref name="destination"/> on the way: one pass, its loads taken from the source (which its writer just
    /// made, so in the CPU's cache) rather than from the fresh copy. What is checksummed is what was copied.
    /// </summary>
    public static uint CopyAndAppend(uint crc, ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (destination.Length < source.Length || source.Overlaps(destination))
        {
            throw new ArgumentException($"a CRC-and-copy needs a destination of its own of at least {source.Length} bytes");
        }
        if (source.Length >= FoldThresholdBytes && CanFold)
        {
            return FoldedCrc(crc, source, destination);
        }
        source.CopyTo(destination);
        return Append(crc, source);
    }

    private static uint FoldedCrc(uint crc, ReadOnlySpan<byte> data, Span<byte> copyTo)
    {
        Debug.Assert(CanFold && data.Length >= FoldThresholdBytes);
        bool copying = !copyTo.IsEmpty;
        ref byte start = ref MemoryMarshal.GetReference(data);
        ref byte copy = ref MemoryMarshal.GetReference(copyTo);
        Vector512<byte> d0 = Vector512.LoadUnsafe(ref start, 0);
        Vector512<byte> d1 = Vector512.LoadUnsafe(ref start, 64);
        Vector512<byte> d2 = Vector512.LoadUnsafe(ref start, 128);
        Vector512<byte> d3 = Vector512.LoadUnsafe(ref start, 192);
        if (copying)
        {
            StoreFour(ref copy, 0, d0, d1, d2, d3);
        }
        Vector512<ulong> a0 = d0.AsUInt64() ^ Vector512.CreateScalar((ulong)crc);
        Vector512<ulong> a1 = d1.AsUInt64();
        Vector512<ulong> a2 = d2.AsUInt64();
        Vector512<ulong> a3 = d3.AsUInt64();
        nuint wholeBlocks = (nuint)data.Length / FoldThresholdBytes * FoldThresholdBytes;
        Vector512<ulong> by256 = FoldConstants.By256Bytes;
        for (nuint offset = FoldThresholdBytes; offset < wholeBlocks; offset += FoldThresholdBytes)
        {
            d0 = Vector512.LoadUnsafe(ref start, offset);
            d1 = Vector512.LoadUnsafe(ref start, offset + 64);
            d2 = Vector512.LoadUnsafe(ref start, offset + 128);
            d3 = Vector512.LoadUnsafe(ref start, offset + 192);
            if (copying)
            {
                StoreFour(ref copy, offset, d0, d1, d2, d3);
            }
            a0 = Fold(a0, by256) ^ d0.AsUInt64();
            a1 = Fold(a1, by256) ^ d1.AsUInt64();
            a2 = Fold(a2, by256) ^ d2.AsUInt64();
            a3 = Fold(a3, by256) ^ d3.AsUInt64();
        }
        if (copying)
        {
            data[(int)wholeBlocks..].CopyTo(copyTo[(int)wholeBlocks..]);
        }
        Vector512<ulong> by64 = FoldConstants.By64Bytes;
        a1 ^= Fold(a0, by64);
        a2 ^= Fold(a1, by64);
        a3 ^= Fold(a2, by64);
        Vector128<ulong> by16 = FoldConstants.By16Bytes;
        Vector128<ulong> x = a3.GetLower().GetLower();
        x = Fold(x, by16) ^ a3.GetLower().GetUpper();
        x = Fold(x, by16) ^ a3.GetUpper().GetLower();
        x = Fold(x, by16) ^ a3.GetUpper().GetUpper();
        nuint wholePieces = (nuint)data.Length / 16 * 16;
        for (nuint offset = wholeBlocks; offset < wholePieces; offset += 16)
        {
            x = Fold(x, by16) ^ Vector128.LoadUnsafe(ref start, offset).AsUInt64();
        }
        uint folded = (uint)Sse42.X64.Crc32(Sse42.X64.Crc32(0, x.GetElement(0)), x.GetElement(1));
        return AppendSerial(folded, data[(int)wholePieces..]);
    }

    private static void StoreFour(ref byte destination, nuint offset, Vector512<byte> d0, Vector512<byte> d1, Vector512<byte> d2, Vector512<byte> d3)
    {
        d0.StoreUnsafe(ref destination, offset);
        d1.StoreUnsafe(ref destination, offset + 64);
        d2.StoreUnsafe(ref destination, offset + 128);
        d3.StoreUnsafe(ref destination, offset + 192);
    }

    private static Vector512<ulong> Fold(Vector512<ulong> x, Vector512<ulong> k) =>
        Pclmulqdq.V512.CarrylessMultiply(x, k, 0x00) ^ Pclmulqdq.V512.CarrylessMultiply(x, k, 0x11);

    private static Vector128<ulong> Fold(Vector128<ulong> x, Vector128<ulong> k) =>
        Pclmulqdq.CarrylessMultiply(x, k, 0x00) ^ Pclmulqdq.CarrylessMultiply(x, k, 0x11);

    /// <summary>The folding multipliers, per 128-bit piece: (x^(63+D) mod P, x^(D-1) mod P), reflected, D the distance moved in bits.</summary>
    private static class FoldConstants
    {
        public static readonly Vector512<ulong> By256Bytes = Vector512.Create(For(256 * 8));
        public static readonly Vector512<ulong> By64Bytes = Vector512.Create(For(64 * 8));
        public static readonly Vector128<ulong> By16Bytes = For(16 * 8);

        private static Vector128<ulong> For(int distanceBits) =>
            Vector128.Create((ulong)XToThePower(63 + distanceBits) << 32, (ulong)XToThePower(distanceBits - 1) << 32);
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
    internal static uint XToThePowerOf8n(long n) => XToThePower(n * 8);

    /// <summary>x^<paramref name="exponent"/> mod P, reflected.</summary>
    internal static uint XToThePower(long exponent)
    {
        uint result = 0x80000000u; // x^0
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
