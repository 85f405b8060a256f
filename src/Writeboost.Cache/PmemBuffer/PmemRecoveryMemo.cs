using System.Diagnostics;
using Writeboost.Cache.Format;
using Writeboost.Cache.Recovery;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Cache.PmemBuffer;

/// <summary>
/// What recovery read of the pmem buffers' slots, kept for the next recovery over media that can say which pages
/// are unchanged (<see cref="PmemRegion.VersionOf"/>): a slot whose page gives the token it gave then is not read
/// or checksummed again. A crash campaign recovers thousands of states over one base in turn, and at order 11 each
/// would otherwise read and checksum up to a megabyte of slots that are the same in all of them. On any other
/// region (a real one gives no tokens) it keeps nothing.
/// <para>One recovery at a time uses it (a crash campaign keeps one per checking thread; a second recovery while
/// one holds it recovers without it). It holds, per buffer, the image the segment is rebuilt in: the slots' data
/// at their blocks, and for each slot the token it was read under and its data's raw CRC.</para>
/// </summary>
internal sealed class PmemRecoveryMemo : HeldByOneRecovery
{
    private readonly Dictionary<int, Kept> _buffers = [];

    /// <summary>Buffer <paramref name="buffer"/>'s image of <paramref name="imageBytes"/> and what it holds (a new, empty one when the size changed).</summary>
    internal Kept For(int buffer, int imageBytes)
    {
        Debug.Assert(IsHeld, "a recovery memo used without being taken");
        if (!_buffers.TryGetValue(buffer, out Kept? kept) || kept.Image.Length != imageBytes)
        {
            _buffers[buffer] = kept = new Kept(imageBytes);
        }
        return kept;
    }

    /// <summary>
    /// One buffer's rebuild image and what it knows: for each slot, the raw CRC of its data under the page token it
    /// was read under; for each block of the image, which pmem page (offset and token) it holds a copy of. A slot's
    /// data moves down over the slots dropped below it, so a slot's data is found by the block that holds its page,
    /// not by its index.
    /// </summary>
    internal sealed class Kept
    {
        private readonly long[] _slotOffsets;
        private readonly PageVersion?[] _slotVersions;
        private readonly uint[] _slotCrcs;
        private readonly long[] _blockOffsets;
        private readonly PageVersion?[] _blockVersions;

        public Kept(int imageBytes)
        {
            Image = new byte[imageBytes];
            int slots = imageBytes / Units.BlockBytes - 1;
            _slotOffsets = new long[slots];
            _slotVersions = new PageVersion?[slots];
            _slotCrcs = new uint[slots];
            _blockOffsets = new long[slots];
            _blockVersions = new PageVersion?[slots];
            Now = new PageVersion?[slots];
        }

        /// <summary>The segment's image: block 1 + b is data block b.</summary>
        public byte[] Image { get; }

        /// <summary>Each slot's page token in the recovery under way (scratch for the reader).</summary>
        public PageVersion?[] Now { get; }

        /// <summary>The raw CRC of slot <paramref name="slot"/>'s data at <paramref name="offsetBytes"/>, if it was computed under the token <paramref name="version"/>.</summary>
        public bool CrcOf(int slot, long offsetBytes, PageVersion? version, out uint crc)
        {
            crc = _slotCrcs[slot];
            return Same(_slotOffsets[slot], _slotVersions[slot], offsetBytes, version);
        }

        /// <summary>Slot <paramref name="slot"/>'s data at <paramref name="offsetBytes"/>, under <paramref name="version"/> (null: not to be kept), has raw CRC <paramref name="crc"/>.</summary>
        public void Checked(int slot, long offsetBytes, PageVersion? version, uint crc)
        {
            _slotOffsets[slot] = offsetBytes;
            _slotVersions[slot] = version;
            _slotCrcs[slot] = crc;
        }

        /// <summary>Data block <paramref name="block"/> holds the page at <paramref name="offsetBytes"/> as it is under <paramref name="version"/>.</summary>
        public bool BlockHolds(int block, long offsetBytes, PageVersion? version) =>
            Same(_blockOffsets[block], _blockVersions[block], offsetBytes, version);

        /// <summary>Data block <paramref name="block"/> now holds the page at <paramref name="offsetBytes"/> under <paramref name="version"/> (null: not to be kept).</summary>
        public void Filled(int block, long offsetBytes, PageVersion? version)
        {
            _blockOffsets[block] = offsetBytes;
            _blockVersions[block] = version;
        }

        /// <summary>Data block <paramref name="block"/> holds nothing to keep (a lost slot's, which the rebuild clears).</summary>
        public void Forget(int block) => _blockVersions[block] = null;

        private static bool Same(long keptOffset, PageVersion? keptVersion, long offsetBytes, PageVersion? version) =>
            version is { } now && keptVersion is { } then && now == then && keptOffset == offsetBytes;
    }
}
