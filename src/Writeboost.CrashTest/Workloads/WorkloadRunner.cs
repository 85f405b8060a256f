using Writeboost.CrashTest.Recording;
using Writeboost.Devices;

namespace Writeboost.CrashTest.Workloads;

/// <summary>
/// Runs a built-in workload against a device, marking every user request in the log: writes (with their data and
/// FUA flag) and flushes at issue and acknowledgement, and reads at issue and completion with what they returned,
/// so the oracle checks live reads too. With several writers each thread owns the 4 KiB blocks whose number
/// modulo the writer count is its own: writes to one sector are never in flight together, so issue order is the
/// order they apply in (what the oracle assumes). Reads go anywhere: a random run of sectors; with read caching
/// on (<see cref="RacingReads"/>), half of them a whole block that a writer wrote a moment ago instead, and some
/// writes are held inside the device until another writer has read their block — a full-block read is what the
/// read cache stages, and a block another thread is writing is where a read races the write path
/// (write-around's trip to the backing store, a copy into a buffer).
/// </summary>
internal static class WorkloadRunner
{
    private const int SectorBytes = 512;
    private const int BlockSectors = 8;
    private const int BlockBytes = SectorBytes * BlockSectors;
    /// <summary>With racing reads, one write in this many is held for one (<see cref="RacingReads"/>).</summary>
    private const int HeldOneIn = 6;
    /// <summary>A held write is held at one of its first this many schedule points (drawn).</summary>
    private const int HeldAtPoints = 4;

    /// <param name="readPercent">Of the operations, how many are reads checked live (0: none).</param>
    /// <param name="racing">Reads that race the writes (configurations with read caching): the recording's schedule hooks hold its writes (<see cref="RacingReads.Hooks"/>).</param>
    public static void Run(IBlockDevice device, CrashLog log, Workload workload, int seed, int ops, int writers, int readPercent, RacingReads? racing = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (writers <= 1)
        {
            RunOps(device, log, workload, seed, ops, 0, 1, readPercent, racing);
            return;
        }
        Exception? failure = null;
        Thread[] threads = new Thread[writers];
        using Barrier start = new(writers); // the writers start together: each meets the others from its first request
        // Every writer counts as running before any starts: one that wakes late from the barrier is still waited for by
        // a held write (whose wait lets it run), instead of the first to wake running its whole share alone.
        for (int w = 0; w < writers; w++)
        {
            racing?.Joined();
        }
        for (int w = 0; w < writers; w++)
        {
            int writer = w;
            int share = ops / writers + (writer < ops % writers ? 1 : 0);
            threads[w] = new Thread(() =>
            {
                try
                {
                    start.SignalAndWait();
                    RunOps(device, log, workload, States.StateSeed.Of(seed, writer, 0x57), share, writer, writers, readPercent, racing);
                }
#pragma warning disable CA1031 // handed to the caller's thread below
                catch (Exception error)
#pragma warning restore CA1031
                {
                    Interlocked.CompareExchange(ref failure, error, null);
                }
                finally
                {
                    racing?.Left();
                }
            }) { IsBackground = true, Name = $"wb-writer-{writer}" };
        }
        foreach (Thread thread in threads)
        {
            thread.Start();
        }
        foreach (Thread thread in threads)
        {
            thread.Join();
        }
        if (failure is not null)
        {
            throw new InvalidOperationException($"a writer of the workload failed: {failure.Message}", failure);
        }
    }

