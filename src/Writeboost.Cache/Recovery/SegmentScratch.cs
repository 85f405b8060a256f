using System.Buffers;
using System.Numerics;

namespace Writeboost.Cache.Recovery;

/// <summary>
/// A segment-sized scratch array for recovery's reads and rebuilds, rented rather than allocated: a crash campaign
/// opens a device for every state it checks, and a fresh 1 MiB array (order 11) each time is the kernel's page
/// faults and zeroing, the largest cost of an open. Its bytes are what an earlier user left: a reader consults only
/// what it read or wrote (a slot's header, then the blocks its length names).
/// </summary>
internal readonly struct SegmentScratch : IDisposable
{
    /// <summary>Exactly the segment's bytes (segment sizes are powers of two, the pool's own sizes).</summary>
    public byte[] Bytes { get; }

    public SegmentScratch(int segmentBytes)
    {
        byte[] rented = ArrayPool<byte>.Shared.Rent(segmentBytes);
        if (rented.Length != segmentBytes)
        {
            ArrayPool<byte>.Shared.Return(rented);
            rented = new byte[segmentBytes];
        }
        Bytes = rented;
        _pooled = true;
    }

    private SegmentScratch(byte[] borrowed) => Bytes = borrowed;

    /// <summary>Whether <see cref="Dispose"/> gives the bytes to the pool: not when they were lent (<see cref="Borrowed"/>).</summary>
    private readonly bool _pooled;

    /// <summary>Scratch over <paramref name="bytes"/>, which stay their owner's: disposing it gives nothing back.</summary>
    public static SegmentScratch Borrowed(byte[] bytes) => new(bytes);

    public void Dispose()
    {
        if (_pooled && BitOperations.IsPow2(Bytes.Length))
        {
            ArrayPool<byte>.Shared.Return(Bytes);
        }
    }
}
