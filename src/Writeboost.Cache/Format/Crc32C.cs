using System.Numerics;
using System.Runtime.InteropServices;

namespace Writeboost.Cache.Format;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): seed ~0, result complemented — the standard
/// CRC-32C, which is what dm-writeboost v2.0.2 and later store (<c>~crc32c(~0, ...)</c>). The inner steps use
/// <see cref="BitOperations.Crc32C(uint, ulong)"/>, the SSE4.2 / ARMv8 CRC instruction where the CPU has it.
/// </summary>
public static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(~0u, data);

    /// <summary>Raw update of a running (not complemented) CRC value.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<ulong> words = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (ulong word in words)
        {
            crc = BitOperations.Crc32C(crc, BitConverter.IsLittleEndian ? word : System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(word));
        }
        foreach (byte b in data[(words.Length * sizeof(ulong))..])
        {
            crc = BitOperations.Crc32C(crc, b);
        }
        return crc;
    }
}
