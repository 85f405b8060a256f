using Writeboost.Cache.Format;
using Writeboost.Cache.Recovery;
using Writeboost.CrashTest.Recording;
using Writeboost.Devices;

namespace Writeboost.Tests.Cache;

/// <summary>
/// Recovery validates each segment after the superblock record by its checksum. Over crash states that share a
/// timeline it keeps each segment's data CRC (<see cref="SegmentChecksumMemo"/>) and reads only the header block
/// while every data page gives the token it gave then; a data page changed anywhere (the timeline, the state) makes
/// it read and checksum the data again.
/// </summary>
[TestClass]
public sealed class SegmentChecksumMemoTests
{
    private static readonly CacheGeometry Geometry = CacheGeometry.For(CacheGeometry.SuperblockRegionBytes + 4 * (1 << 16), segmentSizeOrder: 7);
    private const long Slot = 2;

    [TestMethod]
    public void A_segment_is_validated_from_its_kept_crc_only_while_none_of_its_data_pages_changed()
    {
        PagedImage timeline = new(new PagedImage(new byte[Geometry.SegmentStartBytes(Geometry.NrSegments)]).Freeze());
        byte[] image = new byte[Geometry.SegmentSizeBytes];
        new Random(3).NextBytes(image);
        int length = Geometry.BlocksPerSegment;
        SegmentImage.Finish(image, id: 3, length, Geometry.MetablockBytes);
        timeline.Write(Geometry.SegmentStartBytes(Slot), image);
        SegmentChecksumMemo memo = new();

        SegmentSlotRead first = ReadState(timeline, memo, out _);
        SegmentSlotRead again = ReadState(timeline, memo, out _);
        Assert.IsTrue(first.IsValid && !first.DataSkipped, "read and checksummed the first time");
        Assert.IsTrue(again.IsValid && again.DataSkipped, "its data pages are the timeline's, unchanged");

        SegmentSlotRead stateTorn = ReadState(timeline, memo, out _, tearInState: true);
        Assert.IsFalse(stateTorn.ChecksumHolds, "a data page only this state holds");

        timeline.Write(Geometry.SegmentStartBytes(Slot) + 5 * 4096 + 512, new byte[512]); // a sector of block 4 torn
        SegmentSlotRead torn = ReadState(timeline, memo, out byte[] read);
        Assert.IsFalse(torn.ChecksumHolds, "the timeline wrote one of its data pages");
        Assert.AreEqual(SegmentHeaderOnDisk.ComputeChecksum(read, length), torn.ComputedChecksum, "what a read of everything computes");
    }

    private static SegmentSlotRead ReadState(PagedImage timeline, SegmentChecksumMemo memo, out byte[] segment, bool tearInState = false)
    {
        PagedBlockDevice state = new(new PagedImage(timeline), "cache");
        if (tearInState)
        {
            state.Write(Geometry.SegmentStartBytes(Slot) + 2 * 4096, new byte[512]);
        }
        segment = new byte[Geometry.SegmentSizeBytes];
        Assert.IsTrue(memo.TryTake());
        try
        {
            return SegmentLogReader.Read(state, Geometry, Slot, segment, memo);
        }
        finally
        {
            memo.Give();
        }
    }
}
