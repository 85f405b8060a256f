using System.Buffers.Binary;
using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Faults;
using Writeboost.CrashTest.Minimise;
using Writeboost.CrashTest.Recording;
using Writeboost.Devices;
using Writeboost.Tests.Support;
using Writeboost.Samples.DmWritecache;

namespace Writeboost.Tests.Prototyping;

/// <summary>
/// dm-writecache's pmem mode re-created as a target (samples/DmWritecache): its layout and recovery rules, the
/// correct protocol passing the judge, and each bug of its fix history caught and told in a few operations.
/// </summary>
[TestClass]
public sealed class DmWritecacheTests
{
    [TestMethod]
    public void A_blank_region_gets_the_kernels_layout_with_the_magic_written_last()
    {
        using MemoryPmemRegion pmem = new(16 * 1024);
        using MemoryBlockDevice origin = new(64 * 1024);
        using (WritecacheDevice cache = new(origin, pmem))
        {
            Assert.AreEqual(30L, cache.Blocks, "16 KiB: 30 blocks of 512 bytes with their 16-byte entries");
        }
        byte[] superblock = new byte[64];
        pmem.Read(0, superblock);
        Assert.AreEqual(WritecacheDevice.Magic, BinaryPrimitives.ReadUInt32LittleEndian(superblock));
        Assert.AreEqual(1u, BinaryPrimitives.ReadUInt32LittleEndian(superblock.AsSpan(4)), "version");
        Assert.AreEqual(512u, BinaryPrimitives.ReadUInt32LittleEndian(superblock.AsSpan(8)), "block_size");
        Assert.AreEqual(30UL, BinaryPrimitives.ReadUInt64LittleEndian(superblock.AsSpan(16)), "n_blocks");
        Assert.AreEqual(0UL, BinaryPrimitives.ReadUInt64LittleEndian(superblock.AsSpan(24)), "seq_count: nothing committed");
        Assert.AreEqual(1024L, WritecacheDevice.DataOffset(30), "64 + 30 × 16 bytes, rounded up to a block");
        byte[] entry = new byte[16];
        pmem.Read(64 + 29 * 16, entry);
        Assert.IsTrue(entry.All(b => b == 0xff), "every entry free (original_sector and seq_count all ones)");
    }

    [TestMethod]
    public void Recovery_keeps_the_newest_committed_entry_per_sector_and_frees_everything_else()
    {
        using MemoryPmemRegion pmem = new(16 * 1024);
        using MemoryBlockDevice origin = new(64 * 1024);
        new WritecacheDevice(origin, pmem).Dispose();
        SetSeqCount(pmem, 5);
        SetEntry(pmem, 0, sector: 7, seq: 3, fill: 0xA3); // committed, older
        SetEntry(pmem, 1, sector: 7, seq: 4, fill: 0xA4); // committed, newer: wins
        SetEntry(pmem, 2, sector: 9, seq: 5, fill: 0xB5); // the interrupted epoch: discarded
        SetEntry(pmem, 3, sector: 11, seq: 2, fill: 0xC2); // committed

        using WritecacheDevice cache = new(origin, pmem);

        Assert.AreEqual((2, 1, 1), cache.Recovered);
        byte[] block = new byte[512];
        cache.Read(7 * 512, block);
        Assert.IsTrue(block.All(b => b == 0xA4), "the highest seq_count of sector 7");
        cache.Read(9 * 512, block);
        Assert.IsTrue(block.All(b => b == 0), "sector 9's uncommitted block is not data: the origin's is");
        Assert.AreEqual(ulong.MaxValue, SeqOf(pmem, 2), "cleared, or the next commit would commit it");
        Assert.AreEqual(ulong.MaxValue, SeqOf(pmem, 0), "the older copy of sector 7 is freed");
    }

