using Writeboost.Cache.Core;
using Writeboost.Cache.PmemBuffer;
using Writeboost.CrashTest.Recording;

namespace Writeboost.Tests.Cache;

/// <summary>
/// A crash campaign recovers thousands of states over one timeline, and recovery keeps what it read of the pmem
/// buffers' slots for the next state (<see cref="PmemRecoveryMemo"/>), reading again only the pages the media says
/// changed. It must find exactly what a recovery that reads every slot finds, whatever changed in between: a slot's
/// data or record, a hole that moves the slots above it down, a page only the state holds.
/// </summary>
[TestClass]
public sealed class PmemRecoveryMemoTests
{
    private static readonly PmemLayout Layout = new(SegmentSizeOrder: 7, PoolSize: 2, BlocksPerSegment: 15);

    [TestMethod]
    public void Recovery_that_keeps_what_it_read_finds_what_recovery_reading_everything_finds_state_after_state()
    {
        Random random = new(7);
        PagedImage start = new PagedImage(new byte[Layout.RegionBytes]).Freeze();
        PagedImage timeline = new(start);
        PmemBufferPool pool = PmemBufferPool.Open(new MemoryPmemRegion(timeline), Layout,
            new PmemClaim(Guid.NewGuid(), "cache", Guid.Empty, OwnBufferMayHoldWrites: false, Format: true, Discard: false), out _);
        pool.Acquire(0, 1);
        pool.Acquire(1, 2);
        for (int slot = 0; slot < 12; slot++)
        {
            pool.Place(slot % 2, slot, 1 + (ulong)(slot % 2), block: slot, dirtyBits: 0xff, RandomBlock(random));
        }
        pool.Barrier();
        PmemRecoveryMemo memo = new();
        int reused = 0;
        for (int state = 0; state < 300; state++)
        {
            ChangeTimeline(timeline, pool, random);
            PagedImage crashed = new(timeline);
            if (random.Next(4) == 0)
            {
                // A page only this state holds: an in-flight line that reached the media at the crash.
                crashed.Write(Layout.DataOffset(random.Next(2), random.Next(Layout.BlocksPerSegment)) + 64 * random.Next(64), RandomBytes(random, 64));
            }
            MemoryPmemRegion region = new(crashed);
            using PmemRecovery everything = new PmemBufferRecovery(region, Layout, FaultHooks.None).Read(0);
            using PmemRecovery kept = new PmemBufferRecovery(region, Layout, FaultHooks.None, memo).Read(0);
            Assert.AreSame(memo, kept.Memo, $"state {state}: the memo was free to take");
            AssertSameRecovery(everything, kept, $"state {state}");
            reused += state > 0 && everything.Buffers.Count > 0 ? 1 : 0;
        }
        Assert.IsGreaterThan(200, reused, "most states recovered buffers to compare");
    }

    [TestMethod]
    public void A_second_recovery_while_one_holds_the_memo_reads_everything_itself()
    {
        PagedImage image = new PagedImage(new byte[Layout.RegionBytes]).Freeze();
        PmemRecoveryMemo memo = new();
        MemoryPmemRegion region = new(new PagedImage(image));
        using PmemRecovery first = new PmemBufferRecovery(region, Layout, FaultHooks.None, memo).Read(0);
        using PmemRecovery second = new PmemBufferRecovery(region, Layout, FaultHooks.None, memo).Read(0);
        Assert.AreSame(memo, first.Memo);
        Assert.IsNull(second.Memo, "one recovery at a time lends the memo's images");
    }

    /// <summary>What a timeline's advance does to the buffers between two crash states.</summary>
    private static void ChangeTimeline(PagedImage timeline, PmemBufferPool pool, Random random)
    {
        int buffer = random.Next(2);
        ulong segment = 1 + (ulong)buffer;
        int slot = random.Next(Layout.BlocksPerSegment);
        switch (random.Next(5))
        {
            case 0: // a write placed (or placed again)
            case 1:
                pool.Place(buffer, slot, segment, block: 100 + slot, dirtyBits: 0xff, RandomBlock(random));
                pool.Barrier();
                break;
            case 2: // a clean block's slot: the slots above it move down in the rebuilt segment
                pool.PlaceHole(buffer, slot, segment);
                pool.Barrier();
                break;
            case 3: // a slot's data torn under its record
                timeline.Write(Layout.DataOffset(buffer, slot) + 64 * random.Next(64), RandomBytes(random, 64));
                break;
            case 4: // nothing of the buffers: the timeline advanced elsewhere
                break;
        }
    }

    private static void AssertSameRecovery(PmemRecovery expected, PmemRecovery actual, string what)
    {
        Assert.AreEqual(expected.ProvenDurableId, actual.ProvenDurableId, what);
        CollectionAssert.AreEqual(expected.Warnings.ToList(), actual.Warnings.ToList(), what);
        Assert.HasCount(expected.Buffers.Count, actual.Buffers);
        for (int b = 0; b < expected.Buffers.Count; b++)
        {
            RecoveredBuffer want = expected.Buffers[b];
            RecoveredBuffer got = actual.Buffers[b];
            string buffer = $"{what}, buffer {want.Buffer}";
            Assert.AreEqual((want.SegmentId, want.Buffer, want.TornSlots, want.DamagedSlots, want.LostUnknownSlots), (got.SegmentId, got.Buffer, got.TornSlots, got.DamagedSlots, got.LostUnknownSlots), buffer);
            CollectionAssert.AreEqual(want.Slots.ToList(), got.Slots.ToList(), buffer);
            for (int j = 0; j < want.Slots.Count; j++)
            {
                if (!want.Slots[j].Lost)
                {
                    Assert.IsTrue(want.Image.AsSpan(4096 * (1 + j), 4096).SequenceEqual(got.Image.AsSpan(4096 * (1 + j), 4096)),
                        $"{buffer}: the data of its slot {j} in the rebuilt segment");
                }
            }
        }
    }

    private static byte[] RandomBlock(Random random) => RandomBytes(random, 4096);

    private static byte[] RandomBytes(Random random, int count)
    {
        byte[] bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }
}
