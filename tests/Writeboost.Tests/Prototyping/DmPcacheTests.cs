using System.Buffers.Binary;
using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Minimise;
using Writeboost.CrashTest.Recording;
using Writeboost.Devices;
using Writeboost.Tests.Support;
using Writeboost.Samples.DmPcache;

namespace Writeboost.Tests.Prototyping;

/// <summary>
/// dm-pcache re-created as a target (samples/DmPcache): its layout, its two-copy metadata, the log wrapping through
/// writeback and gc, the correct protocol passing the judge, and each bug fixed after its merge caught and told.
/// </summary>
[TestClass]
public sealed class DmPcacheTests
{
    private const int SegmentBytes = 32 * 1024;

    private static MemoryPmemRegion Region(int segments = 8) => new(PcacheDevice.SegmentsOffset + (long)segments * SegmentBytes);

    [TestMethod]
    public void A_blank_region_gets_a_superblock_a_cache_info_and_tails_each_checked_by_crc()
    {
        using MemoryPmemRegion pmem = Region();
        using MemoryBlockDevice backing = new(64 * 1024);
        using (PcacheDevice cache = new(backing, pmem, SegmentBytes))
        {
            Assert.IsTrue(cache.Started.NewCache);
            Assert.AreEqual(8, cache.Segments);
        }
        byte[] sb = new byte[24];
        pmem.Read(PcacheDevice.SuperblockOffset, sb);
        Assert.AreEqual(PcacheDevice.Magic, BinaryPrimitives.ReadUInt64LittleEndian(sb.AsSpan(8)));
        Assert.AreEqual(8u, BinaryPrimitives.ReadUInt32LittleEndian(sb.AsSpan(16)), "seg_num");

        using PcacheDevice again = new(backing, pmem, SegmentBytes);
        Assert.IsFalse(again.Started.NewCache, "the cache_info written at the first start is found");
        CollectionAssert.Contains(again.Debris.ToArray(), "key_tail with one valid copy", "a format writes each tail once");
    }

    [TestMethod]
    public void The_newest_valid_copy_wins_across_the_sequence_numbers_wrap_and_a_torn_copy_falls_back()
    {
        using MemoryPmemRegion pmem = new(8192);
        PcacheMeta meta = new(pmem, 0, 4096, 16, "record");
        for (int update = 1; update <= 256; update++)
        {
            meta.Write(BitConverter.GetBytes((ulong)update));
        }
        PcacheMeta reader = new(pmem, 0, 4096, 16, "record");
        Assert.AreEqual(256UL, BitConverter.ToUInt64(reader.Load()!), "seq 0 (256) is newer than 255");
        Assert.AreEqual(2, reader.ValidCopies);

        pmem.Store64(reader.Index * 4096 + 8, 0xDEAD); // the newest copy torn
        PcacheMeta afterTear = new(pmem, 0, 4096, 16, "record");
        Assert.AreEqual(255UL, BitConverter.ToUInt64(afterTear.Load()!));
        Assert.AreEqual(1, afterTear.ValidCopies);
    }

    [TestMethod]
    public void Its_log_wraps_through_writeback_and_gc_and_a_restart_reads_back_every_write()
    {
        using MemoryPmemRegion pmem = Region();
        using MemoryBlockDevice backing = new(64 * 1024);
        byte[] expected = new byte[64 * 1024];
        Random random = new(5);
        using (PcacheDevice cache = new(backing, pmem, SegmentBytes))
        {
            for (int i = 0; i < 400; i++)
            {
                int sectors = random.Next(1, 9);
                long offset = random.Next(0, 128 - sectors) * 512L;
                byte[] data = new byte[sectors * 512];
                random.NextBytes(data);
                cache.Write(offset, data, i % 3 == 0 ? WriteOptions.Fua : WriteOptions.None);
                data.CopyTo(expected, offset);
            }
            cache.Flush();
            Assert.AreNotEqual((0, 0), cache.KeyTail, "gc moved key_tail");
            Assert.IsTrue(Enumerable.Range(0, cache.Segments).Any(s => cache.Generation(s) > 0), "gc freed a segment and bumped its generation");
        }
        using PcacheDevice restarted = new(backing, pmem, SegmentBytes);
        byte[] actual = new byte[expected.Length];
        restarted.Read(0, actual);
        CollectionAssert.AreEqual(expected, actual);
    }

    [TestMethod]
    [DataRow(Workload.Random)]
    [DataRow(Workload.Overwrite)]
    [DataRow(Workload.Wrap)]
    [DataRow(Workload.Protocol)]
    public void The_fixed_protocol_loses_nothing_acknowledged(Workload workload) =>
        DesignVerdicts.LosesNothing(new PcacheTarget(), workload);

    [TestMethod]
    [DataRow(PcacheBug.WriteOverLatestCopy)]
    [DataRow(PcacheBug.InfoWriteWithoutFence)]
    [DataRow(PcacheBug.CacheInfoIndexing)]
    public void Each_bug_fixed_after_its_merge_is_caught_with_every_seed_and_told_in_a_few_operations(PcacheBug bug) =>
        // The start's unfenced copy is another thread's only where the requests come from threads of their own:
        // the NBD server's, as a kernel's I/O comes from other CPUs than the table load.
        DesignVerdicts.CaughtWithEverySeedAndToldBriefly(new PcacheTarget(bug), bug == PcacheBug.InfoWriteWithoutFence ? Workload.Protocol : Workload.Random);
}
