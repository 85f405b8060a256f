using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Recovery;
using Writeboost.Devices;
using Writeboost.Tests.Support;
using static Writeboost.Tests.Cache.WritePathTests;

namespace Writeboost.Tests.Cache;

/// <summary>
/// Recovery's walk of the ring on its own: a ring image (segments written by the device, then a crash's or
/// damage's change to them) and what the walk decides for each id — replayed, a tombstone, discarded, damaged,
/// or a refusal — with nothing replayed or written.
/// </summary>
[TestClass]
public sealed class RingWalkTests
{
    private const int Order = 5;            // 16 KiB segments of 3 blocks
    private const int Slots = 8;
    private const long SegmentBytes = 16 * 1024;
    private const long BackingBytes = 128 * 1024;

    /// <summary>How a segment of the ring is written: by a FUA write (durable, one block), or three plain writes that seal it without a flush.</summary>
    public enum Written
    {
        Durable,
        NotFlushed,
    }

    /// <summary>What a crash or damage does to a segment's slot afterwards.</summary>
    public enum Change
    {
        None,
        /// <summary>Its header sector zeroed: the write never reached the media.</summary>
        HeaderZeroed,
        /// <summary>A byte of its first data block flipped: its checksum fails.</summary>
        DataFlipped,
        /// <summary>Its header sector overwritten with another slot's header: an id that does not belong there.</summary>
        HeaderOfAnotherSlot,
    }

    public sealed record Row(string Name, (Written Written, Change Change)[] Segments, string Expected, ulong LastKept, bool Refused = false);

    /// <summary>Fates, by id from 1: R replayed, T tombstone (crash tail before a kept id), X discarded, D damaged, L lost (accepted), P from pmem.</summary>
    public static IEnumerable<object[]> Rings =>
    [
        [new Row("three durable segments", [(Written.Durable, Change.None), (Written.Durable, Change.None), (Written.Durable, Change.None)], "RRR", 3)],
        [new Row("an unflushed tail that reached the media", [(Written.Durable, Change.None), (Written.NotFlushed, Change.None)], "RR", 2)],
        [new Row("an unflushed tail torn by the crash", [(Written.Durable, Change.None), (Written.NotFlushed, Change.DataFlipped)], "RX", 1)],
        [new Row("an unflushed tail that never reached the media", [(Written.Durable, Change.None), (Written.NotFlushed, Change.HeaderZeroed)], "R", 1)],
        [new Row("a gap before an intact segment", [(Written.Durable, Change.None), (Written.NotFlushed, Change.HeaderZeroed), (Written.NotFlushed, Change.None)], "RTR", 3)],
        [new Row("two gaps in a row before an intact segment", [(Written.Durable, Change.None), (Written.NotFlushed, Change.HeaderZeroed), (Written.NotFlushed, Change.DataFlipped), (Written.NotFlushed, Change.None)], "RTTR", 4)],
        [new Row("a gap right after the superblock record", [(Written.NotFlushed, Change.HeaderZeroed), (Written.NotFlushed, Change.None)], "TR", 2)],
        [new Row("a durable segment's data damaged", [(Written.Durable, Change.None), (Written.Durable, Change.DataFlipped), (Written.Durable, Change.None)], "RDR", 3)],
        [new Row("a durable segment's header zeroed, its entries each checked", [(Written.Durable, Change.None), (Written.Durable, Change.HeaderZeroed), (Written.Durable, Change.None)], "RDR", 3)],
        [new Row("a durable segment's slot holding another id", [(Written.Durable, Change.None), (Written.Durable, Change.HeaderOfAnotherSlot), (Written.Durable, Change.None)], "RLR", 3, Refused: true)],
        [new Row("an unflushed segment's slot holding another id", [(Written.Durable, Change.None), (Written.NotFlushed, Change.HeaderOfAnotherSlot), (Written.NotFlushed, Change.None)], "RTR", 3)],
    ];

    public static string NameOf(System.Reflection.MethodInfo _, object[] row) => ((Row)row[0]).Name;

