using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Index;
using Writeboost.Cache.Recovery;
using Writeboost.Cache.Ring;
using Writeboost.Cache.Table;
using Writeboost.Cache.Workers;
using Writeboost.Devices;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Cache;

/// <summary>
/// The flush worker and the writeback worker on their own, without a device: a ring, buffers and an index set up
/// by hand, and devices that log what the workers do to them, in one log.
/// </summary>
[TestClass]
public sealed class WorkerTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [TestMethod]
    public void A_worker_that_ended_gives_its_thread_to_the_next_worker_which_takes_its_name_and_join_waits_for_the_body()
    {
        // Devices opened one after another (a crash campaign opens one per state) start their workers on the
        // threads the previous device's workers ended on, not on new ones.
        WorkerThreads threads = new(); // its own: the suite's other devices take the shared ones
        string firstName = "";
        int firstThread = 0;
        threads.Start("test-first", () =>
        {
            firstName = Thread.CurrentThread.Name!;
            firstThread = Environment.CurrentManagedThreadId;
        }).Join();
        using ManualResetEventSlim release = new(false);
        bool bodyEnded = false;
        string secondName = "";
        int secondThread = 0;
        WorkerRun second = threads.Start("test-second", () =>
        {
            secondName = Thread.CurrentThread.Name!;
            secondThread = Environment.CurrentManagedThreadId;
            release.Wait();
            bodyEnded = true;
        });
        Task joined = Task.Run(second.Join);
        Assert.IsFalse(joined.Wait(TimeSpan.FromMilliseconds(100)), "join returned while the body still ran");
        release.Set();
        Assert.IsTrue(joined.Wait(Patience));
        Assert.IsTrue(bodyEnded);
        Assert.AreEqual("test-first", firstName);
        Assert.AreEqual("test-second", secondName);
        Assert.AreEqual(firstThread, secondThread, "the ended worker's thread runs the next one");
    }

    [TestMethod]
    public void Sealed_segments_are_written_in_id_order_and_one_cache_flush_makes_them_all_durable_for_a_barrier_on_the_last()
    {
        using Rig rig = new();
        rig.Seal(1, 2, 3);
        lock (rig.Monitor.Lock)
        {
            rig.Flush.RequestDurableLocked(3);
        }
        rig.Flush.Start();
        rig.WaitUntil(() => rig.Ring.DurableId == 3);

        CollectionAssert.AreEqual(new[] { "cache write segment 1", "cache write segment 2", "cache write segment 3", "cache flush" }, rig.Log.ToArray());
        Assert.AreEqual(3, rig.SegmentsWritten, "writeback is told of every segment written");
        for (ulong id = 1; id <= 3; id++)
        {
            Assert.IsTrue(rig.ReadSlot(id).IsValid, $"segment {id} is on the cache device whole, its checksum stamped by the worker");
        }
    }

    [TestMethod]
    public void Without_a_barrier_segments_are_written_but_not_flushed_and_a_later_barrier_costs_one_flush()
    {
        using Rig rig = new();
        rig.Seal(1, 2);
        rig.Flush.Start();
        rig.WaitUntil(() => rig.Ring.FlushedId == 2);
        Assert.AreEqual(0UL, rig.Ring.DurableId);
        CollectionAssert.DoesNotContain(rig.Log.ToArray(), "cache flush");

        lock (rig.Monitor.Lock)
        {
            rig.Flush.RequestDurableLocked(2);
        }
        rig.WaitUntil(() => rig.Ring.DurableId == 2);
        CollectionAssert.AreEqual(new[] { "cache write segment 1", "cache write segment 2", "cache flush" }, rig.Log.ToArray());
    }

    [TestMethod]
    public void A_stop_lets_the_flush_worker_write_what_is_queued_before_it_ends()
    {
        using Rig rig = new();
        rig.Seal(1, 2);
        rig.Flush.Start();
        rig.Monitor.Stop();
        rig.Flush.Join();
        Assert.AreEqual(2UL, rig.Ring.FlushedId);
    }

    [TestMethod]
    public void A_failed_segment_write_fails_the_device_and_publishes_nothing()
    {
        using Rig rig = new();
        rig.FailingCache.FailWrites = true;
        rig.Seal(1);
        lock (rig.Monitor.Lock)
        {
            rig.Flush.RequestDurableLocked(1);
        }
        rig.Flush.Start();
        rig.Flush.Join(); // the worker ends on the failure
        StringAssert.Contains(rig.Monitor.Failure?.Message, "injected write error");
        Assert.AreEqual(0UL, rig.Ring.FlushedId, "a segment the cache device did not take is not written");
        Assert.AreEqual(0UL, rig.Ring.DurableId);
    }

    [TestMethod]
    public void Writeback_copies_the_dirty_blocks_sorted_flushes_the_backing_store_then_writes_the_record_and_only_then_frees_the_segments()
    {
        using Rig rig = new();
        // Segment 1 holds block 30 (whole), segment 2 block 10 (sectors 0-1 only) and block 20 (whole).
        rig.Place(1, 0, block: 30, Units.FullBlockBits, fill: 0x30);
        rig.Place(2, 0, block: 20, Units.FullBlockBits, fill: 0x20);
        rig.Place(2, 1, block: 10, 0b0000_0011, fill: 0x10);
        rig.Seal(1, 2);
        rig.Flush.Start();
        rig.WaitUntil(() => rig.Ring.FlushedId == 2); // as drop_caches flushes first: one batch of both
        rig.Writeback.Start();
        rig.Writeback.WriteBackEverything(() => { }, throughId: 2);

        string[] log = rig.Log.ToArray();
        string[] backing = [.. log.Where(l => l.StartsWith("backing", StringComparison.Ordinal))];
        CollectionAssert.AreEqual(new[] { "backing write block 10 sectors 0-1", "backing write block 20", "backing write block 30", "backing flush" }, backing);
        int flushAt = Array.IndexOf(log, "backing flush");
        Assert.AreEqual("cache write record (FUA)", log[flushAt + 1], "the record is written only once the backing store is durable");
        Assert.IsLessThan(Array.IndexOf(log, "backing write block 10 sectors 0-1"), Array.LastIndexOf(log, "cache flush"), "written segments are made durable before a batch");

        Assert.AreEqual(2UL, rig.Ring.WrittenBackId);
        Assert.AreEqual(0L, rig.Index.DirtyCount);
        Assert.AreEqual(2UL, rig.ReadRecord().LastWritebackId);
        Assert.IsTrue(rig.BackingBlock(30).All(b => b == 0x30));
        Assert.IsTrue(rig.BackingBlock(20).All(b => b == 0x20));
        byte[] partial = rig.BackingBlock(10);
        Assert.IsTrue(partial.AsSpan(0, 2 * Units.SectorBytes).ToArray().All(b => b == 0x10), "the dirty sectors");
        Assert.IsTrue(partial.AsSpan(2 * Units.SectorBytes).ToArray().All(b => b == 0), "not the sectors the cache does not hold");
    }

    [TestMethod]
    public void Writeback_stops_before_a_segment_that_holds_a_lost_copy_and_says_which()
    {
        using Rig rig = new();
        rig.Place(1, 0, block: 5, Units.FullBlockBits, fill: 0x05);
        rig.Place(2, 0, block: 6, Units.FullBlockBits, fill: 0x06);
        rig.Seal(1, 2);
        lock (rig.Monitor.Lock)
        {
            // Recovery found segment 2's copy of block 6 damaged (its newest durable copy).
            rig.Poison.Poison(block: 6, Units.FullBlockBits, rig.Index.GlobalOf(rig.Geometry.SlotOf(2), 0), segmentId: 2);
        }
        rig.Flush.Start();
        rig.WaitUntil(() => rig.Ring.FlushedId == 2);
        rig.Writeback.Start();
        IOException error = Assert.ThrowsExactly<IOException>(() => rig.Writeback.WriteBackEverything(() => { }, throughId: 2));

        StringAssert.Contains(error.Message, "writeback cannot pass segment 2");
        Assert.AreEqual(1UL, rig.Ring.WrittenBackId, "the segment before it is written back");
        Assert.AreEqual(2UL, rig.Writeback.HeldBy);
        CollectionAssert.DoesNotContain(rig.Log.ToArray(), "backing write block 6");
    }

    /// <summary>A ring of small segments, its buffers, an index and poison, both workers over logging devices.</summary>
    private sealed class Rig : IDisposable
    {
        private const int PoolSize = 4;
        private readonly MemoryBlockDevice _cacheMemory;
        private readonly MemoryBlockDevice _backingMemory = new(64 * Units.BlockBytes, name: "backing");
        private readonly BufferPool _buffers;
        private int _segmentsWritten;

        public Rig()
        {
            // 16 KiB segments: 3 data blocks each, 8 slots.
            Geometry = CacheGeometry.For(CacheGeometry.SuperblockRegionBytes + 8 * 16 * 1024, segmentSizeOrder: 5);
            _cacheMemory = new MemoryBlockDevice(CacheGeometry.SuperblockRegionBytes + Geometry.NrSegments * Geometry.SegmentSizeBytes, name: "cache");
            FailingCache = new FailingBlockDevice(new LoggingDevice(_cacheMemory, "cache", Log));
            Ring = new SegmentRing(Geometry.NrSegments, Monitor.Lock);
            Index = new CacheIndex(Geometry.NrSegments, Geometry.BlocksPerSegment);
            _buffers = new BufferPool(PoolSize, Geometry.SegmentSizeBytes);
            WriteboostCounters counters = new();
            WriteboostOptions options = new() { WritebackRetryDelay = TimeSpan.FromMilliseconds(10) };
            DeviceParts parts = new(Monitor, Ring, Geometry, FailingCache, counters, new Tunables(new Dictionary<string, long>()), options, "rig");
            Flush = new FlushWorker(parts, _buffers, new CountsSegmentsWritten(this));
            BackingStore backing = new(new LoggingDevice(_backingMemory, "backing", Log), counters);
            SuperblockRecordWriter record = new(FailingCache, Monitor, Ring, counters, FaultHooks.None);
            Writeback = new WritebackWorker(parts, Index, Poison, backing, record, new FlushesOnly(Flush));
        }

        public DeviceMonitor Monitor { get; } = new();
        public CacheGeometry Geometry { get; }
        public SegmentRing Ring { get; }
        public CacheIndex Index { get; }
        public PoisonSet Poison { get; } = new();
        public FailingBlockDevice FailingCache { get; }
        public FlushWorker Flush { get; }
        public WritebackWorker Writeback { get; }
        public LockedLog Log { get; } = new();
        public int SegmentsWritten => Volatile.Read(ref _segmentsWritten);

        /// <summary>The rig's device side of the flush worker: counts the segments written (no writeback to wake here).</summary>
        private sealed class CountsSegmentsWritten(Rig rig) : ISegmentsWritten
        {
            public void SegmentWrittenLocked() => Interlocked.Increment(ref rig._segmentsWritten);
        }

        /// <summary>The rig's device side of writeback: cache flushes come from the flush worker; nothing here seals a segment to make it durable.</summary>
        private sealed class FlushesOnly(FlushWorker flush) : IDurability
        {
            public void RequestDurableLocked(ulong id) => flush.RequestDurableLocked(id);

            public void MakeDurable(ulong id) => throw new AssertFailedException($"nothing here needs segment {id} made durable by the device");
        }

        /// <summary>Segment <paramref name="id"/>'s block <paramref name="index"/> holds <paramref name="block"/>'s dirty sectors, each byte <paramref name="fill"/>.</summary>
        public void Place(ulong id, int index, long block, byte sectors, byte fill)
        {
            lock (Monitor.Lock)
            {
                BufferOf(id).Block(index).Fill(fill);
                Index.Place(Index.GlobalOf(Geometry.SlotOf(id), index), block, sectors, dirty: true);
            }
        }

        /// <summary>Opens and seals segments in order (each as long as the blocks placed in it), as the write path does.</summary>
        public void Seal(params ulong[] ids)
        {
            lock (Monitor.Lock)
            {
                foreach (ulong id in ids)
                {
                    long slot = Geometry.SlotOf(id);
                    int length = Enumerable.Range(0, Geometry.BlocksPerSegment).Count(i => Index.BlockAt(Index.GlobalOf(slot, i)) >= 0);
                    length = Math.Max(1, length);
                    SegmentBuffer buffer = BufferOf(id);
                    Span<byte> image = buffer.Image.Span;
                    for (int i = 0; i < length; i++)
                    {
                        int g = Index.GlobalOf(slot, i);
                        new MetablockOnDisk(Math.Max(0, Index.BlockAt(g)) * Units.SectorsPerBlock, Index.SectorsAt(g)).WriteTo(image, i, Geometry.MetablockBytes);
                    }
                    new SegmentHeaderOnDisk(id, 0, (byte)length).WriteTo(image);
                    Ring.Open(id);
                    buffer.MarkSealed(id);
                    Ring.Seal(id, length);
                }
            }
            Flush.Wake();
        }

        public void WaitUntil(Func<bool> condition)
        {
            DateTime deadline = DateTime.UtcNow + Patience;
            lock (Monitor.Lock)
            {
                while (!condition())
                {
                    Assert.IsTrue(DateTime.UtcNow < deadline, "the worker did not get there in time");
                    Monitor.WaitLocked(100);
                }
            }
        }

        public SegmentSlotRead ReadSlot(ulong id) =>
            SegmentLogReader.ReadAt(_cacheMemory, Geometry.SegmentStartBytes(Geometry.SlotOf(id)), Geometry.BlocksPerSegment, new byte[Geometry.SegmentSizeBytes]);

        public SuperblockRecordOnDisk.Record ReadRecord()
        {
            byte[] block = new byte[Units.BlockBytes];
            _cacheMemory.Read(SuperblockRecordOnDisk.WriteOffsetBytes, block);
            return SuperblockRecordOnDisk.Read(block);
        }

        public byte[] BackingBlock(long block)
        {
            byte[] data = new byte[Units.BlockBytes];
            _backingMemory.Read(Units.BlocksToBytes(block), data);
            return data;
        }

        public void Dispose()
        {
            Monitor.Stop();
            Flush.Join();
            Writeback.Join();
            Flush.Dispose();
            Writeback.Dispose();
            Monitor.Dispose();
        }

        private SegmentBuffer BufferOf(ulong id) => _buffers.Of(id);
    }

    internal sealed class LockedLog
    {
        private readonly List<string> _lines = [];

        public void Add(string line)
        {
            lock (_lines)
            {
                _lines.Add(line);
            }
        }

        public string[] ToArray()
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    /// <summary>Logs each write and flush in words: which segment, which block and sectors, the record.</summary>
    private sealed class LoggingDevice(IBlockDevice inner, string name, LockedLog log) : IBlockDevice
    {
        public string Name => name;
        public int SectorSizeBytes => inner.SectorSizeBytes;
        public long SizeBytes => inner.SizeBytes;

        public void Read(long offsetBytes, Span<byte> destination) => inner.Read(offsetBytes, destination);

        public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
        {
            log.Add(name == "backing" ? $"backing write {BackingWhat(offsetBytes, source.Length)}" : $"cache write {CacheWhat(offsetBytes, source)}{((options & WriteOptions.Fua) != 0 ? " (FUA)" : "")}");
            inner.Write(offsetBytes, source, options);
        }

        public void Flush()
        {
            log.Add($"{name} flush");
            inner.Flush();
        }

        public void Dispose() => inner.Dispose();

        private static string BackingWhat(long offsetBytes, int lengthBytes)
        {
            long block = offsetBytes / Units.BlockBytes;
            int first = (int)(offsetBytes % Units.BlockBytes / Units.SectorBytes);
            int sectors = lengthBytes / Units.SectorBytes;
            return sectors == Units.SectorsPerBlock ? $"block {block}" : $"block {block} sectors {first}-{first + sectors - 1}";
        }

        private static string CacheWhat(long offsetBytes, ReadOnlySpan<byte> source) => offsetBytes == SuperblockRecordOnDisk.WriteOffsetBytes
            ? "record"
            : $"segment {SegmentHeaderOnDisk.Read(source).Id}";
    }
}
