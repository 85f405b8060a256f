using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Inspect;
using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Faults;
using Writeboost.CrashTest.Mutants;
using Writeboost.Devices;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Reliability;

[TestClass]
public sealed class CorruptionSweepTests
{
    [TestMethod]
    [DataRow(CacheMode.Volatile, Workload.Random)]
    [DataRow(CacheMode.Volatile, Workload.Wrap)]
    [DataRow(CacheMode.Persistent, Workload.Random)]
    [DataRow(CacheMode.Persistent, Workload.Wrap)]
    public void Damaged_media_cost_only_what_they_destroyed_lost_data_reads_as_an_error_never_as_older_data(CacheMode mode, Workload workload)
    {
        foreach (int seed in new[] { 1, 2, 5 })
        {
            CorruptionSweepResult result = CorruptionSweep.Run(new CorruptionSweepSpec(mode, workload, seed, Ops: 150));

            Assert.AreEqual(0, result.Violations, $"seed {seed}: {string.Join(Environment.NewLine, result.ViolationSamples)}");
            Assert.AreEqual(0, result.SilentReverts, "no older value comes back silently where the media could tell");
            Assert.IsGreaterThan(0, result.ReadErrors, "some damage hit acknowledged data, and its blocks read as errors");
            Assert.IsGreaterThan(1000, result.Tried, "every byte of the metadata was damaged");
            Assert.IsGreaterThan(0, result.Changed, "some damage cost data, and was reported");
            string[] areas = ["superblock", "superblock record", "segment header", "metablocks", "cache data", "truncation"];
            CollectionAssert.IsSubsetOf(areas, result.Areas.Select(a => a.Area).ToArray());
            if (mode == CacheMode.Persistent)
            {
                CollectionAssert.IsSubsetOf(new[] { "pmem header", "pmem buffer headers", "pmem records", "pmem data" }, result.Areas.Select(a => a.Area).ToArray());
            }
        }
    }

    [TestMethod]
    [DataRow("trust-segment-without-checksum")]
    [DataRow("replay-stale-after-gap")]
    [DataRow("stop-at-damaged-segment")]
    [DataRow("poison-reads-old-data")]
    [DataRow("replay-damaged-blocks")]
    [DataRow("claim-nothing-durable")]
    [DataRow("pmem-damage-as-torn")]
    [DataRow("read-only-writes-through")]
    public void The_sweep_catches_the_seeded_recovery_bugs(string mutant)
    {
        (CacheMode mode, Workload workload) = SeededBugs.ShownTo(Sweep.Corruption, mutant);
        foreach (int seed in new[] { 1, 2, 3 })
        {
            CorruptionSweepResult result = CorruptionSweep.Run(new CorruptionSweepSpec(mode, workload, seed, Ops: 150, Mutant: mutant, StopAtFirst: true));
            Assert.IsGreaterThan(0, result.Violations, $"mutant {mutant} passed seed {seed}: the sweep has no teeth for it");
        }
    }

    [TestMethod]
    public void Every_seeded_bug_of_the_sweep_has_a_test_above() =>
        CollectionAssert.AreEquivalent(
            new[] { "trust-segment-without-checksum", "replay-stale-after-gap", "stop-at-damaged-segment", "poison-reads-old-data", "replay-damaged-blocks", "claim-nothing-durable", "pmem-damage-as-torn", "read-only-writes-through" },
            SeededBugs.NamesCaughtBy(Sweep.Corruption));

    /// <summary>A small cache (16 KiB segments) that crashed after one acknowledged FUA write.</summary>
    private static (MemoryBlockDevice Backing, MemoryBlockDevice Cache, Tunables Tunables) CrashedAfterOneFuaWrite()
    {
        MemoryBlockDevice backing = new(64 * 1024, name: "backing");
        MemoryBlockDevice cache = new((1 << 20) + 6 * 16 * 1024, name: "cache");
        Tunables tunables = new(new Dictionary<string, long> { ["segment_size_order"] = 5 });
        WriteboostDevice device = WriteboostDevice.Open(backing, cache, tunables);
        device.Write(0, Enumerable.Repeat((byte)7, 4096).ToArray(), WriteOptions.Fua);
        device.Abandon();
        return (backing, cache, tunables);
    }

    [TestMethod]
    public void A_flipped_magic_is_refused_rather_than_formatted_over()
    {
        (MemoryBlockDevice backing, MemoryBlockDevice cache, Tunables tunables) = CrashedAfterOneFuaWrite();

        cache.Media[0] ^= 1;

        InvalidDataException error = Assert.Throws<InvalidDataException>(() => WriteboostDevice.Open(backing, cache, tunables));
        StringAssert.Contains(error.Message, "magic in sector 0 is damaged");
        Assert.AreEqual(SuperblockState.CorruptMagic, SuperblockHeaderOnDisk.Read(cache.Media[..512]).State);
    }

    [TestMethod]
    public void A_zeroed_sector_0_over_live_segments_is_refused_rather_than_formatted_over()
    {
        (MemoryBlockDevice backing, MemoryBlockDevice cache, Tunables tunables) = CrashedAfterOneFuaWrite();

        cache.Media[..512].Clear();

        InvalidDataException error = Assert.Throws<InvalidDataException>(() => WriteboostDevice.Open(backing, cache, tunables));
        StringAssert.Contains(error.Message, "first slot holds an intact segment");
        using WriteboostDevice reformatted = WriteboostDevice.Open(backing, cache, tunables, new WriteboostOptions { Reformat = true });
        Assert.IsTrue(reformatted.Recovery.Formatted, "--reformat still starts over");
    }

    [TestMethod]
    public void A_zeroed_superblock_record_is_inferred_from_the_ring_and_said_so()
    {
        MemoryBlockDevice backing = new(64 * 1024, name: "backing");
        MemoryBlockDevice cache = new((1 << 20) + 4 * 16 * 1024, name: "cache");
        Tunables tunables = new(new Dictionary<string, long> { ["segment_size_order"] = 5 });
        WriteboostDevice device = WriteboostDevice.Open(backing, cache, tunables);
        byte[] last = [];
        for (int i = 0; i < 40; i++)
        {
            last = Enumerable.Repeat((byte)(i + 1), 4096).ToArray();
            device.Write(i % 16 * 4096L, last, WriteOptions.Fua); // 40 FUA writes wrap the 4-slot ring several times
        }
        device.Abandon();
        cache.Media.Slice((int)SuperblockRecordOnDisk.WriteOffsetBytes, 4096).Clear();

        CacheReport check = CacheInspector.Inspect(cache);
        using WriteboostDevice recovered = WriteboostDevice.Open(backing, cache, tunables);

        StringAssert.Contains(check.RecordWarning, "the superblock record is missing");
        Assert.IsTrue(recovered.Recovery.Warnings.Any(w => w.Contains("inferred last written-back segment", StringComparison.Ordinal)));
        byte[] read = new byte[4096];
        recovered.Read(39 % 16 * 4096L, read);
        CollectionAssert.AreEqual(last, read, "the newest write survives the lost record");
    }
}
