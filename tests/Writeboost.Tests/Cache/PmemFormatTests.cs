using System.Buffers.Binary;
using Writeboost.Cache.PmemBuffer;
using Writeboost.CrashTest.Recording;

namespace Writeboost.Tests.Cache;

/// <summary>
/// Formatting a pmem region survives a crash part way: the region header spans two cache lines, and a crash may keep
/// either without the other. A format marks the region first, so the next open knows the half-written header for
/// what it is; a region without the mark is never taken for one.
/// </summary>
[TestClass]
public sealed class PmemFormatTests
{
    private static readonly PmemLayout Layout = new(SegmentSizeOrder: 5, PoolSize: 2, BlocksPerSegment: 3);

    private static PmemClaim NewCacheClaim(Guid cache) => new(cache, "cache", Guid.Empty, OwnBufferMayHoldWrites: false, Format: false, Discard: false);

    /// <summary>What a crash may leave of a header write: its second line (the buffer uuid's tail and its checksum) without its first.</summary>
    private static MemoryPmemRegion TornHeader(ulong magic)
    {
        MemoryPmemRegion region = new(Layout.RegionBytes);
        byte[] header = new byte[PmemLayout.RegionHeaderBytes];
        Layout.WriteHeader(header, Guid.NewGuid(), Guid.NewGuid());
        header.AsSpan(0, 64).Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(header, magic);
        region.Write(0, header);
        return region;
    }

    [TestMethod]
    public void A_format_interrupted_after_its_mark_is_formatted_again_at_the_next_open()
    {
        MemoryPmemRegion region = TornHeader(PmemLayout.FormatPendingMagic);
        Guid cache = Guid.NewGuid();

        PmemBufferPool.Open(region, Layout, NewCacheClaim(cache), out PmemOpened opened);

        Assert.IsTrue(opened.Formatted);
        StringAssert.Contains(opened.Warning, "a format of it was interrupted");
        byte[] header = new byte[PmemLayout.RegionHeaderBytes];
        region.Read(0, header);
        Assert.AreEqual(PmemHeaderState.Ours, Layout.CheckHeader(header, cache).State, "finished: the magic stored last");
    }

    [TestMethod]
    public void A_region_whose_magic_is_zero_beside_other_bytes_is_still_refused_as_not_a_buffer()
    {
        MemoryPmemRegion region = TornHeader(0); // a file given by mistake looks like this too: it is never formatted over

        InvalidDataException refused = Assert.ThrowsExactly<InvalidDataException>(() => PmemBufferPool.Open(region, Layout, NewCacheClaim(Guid.NewGuid()), out _));

        StringAssert.Contains(refused.Message, "not a writeboost pmem buffer (magic 0x0000000000000000)");
    }
}
