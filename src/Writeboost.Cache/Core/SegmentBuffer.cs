using Writeboost.Cache.Format;
using Writeboost.Devices;

namespace Writeboost.Cache.Core;

/// <summary>
/// One RAM buffer of the pool: the image of a whole segment (4 KiB metadata block + data blocks) as it will be
/// written to the cache device. Pinned and 4 KiB aligned, so an O_DIRECT cache device writes it without a copy.
/// </summary>
internal sealed class SegmentBuffer
{
    public SegmentBuffer(long segmentSizeBytes) => Image = AlignedMemory.Allocate(checked((int)segmentSizeBytes));

    /// <summary>The segment image: metadata block then data blocks.</summary>
    public Memory<byte> Image { get; }

    /// <summary>Which segment id the buffer currently holds (0 = none).</summary>
    public ulong SegmentId { get; set; }

    /// <summary>
    /// The header's checksum, once sealed: <see cref="ChecksumNeeded"/> → (claimed by one thread, CAS) →
    /// <see cref="ChecksumDone"/>. The writer that sealed the buffer computes it after leaving the lock, in
    /// parallel with the flush worker's I/O; the flush worker computes it itself if nobody has claimed it.
    /// </summary>
    public int ChecksumState;
    public const int ChecksumNeeded = 0;
    public const int ChecksumClaimed = 1;
    public const int ChecksumDone = 2;

    /// <summary>
    /// Computes and stores the checksums (entry checksums, metablocks crc, the segment checksum, the header)
    /// unless another thread has claimed it; then waits until they are stored.
    /// </summary>
    public void EnsureChecksum(ulong id, int length, int entryBytes)
    {
        if (Interlocked.CompareExchange(ref ChecksumState, ChecksumClaimed, ChecksumNeeded) == ChecksumNeeded)
        {
            SegmentImage.Finish(Image.Span, id, length, entryBytes);
            Volatile.Write(ref ChecksumState, ChecksumDone);
            return;
        }
        SpinWait spin = default;
        while (Volatile.Read(ref ChecksumState) != ChecksumDone)
        {
            spin.SpinOnce();
        }
    }

    public Span<byte> Block(int indexInSegment) => Image.Span.Slice((int)Units.BlocksToBytes(1 + indexInSegment), Units.BlockBytes);

    public void ClearMetadata() => Image.Span[..Units.BlockBytes].Clear();
}
