using Writeboost.Devices;
using Writeboost.Pmem;
using Writeboost.Tests.Support;
using PmemApi = Writeboost.Pmem.Pmem;

namespace Writeboost.Tests.Pmem;

[TestClass]
public sealed class BlockPmemRegionTests
{
    [TestMethod]
    [DataRow(512)]
    [DataRow(4096)]
    public void Writes_at_every_alignment_compose_like_a_byte_array(int sectorSizeBytes)
    {
        const int regionStart = 3 * 512;
        const int regionLength = 40_000;
        using MemoryBlockDevice device = new(64 * 1024, sectorSizeBytes);
        // Bytes outside the region must never change: fill the device, then check the margins at the end.
        device.Media.Fill(0xEE);
        using BlockPmemRegion region = PmemApi.Alloc(device, regionStart, regionLength);
        byte[] reference = new byte[regionLength];
        region.Read(0, reference);
        Random random = new(sectorSizeBytes);
        for (int step = 0; step < 3000; step++)
        {
            int length = random.Next(0, 3) switch { 0 => random.Next(0, 9), 1 => random.Next(1, 600), _ => random.Next(1, 9000) };
            int offset = random.Next(0, regionLength - length + 1);
            byte[] data = new byte[length];
            random.NextBytes(data);
            region.Write(offset, data);
            data.CopyTo(reference, offset);
            if (step % 100 == 0)
            {
                int readOffset = random.Next(0, regionLength);
                int readLength = random.Next(0, regionLength - readOffset + 1);
                byte[] back = new byte[readLength];
                region.Read(readOffset, back);
                CollectionAssert.AreEqual(reference.AsSpan(readOffset, readLength).ToArray(), back, $"step {step}");
            }
        }
        byte[] all = new byte[regionLength];
        region.Read(0, all);
        CollectionAssert.AreEqual(reference, all);
        Assert.IsTrue(device.Media[..regionStart].ToArray().All(b => b == 0xEE), "bytes before the region changed");
        Assert.IsTrue(device.Media[(regionStart + regionLength)..].ToArray().All(b => b == 0xEE), "bytes after the region changed");
    }

    // offset, length → sectors read by the read-modify-write (512-byte sectors)
    [TestMethod]
    [DataRow(0, 512, 0, DisplayName = "aligned run: no read")]
    [DataRow(0, 4096, 0, DisplayName = "aligned multi-sector run: no read")]
    [DataRow(100, 50, 1, DisplayName = "inside one sector: one read")]
    [DataRow(100, 412, 1, DisplayName = "partial head only: one read")]
    [DataRow(0, 700, 1, DisplayName = "partial tail only: one read")]
    [DataRow(100, 600, 2, DisplayName = "partial head and tail: two reads")]
    [DataRow(100, 5000, 2, DisplayName = "long run with partial head and tail: two reads")]
    public void An_unaligned_write_reads_only_its_partial_head_and_tail_sectors_and_writes_once(int offset, int length, int expectedReads)
    {
        using MemoryBlockDevice device = new(16 * 1024);
        using BlockPmemRegion region = PmemApi.Alloc(device, 0, 16 * 1024);
        IoCountersSnapshot before = device.Counters.Snapshot();
        region.Write(offset, new byte[length]);
        IoCountersSnapshot used = device.Counters.Snapshot() - before;
        Assert.AreEqual(expectedReads, used.Reads, "sector reads");
        Assert.AreEqual(1, used.Writes, "one write of the aligned run");
        long alignedStart = offset / 512 * 512;
        long alignedEnd = (offset + length + 511) / 512 * 512;
        Assert.AreEqual(alignedEnd - alignedStart, used.BytesWritten);
        Assert.AreEqual(expectedReads * 512, used.BytesRead);
        Assert.AreEqual(used, region.Counters.Snapshot(), "the region counts the same I/O its device saw");
    }

