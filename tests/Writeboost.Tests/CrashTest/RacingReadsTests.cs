using Writeboost.Cache.Core;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.Workloads;
using Writeboost.Devices;

namespace Writeboost.Tests.CrashTest;

/// <summary>
/// Races by construction (#22): with read caching, a write held inside the device is read by another writer in that
/// window, however the machine schedules the threads, and read back by its own writer once acknowledged.
/// </summary>
[TestClass]
public sealed class RacingReadsTests
{
    /// <summary>A device whose writes pass schedule points on their way, as the cache's write path does.</summary>
    private sealed class PointsOnTheWay(IBlockDevice inner, ScheduleHooks hooks) : IBlockDevice
    {
        public string Name => inner.Name;
        public int SectorSizeBytes => inner.SectorSizeBytes;
        public long SizeBytes => inner.SizeBytes;
        public void Read(long offsetBytes, Span<byte> destination) => inner.Read(offsetBytes, destination);

        public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
        {
            hooks.At(SchedulePoint.WriterBeforePlace);
            hooks.At(SchedulePoint.WriteAroundBeforeBackingWrite);
            inner.Write(offsetBytes, source, options);
            hooks.At(SchedulePoint.WriteAroundAfterBackingWrite);
            hooks.At(SchedulePoint.WriterBeforeBarrier);
        }

        public void Flush() => inner.Flush();
        public void Dispose() => inner.Dispose();
    }

    [TestMethod]
    public void A_held_write_is_read_inside_its_window_and_read_back_after_its_acknowledgement()
    {
        using RacingReads racing = new();
        CrashLog log = new();
        using PointsOnTheWay device = new(new MemoryBlockDevice(1 << 20), new RacingReads.Hooks(ScheduleHooks.None, racing));

        // No reads of the workload's own: every read in the log is a held write's, or its read-back.
        WorkloadRunner.Run(device, log, Workload.Random, seed: 3, ops: 600, writers: 2, readPercent: 0, racing);

        IReadOnlyList<CrashEvent> events = log.Events;
        int inside = 0;
        int readBack = 0;
        for (int ack = 0; ack < events.Count; ack++)
        {
            if (events[ack].Kind != EventKind.UserWriteAck)
            {
                continue;
            }
            int issued = events[ack].Ref;
            long block = events[issued].OffsetBytes / 4096;
            bool raced = Enumerable.Range(issued + 1, ack - issued - 1).Any(i => events[i].Kind == EventKind.UserReadDone
                && events[i].OffsetBytes == block * 4096 && events[i].LengthBytes == 4096 && events[i].Ref > issued);
            if (raced)
            {
                inside++;
                // The writer's next request is the read-back of its block.
                readBack += events.Skip(ack + 1).Any(e => e.Kind == EventKind.UserRead && e.OffsetBytes == block * 4096 && e.LengthBytes == 4096) ? 1 : 0;
            }
        }
        // About 550 writes, one in six held: some 80 holds, of which about half meet no other (it is held itself, in its
        // own write, or done); without the holds the windows are too short for any read to land in one.
        Assert.IsGreaterThan(20, inside, $"writes read by another writer while held inside the device ({inside})");
        Assert.AreEqual(inside, readBack, "every raced write is read back after its acknowledgement");
    }
}