    /// <summary>Runs a scripted workload, one request at a time, marking each in the log as <see cref="Run"/> does.</summary>
    public static void RunScript(IBlockDevice device, CrashLog log, IReadOnlyList<UserOp> ops)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(ops);
        foreach (UserOp op in ops)
        {
            switch (op.Kind)
            {
                case UserOpKind.Flush:
                    int flush = log.Append(new CrashEvent(EventKind.UserFlush, DeviceId.User, 0, 0, null, false, -1));
                    device.Flush();
                    log.Append(new CrashEvent(EventKind.UserFlushAck, DeviceId.User, 0, 0, null, false, flush));
                    break;
                case UserOpKind.Read:
                    byte[] read = new byte[op.LengthBytes];
                    int issued = log.Append(new CrashEvent(EventKind.UserRead, DeviceId.User, op.OffsetBytes, op.LengthBytes, null, false, -1));
                    device.Read(op.OffsetBytes, read);
                    log.Append(new CrashEvent(EventKind.UserReadDone, DeviceId.User, op.OffsetBytes, op.LengthBytes, read, false, issued));
                    break;
                default:
                    int write = log.Append(new CrashEvent(EventKind.UserWrite, DeviceId.User, op.OffsetBytes, op.LengthBytes, op.Data, op.Fua, -1));
                    device.Write(op.OffsetBytes, op.Data, op.Fua ? WriteOptions.Fua : WriteOptions.None);
                    log.Append(new CrashEvent(EventKind.UserWriteAck, DeviceId.User, op.OffsetBytes, op.LengthBytes, null, op.Fua, write));
                    break;
            }
        }
    }

    private static void RunOps(IBlockDevice device, CrashLog log, Workload workload, int seed, int ops, int writer, int writers, int readPercent, RacingReads? racing)
    {
        Random random = new(seed);
        int sectors = (int)(device.SizeBytes / SectorBytes);
        for (int op = 0; op < ops; op++)
        {
            if (racing is not null && racing.TakeOffer(out long offered, out int offer))
            {
                // Another writer is held inside the device with this block in flight: read it now, in that window.
                ReadLogged(device, log, offered * BlockBytes, BlockBytes);
                racing.OfferRead(offer);
            }
            int roll = random.Next(100);
            if (roll < 8)
            {
                int flush = log.Append(new CrashEvent(EventKind.UserFlush, DeviceId.User, 0, 0, null, false, -1));
                device.Flush();
                log.Append(new CrashEvent(EventKind.UserFlushAck, DeviceId.User, 0, 0, null, false, flush));
                continue;
            }
            if (roll < 8 + readPercent)
            {
                int span = workload == Workload.Overwrite ? Math.Min(sectors, 4 * writers * BlockSectors) : sectors;
                long recent = racing is not null && random.Next(2) == 0 ? racing.Pick(random) : -1;
                (long readOffset, int readLength) = recent >= 0 ? (recent * BlockBytes, BlockBytes) : Campaign.RandomRange(random, span, 16);
                ReadLogged(device, log, readOffset, readLength);
                continue;
            }
            (long offset, int length) = writers == 1 ? SingleWriterRange(random, workload, sectors) : OwnedRange(random, workload, sectors, writer, writers);
            bool fua = random.Next(100) < (workload == Workload.Wrap ? 40 : 25);
            byte[] data = new byte[length];
            random.NextBytes(data);
            // Of the writes racing reads may meet, one in HeldOneIn is held at one of its first schedule points.
            int holdAt = racing is not null && writers > 1 && random.Next(HeldOneIn) == 0 ? random.Next(HeldAtPoints) : -1;
            int write = log.Append(new CrashEvent(EventKind.UserWrite, DeviceId.User, offset, length, data, fua, -1));
            racing?.Writing(offset / BlockBytes, holdAt);
            device.Write(offset, data, fua ? WriteOptions.Fua : WriteOptions.None);
            log.Append(new CrashEvent(EventKind.UserWriteAck, DeviceId.User, offset, length, null, fua, write));
            if (racing is not null && racing.Wrote())
            {
                // A read ran inside this write: read the block back, whatever that read may have left in a cache.
                ReadLogged(device, log, offset / BlockBytes * BlockBytes, BlockBytes);
            }
        }
    }

    private static void ReadLogged(IBlockDevice device, CrashLog log, long offsetBytes, int lengthBytes)
    {
        byte[] read = new byte[lengthBytes];
        int issued = log.Append(new CrashEvent(EventKind.UserRead, DeviceId.User, offsetBytes, lengthBytes, null, false, -1));
        device.Read(offsetBytes, read);
        log.Append(new CrashEvent(EventKind.UserReadDone, DeviceId.User, offsetBytes, lengthBytes, read, false, issued));
    }

    /// <summary>One writer: random sub-block runs across block boundaries, overwrites of 4 blocks, or whole blocks anywhere.</summary>
    private static (long Offset, int Length) SingleWriterRange(Random random, Workload workload, int sectors) => workload switch
    {
        Workload.Random => Campaign.RandomRange(random, sectors, 12),
        Workload.Overwrite => Campaign.RandomRange(random, 4 * BlockSectors, 8),
        _ => (random.Next(sectors / BlockSectors) * 4096L, 4096),
    };

    /// <summary>Several writers: a run inside one block the writer owns (whole blocks for wrap).</summary>
    private static (long Offset, int Length) OwnedRange(Random random, Workload workload, int sectors, int writer, int writers)
    {
        int blocks = workload == Workload.Overwrite ? 4 * writers : sectors / BlockSectors;
        int owned = Math.Max(1, (blocks - writer + writers - 1) / writers);
        long block = writer + (long)random.Next(owned) * writers;
        if (workload == Workload.Wrap)
        {
            return (block * 4096L, 4096);
        }
        int first = random.Next(BlockSectors);
        int length = random.Next(1, BlockSectors - first + 1);
        return ((block * BlockSectors + first) * SectorBytes, length * SectorBytes);
    }
}