    [TestMethod]
    public void Recovery_refuses_two_identical_entries_and_a_foreign_region()
    {
        using MemoryPmemRegion pmem = new(16 * 1024);
        using MemoryBlockDevice origin = new(64 * 1024);
        new WritecacheDevice(origin, pmem).Dispose();
        SetSeqCount(pmem, 5);
        SetEntry(pmem, 0, sector: 7, seq: 3, fill: 1);
        SetEntry(pmem, 4, sector: 7, seq: 3, fill: 2);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => new WritecacheDevice(origin, pmem)).Message, "two identical entries for sector 7");

        pmem.Write(0, [1, 2, 3, 4]);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => new WritecacheDevice(origin, pmem)).Message, "not a dm-writecache superblock");
    }

    [TestMethod]
    [DataRow(Workload.Random, true)]
    [DataRow(Workload.Overwrite, true)]
    [DataRow(Workload.Wrap, true)]
    [DataRow(Workload.Random, false)]
    public void The_kernels_protocol_loses_nothing_acknowledged(Workload workload, bool writebackFua) =>
        DesignVerdicts.LosesNothing(new WritecacheTarget(WritebackFua: writebackFua), workload);

    [TestMethod]
    [DataRow(WritecacheBug.FuaNotCommitted)]
    [DataRow(WritecacheBug.DirectWriteFlushNotForwarded)]
    [DataRow(WritecacheBug.CommitBeforeDataFenced)]
    public void Each_bug_of_its_fix_history_is_caught_with_every_seed_and_told_in_a_few_operations(WritecacheBug bug) =>
        DesignVerdicts.CaughtWithEverySeedAndToldBriefly(new WritecacheTarget(bug));

    [TestMethod]
    public void Under_eADR_the_missing_fence_before_the_commit_is_no_bug()
    {
        CampaignResult result = Campaign.Run(CampaignSpec.For(new WritecacheTarget(WritecacheBug.CommitBeforeDataFenced), Workload.Random, seed: 1, ops: 150, maxStates: 20_000) with { Persistence = PersistenceDomain.Eadr });

        Assert.AreEqual(0, result.Violations, result.FirstViolation);
    }

    [TestMethod]
    public void Damaged_media_a_superblock_is_refused_but_an_entry_without_a_checksum_serves_another_blocks_data()
    {
        CorruptionSweepResult result = CorruptionSweep.Run(new CorruptionSweepSpec(CacheMode.Volatile, Workload.Random, 1, Ops: 150) { Target = new WritecacheTarget() });

        CorruptionAreaResult superblock = result.Areas.Single(a => a.Area == "superblock");
        Assert.AreEqual(0, superblock.Violations, "a damaged block count is refused as the kernel's constructor refuses it, not an overflow");
        Assert.IsGreaterThan(0, superblock.Refused);
        // The kernel's entries carry no checksum: a flipped bit of an original sector serves a block at another
        // address. The sweep shows it, rather than the model hiding it (docs/prototyping.md).
        Assert.IsGreaterThan(0, result.Areas.Single(a => a.Area == "entries").Violations);
        Assert.IsGreaterThan(0, result.Areas.Single(a => a.Area == "pmem (unnamed bytes)").UncheckedData, "nor does its data");
    }

    private static void SetSeqCount(MemoryPmemRegion pmem, ulong seq) => pmem.Store64(24, seq);

    private static void SetEntry(MemoryPmemRegion pmem, int block, ulong sector, ulong seq, byte fill)
    {
        pmem.Store64(64 + block * 16, sector);
        pmem.Store64(64 + block * 16 + 8, seq);
        byte[] data = new byte[512];
        data.AsSpan().Fill(fill);
        pmem.Write(WritecacheDevice.DataOffset(30) + block * 512, data);
    }

    private static ulong SeqOf(MemoryPmemRegion pmem, int block)
    {
        byte[] seq = new byte[8];
        pmem.Read(64 + block * 16 + 8, seq);
        return BinaryPrimitives.ReadUInt64LittleEndian(seq);
    }
}