    [TestMethod]
    [DynamicData(nameof(Rings), DynamicDataDisplayName = nameof(NameOf))]
    public void The_walk_decides_each_id_of_a_ring_image(Row row)
    {
        using MemoryBlockDevice cache = RingOf(row.Segments, out int[] blocksOf);
        byte[] before = cache.Media.ToArray();
        RingWalkResult walk = Walk(cache);

        string fates = string.Concat(walk.Segments.Select(s => s.Fate switch
        {
            SegmentFate.Replayed => 'R',
            SegmentFate.CrashTail => 'T',
            SegmentFate.Discarded => 'X',
            SegmentFate.Damaged => 'D',
            SegmentFate.LostAccepted => 'L',
            _ => 'P',
        }));
        string problems = string.Join("; ", walk.Segments.Where(s => s.Problem is not null).Select(s => $"{s.Id}: {s.Problem}"));
        Assert.AreEqual(row.Expected, fates, $"{row.Name}: {problems} {walk.Refusal}");
        Assert.AreEqual(row.LastKept, walk.LastKeptId, row.Name);
        Assert.AreEqual(row.Refused, walk.Refusal is not null, $"{row.Name}: {walk.Refusal}");
        Assert.AreEqual(0ul, walk.RecordId, "nothing was written back: the walk starts after id 0");
        // Discarded ids' slots are zeroed so the ids can be reused; no other slot is touched.
        CollectionAssert.AreEquivalent(walk.Segments.Where(s => s.Fate == SegmentFate.Discarded && Slot(cache, s.Slot)[..512].ContainsAnyExcept((byte)0)).Select(s => s.Slot).ToList(), walk.SlotsToZero.ToList());
        for (int i = 0; i < walk.Segments.Count; i++)
        {
            WalkedSegment segment = walk.Segments[i];
            if (segment.Fate == SegmentFate.Replayed)
            {
                Assert.AreEqual(blocksOf[i], segment.BlocksReplayed, $"{row.Name}: segment {segment.Id}'s blocks");
            }
            if (segment.Fate == SegmentFate.Damaged && row.Segments[i].Change == Change.DataFlipped)
            {
                Assert.AreEqual(1, segment.BlocksPoisoned, $"{row.Name}: only the flipped block of segment {segment.Id} is poisoned");
            }
        }
        CollectionAssert.AreEqual(before, cache.Media.ToArray(), "the walk only reads");
    }

    [TestMethod]
    public void A_ring_that_wrapped_is_walked_from_the_record_and_not_past_a_lap()
    {
        // Twelve durable segments in eight slots: the first four were written back (the record says so) and reused.
        using CacheRig rig = new(BackingBytes, Order, Slots);
        for (int i = 0; i < 12; i++)
        {
            rig.Write(i % 16 * 4096L, Filled(4096, (byte)(i + 1)), WriteOptions.Fua);
        }
        rig.Device.Dispose(); // a clean close: everything written back, the record up to date
        RingWalkResult clean = Walk(rig.Cache);
        Assert.IsTrue(clean.Segments.All(s => s.Fate == SegmentFate.Replayed), string.Join(", ", clean.Segments.Select(s => $"{s.Id} {s.Fate}")));
        Assert.IsGreaterThanOrEqualTo(4ul, clean.RecordId, "the slots reused were written back first");
        Assert.AreEqual(12ul, clean.LastKeptId);
        Assert.IsTrue(clean.Segments.All(s => s.Id > clean.RecordId && s.Id <= clean.RecordId + Slots), "at most a lap after the record is walked");
    }

    /// <summary>Writes the ring with a device (mode 0, no writeback), crashes it, then applies each segment's change.</summary>
    private static MemoryBlockDevice RingOf((Written Written, Change Change)[] segments, out int[] blocksOf)
    {
        MemoryBlockDevice backing = new(BackingBytes, name: "backing");
        MemoryBlockDevice cache = new((1 << 20) + Slots * SegmentBytes, name: "cache");
        blocksOf = new int[segments.Length];
        using (WriteboostDevice device = WriteboostDevice.Open(backing, cache, new Writeboost.Cache.Table.Tunables(new Dictionary<string, long> { ["segment_size_order"] = Order, ["writeback_threshold"] = 0 })))
        {
            int block = 0;
            for (int s = 0; s < segments.Length; s++)
            {
                if (segments[s].Written == Written.Durable)
                {
                    device.Write(block++ * 4096L, Filled(4096, (byte)(s + 1)), WriteOptions.Fua); // a partial segment of one block, flushed
                    blocksOf[s] = 1;
                }
                else
                {
                    for (int i = 0; i < 3; i++)
                    {
                        device.Write(block++ * 4096L, Filled(4096, (byte)(s + 1))); // three blocks seal it: written, never flushed
                    }
                    ulong id = (ulong)s + 1;
                    Assert.IsTrue(SpinWait.SpinUntil(() => device.Status().LastFlushedId >= id, TimeSpan.FromSeconds(30)), $"segment {id} written");
                    blocksOf[s] = 3;
                }
            }
            device.Abandon();
        }
        for (int s = 0; s < segments.Length; s++)
        {
            Span<byte> slot = Slot(cache, s);
            switch (segments[s].Change)
            {
                case Change.HeaderZeroed:
                    slot[..512].Clear();
                    break;
                case Change.DataFlipped:
                    slot[4096 + 100] ^= 0xFF;
                    break;
                case Change.HeaderOfAnotherSlot:
                    Slot(cache, s - 1)[..512].CopyTo(slot);
                    break;
            }
        }
        return cache;
    }

    private static Span<byte> Slot(MemoryBlockDevice cache, long slot) => cache.Media.Slice((int)((1 << 20) + slot * SegmentBytes), (int)SegmentBytes);

    private static RingWalkResult Walk(MemoryBlockDevice cache)
    {
        byte[] block = new byte[Units.BlockBytes];
        cache.Read(SuperblockRecordOnDisk.WriteOffsetBytes, block);
        return RingWalk.Run(new RingWalk.Input(cache, CacheGeometry.For(cache.SizeBytes, Order), SuperblockRecordOnDisk.Read(block), Ours: true,
            Units.BytesToSectors(BackingBytes), Pmem: null, AcceptLoss: false, FaultHooks.None));
    }
}
