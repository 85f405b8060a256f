using System.Diagnostics;
using Writeboost.Cache.Format;
using Writeboost.Devices;

namespace Writeboost.Cache.Core;

/// <summary>
/// One RAM buffer of the pool: the image of a whole segment (4 KiB metadata block + data blocks) as it will be
/// written to the cache device. Pinned and 4 KiB aligned, so an O_DIRECT cache device writes it without a copy.
/// </summary>
internal sealed class SegmentBuffer
{
    private readonly int _segmentSizeBytes;
    private Memory<byte> _image;

    public SegmentBuffer(long segmentSizeBytes)
    {
        _segmentSizeBytes = checked((int)segmentSizeBytes);
        int blocks = (int)(segmentSizeBytes / Units.BlockBytes) - 1;
        _dataCrcs = new uint[blocks];
        _dataCrcFor = new ulong[blocks];
        _copyPending = new int[blocks];
    }

    /// <summary>
    /// The segment image: metadata block then data blocks. Allocated when the buffer is first bound to a segment
    /// (under the device lock), so a device that only recovers and reads never pays for its pool.
    /// </summary>
    public Memory<byte> Image => _image.IsEmpty ? _image = AlignedMemory.Allocate(_segmentSizeBytes) : _image;

    /// <summary>Which segment id the buffer currently holds (0 = none).</summary>
    public ulong SegmentId { get; set; }

    // The header's checksum, per sealed segment: (segment id << 2) | state, where state goes Needed → Claimed
    // (by one thread, CAS) → Done. The writer that sealed the buffer computes it after leaving the lock, in
    // parallel with the flush worker's I/O; the flush worker computes it itself if nobody has claimed it. The id
    // is part of the word so a late writer cannot claim the checksum of the buffer's next segment: with a pool of
    // one and two writers, a sealing writer delayed past the flush worker wrote its own segment's id into the
    // header of the segment that reused the buffer (found by the crash harness: two slots held the same id).
    private long _checksum;
    private const long Needed = 0;
    private const long Claimed = 1;
    private const long Done = 2;

    // Per data block: its raw CRC from state 0, when a writer computed it already (mode 1: the pmem record is made
    // of it), and the segment id it was computed for (0 = none) — published after the CRC, so a reader that sees
    // the id sees the CRC; a block without one (another binding's, or not yet placed) is read again.
    private readonly uint[] _dataCrcs;
    private readonly ulong[] _dataCrcFor;

    /// <summary>
    /// Block <paramref name="indexInSegment"/> of segment <paramref name="id"/> has the raw CRC
    /// <paramref name="crcFromZero"/> (computed from this buffer's copy, which no longer changes in this binding):
    /// the segment's checksums use it instead of reading the block again.
    /// </summary>
    public void KnowDataCrc(int indexInSegment, ulong id, uint crcFromZero)
    {
        _dataCrcs[indexInSegment] = crcFromZero;
        Volatile.Write(ref _dataCrcFor[indexInSegment], id);
    }

    private uint? KnownDataCrc(int indexInSegment, ulong id) =>
        Volatile.Read(ref _dataCrcFor[indexInSegment]) == id ? _dataCrcs[indexInSegment] : null;

    // Mode 1: data blocks reserved under the device lock whose data their writer copies in after leaving it
    // (1 = pending). Set under the lock with the reservation, cleared by the writer once its copy is in; whoever
    // reads a block's data — a read, a partial overwrite's merge, the checksum and so the flush — waits for it first
    // (a 4 KiB copy: a microsecond, unless its writer is preempted). A buffer is rebound only once its writers are
    // done (the device's pins), so no flag outlives its binding; mode 0 and read-cache staging copy under the lock.
    private readonly int[] _copyPending;

    /// <summary>Block <paramref name="indexInSegment"/> is reserved and its data not in yet (called under the device lock).</summary>
    public void MarkCopyPending(int indexInSegment)
    {
        Debug.Assert(_copyPending[indexInSegment] == 0, "a block reserved twice in one binding");
        _copyPending[indexInSegment] = 1;
    }

    /// <summary>A reserved block's data goes in at <paramref name="offsetInBlockBytes"/>; readers of it may go on.</summary>
    public void CopyIn(int indexInSegment, int offsetInBlockBytes, ReadOnlySpan<byte> data)
    {
        Debug.Assert(Volatile.Read(ref _copyPending[indexInSegment]) == 1, "a copy into a block that was not reserved for one");
        data.CopyTo(Block(indexInSegment)[offsetInBlockBytes..]);
        Volatile.Write(ref _copyPending[indexInSegment], 0);
    }

    /// <summary>
    /// <see cref="CopyIn"/> of a whole block, returning its raw CRC-32C from state 0, computed in the same pass
    /// (<see cref="Crc32C.CopyAndAppend"/>): mode 1's record needs it, and the segment's checksum reuses it.
    /// </summary>
    public uint CopyInChecksummed(int indexInSegment, ReadOnlySpan<byte> block)
    {
        Debug.Assert(Volatile.Read(ref _copyPending[indexInSegment]) == 1, "a copy into a block that was not reserved for one");
        Debug.Assert(block.Length == Units.BlockBytes, "a checksummed copy is of a whole block");
        uint crc = Crc32C.CopyAndAppend(0, block, Block(indexInSegment));
        Volatile.Write(ref _copyPending[indexInSegment], 0);
        return crc;
    }

    /// <summary>
    /// Returns once block <paramref name="indexInSegment"/>'s data is in (at once unless a writer is copying it).
    /// A copy is a few microseconds, so this spins; but a copier that lost its core (or a perturbed schedule's
    /// stretched window) would be spun on for its whole time slice, so after a while the waiter sleeps.
    /// </summary>
    public void WaitCopied(int indexInSegment)
    {
        SpinWait spin = default;
        while (Volatile.Read(ref _copyPending[indexInSegment]) != 0)
        {
            spin.SpinOnce();
        }
    }

    /// <summary>The buffer was sealed as segment <paramref name="id"/>: its checksum is needed (called under the device lock).</summary>
    public void MarkSealed(ulong id) => Volatile.Write(ref _checksum, (long)(id << 2) | Needed);

    /// <summary>
    /// Computes and stores segment <paramref name="id"/>'s checksums (entry checksums, metablocks crc, the
    /// segment checksum, the header) unless another thread has claimed it, then
    /// waits until it is stored. Returns at once when the buffer no longer holds that segment (it was written
    /// out, the checksum with it, and the buffer reused).
    /// </summary>
    public void EnsureChecksum(ulong id, int length, int entryBytes)
    {
        long needed = (long)(id << 2) | Needed;
        if (Interlocked.CompareExchange(ref _checksum, (long)(id << 2) | Claimed, needed) == needed)
        {
            for (int i = 0; i < length; i++)
            {
                WaitCopied(i);
            }
            SegmentImage.Finish(Image.Span, id, length, entryBytes, knownDataCrc: i => KnownDataCrc(i, id));
            Volatile.Write(ref _checksum, (long)(id << 2) | Done);
            return;
        }
        SpinWait spin = default;
        while (Volatile.Read(ref _checksum) == ((long)(id << 2) | Claimed))
        {
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    public Span<byte> Block(int indexInSegment) => Image.Span.Slice((int)Units.BlocksToBytes(1 + indexInSegment), Units.BlockBytes);

    public void ClearMetadata() => Image.Span[..Units.BlockBytes].Clear();
}
