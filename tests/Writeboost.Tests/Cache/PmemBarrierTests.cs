using Writeboost.Cache.PmemBuffer;
using Writeboost.Devices;
using Writeboost.Pmem;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Cache;

/// <summary>The pmem buffer's barrier on the block backend, where durability is the device flush.</summary>
[TestClass]
public sealed class PmemBarrierTests
{
    [TestMethod]
    public void A_barrier_returns_only_after_the_flush_that_covers_its_block_has_ended()
    {
        using GatedFlushBlockDevice device = new(new MemoryBlockDevice(4 << 20));
        using BlockPmemRegion region = Writeboost.Pmem.Pmem.Alloc(device, 0, device.SizeBytes);
        PmemBufferPool pool = PmemBufferPool.Open(region, new PmemLayout(SegmentSizeOrder: 5, PoolSize: 2, BlocksPerSegment: 3), new PmemClaim(Guid.NewGuid(), "test", Guid.Empty, OwnBufferMayHoldWrites: false, Format: true, Discard: false), out _);
        pool.Acquire(0, segmentId: 1);
        byte[] block = new byte[4096];
        // Two writers place their blocks; the first writer's FUA takes both into one device flush, held at the gate.
        pool.Place(0, 0, 1, block: 10, 0xFF, block);
        pool.Place(0, 1, 1, block: 11, 0xFF, block);
        device.Close();
        int before = device.FlushesCompleted;
        Thread first = new(pool.Barrier);
        first.Start();
        Assert.IsTrue(device.FlushWaiting.Wait(TimeSpan.FromSeconds(30)), "the first barrier reaches the device flush");
        using Timer opener = new(_ => device.Open(), null, 300, Timeout.Infinite);

        pool.Barrier(); // the second writer's FUA: its block is in the flush still running

        Assert.AreEqual(before + 1, device.FlushesCompleted, "the second barrier returned only after the flush covering its block ended (and needed no flush of its own)");
        first.Join();
    }
}