    [TestMethod]
    public void An_unaligned_read_is_one_device_read_and_persist_is_one_device_flush()
    {
        using MemoryBlockDevice device = new(16 * 1024);
        using BlockPmemRegion region = PmemApi.Alloc(device, 512, 8192);
        IoCountersSnapshot before = device.Counters.Snapshot();
        region.Read(77, new byte[3000]);
        region.Persist(0, 100);
        IoCountersSnapshot used = device.Counters.Snapshot() - before;
        Assert.AreEqual(1, used.Reads);
        Assert.AreEqual(0, used.Writes);
        Assert.AreEqual(1, used.Flushes);
    }

    [TestMethod]
    public void Persisted_bytes_survive_close_and_reopen_of_a_block_file()
    {
        using TempDirectory dir = new();
        string path = dir.File("pmem.img");
        FileBlockDevice.CreateFile(path, 1 << 20);
        byte[] record = "a record that straddles sectors"u8.ToArray();
        using (PmemRegion region = PmemApi.Alloc(path, 4096, 65536, PmemBackend.Block))
        {
            Assert.AreEqual(PmemBackend.Block, region.Backend);
            Assert.AreEqual(PmemGranularity.Page, region.Granularity);
            region.Write(500, record);
            region.Store64(1024, 0xDEAD_BEEF_0123_4567);
            region.Persist(500, record.Length);
        }
        using PmemRegion reopened = PmemApi.Alloc(path, 4096, 65536, PmemBackend.Block);
        byte[] back = new byte[record.Length];
        reopened.Read(500, back);
        CollectionAssert.AreEqual(record, back);
        byte[] word = new byte[8];
        reopened.Read(1024, word);
        Assert.AreEqual(0xDEAD_BEEF_0123_4567UL, BitConverter.ToUInt64(word));
    }

    [TestMethod]
    public void Bad_ranges_are_refused_with_the_path_offset_and_length_and_damage_nothing()
    {
        using MemoryBlockDevice device = new(8192, name: "pmem-test");
        using BlockPmemRegion region = PmemApi.Alloc(device, 1024, 4096);
        byte[] original = Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray();
        region.Write(0, original);

        ArgumentOutOfRangeException past = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => region.Write(4000, new byte[200]));
        StringAssert.Contains(past.Message, "pmem-test@1024");
        StringAssert.Contains(past.Message, "offset 4000 length 200");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => region.Write(-1, new byte[1]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => region.Read(4096, new byte[1]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => region.Persist(0, 4097));
        Assert.ThrowsExactly<ArgumentException>(() => region.Store64(4, 1));
        ArgumentOutOfRangeException alloc = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => PmemApi.Alloc(device, 4096, 8192));
        StringAssert.Contains(alloc.Message, "offset 4096 length 8192");

        byte[] back = new byte[4096];
        region.Read(0, back);
        CollectionAssert.AreEqual(original, back);
    }

    [TestMethod]
    public void A_freed_region_refuses_further_use()
    {
        using MemoryBlockDevice device = new(8192);
        BlockPmemRegion region = PmemApi.Alloc(device, 0, 4096);
        region.Free();
        Assert.ThrowsExactly<ObjectDisposedException>(() => region.Write(0, new byte[1]));
        Assert.ThrowsExactly<ObjectDisposedException>(() => region.Drain());
    }

    [TestMethod]
    public void A_pmem_path_that_does_not_exist_is_named()
    {
        FileNotFoundException error = Assert.ThrowsExactly<FileNotFoundException>(() => PmemApi.Alloc("/nonexistent/pmem0", 0, 4096));
        StringAssert.Contains(error.Message, "/nonexistent/pmem0");
    }

    [TestMethod]
    public void A_pmem_file_too_small_for_the_region_is_refused()
    {
        using TempDirectory dir = new();
        string path = dir.File("small.img");
        FileBlockDevice.CreateFile(path, 4096);
        ArgumentOutOfRangeException error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => PmemApi.Alloc(path, 0, 8192, PmemBackend.Block));
        StringAssert.Contains(error.Message, path);
        StringAssert.Contains(error.Message, "4096-byte device");
    }
}
