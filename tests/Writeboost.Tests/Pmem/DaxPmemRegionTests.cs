using Writeboost.Devices;
using Writeboost.Pmem;
using Writeboost.Tests.Support;
using PmemApi = Writeboost.Pmem.Pmem;

namespace Writeboost.Tests.Pmem;

[TestClass]
public sealed class DaxPmemRegionTests
{
    private const string SharedMemory = "/dev/shm";

    [TestInitialize]
    public void RequireLibPmem()
    {
        if (PmemApi.LibPmemUnavailableReason is { } reason)
        {
            Assert.Fail($"the dax backend needs libpmem; the test setup installs it: {reason}");
        }
    }

    [TestMethod]
    [DataRow(SharedMemory, DisplayName = "on tmpfs (emulated pmem)")]
    [DataRow(null, DisplayName = "on a disk filesystem (msync path)")]
    public void Writes_at_every_alignment_compose_like_a_byte_array(string? root)
    {
        using TempDirectory dir = new(root);
        string path = dir.File("pmem");
        FileBlockDevice.CreateFile(path, 1 << 20);
        // A start that is not page aligned: the mapping is rounded down, the region is not.
        using PmemRegion region = PmemApi.Alloc(path, 4096 + 200, 100_000, PmemBackend.Dax);
        byte[] reference = new byte[100_000];
        Random random = new(7);
        for (int step = 0; step < 5000; step++)
        {
            int length = random.Next(0, 3) switch { 0 => random.Next(0, 9), 1 => random.Next(1, 200), _ => random.Next(1, 9000) };
            int offset = random.Next(0, reference.Length - length + 1);
            byte[] data = new byte[length];
            random.NextBytes(data);
            switch (step % 3)
            {
                case 0:
                    region.Write(offset, data);
                    break;
                case 1:
                    region.WritePersist(offset, data);
                    break;
                default:
                    region.WriteFlush(offset, data);
                    break;
            }
            data.CopyTo(reference, offset);
        }
        region.Drain();
        byte[] all = new byte[reference.Length];
        region.Read(0, all);
        CollectionAssert.AreEqual(reference, all);
    }

    [TestMethod]
    [DataRow(SharedMemory, DisplayName = "on tmpfs (emulated pmem)")]
    [DataRow(null, DisplayName = "on a disk filesystem (msync path)")]
    public void Persisted_bytes_survive_close_and_reopen(string? root)
    {
        using TempDirectory dir = new(root);
        string path = dir.File("pmem");
        FileBlockDevice.CreateFile(path, 1 << 20);
        byte[] record = Enumerable.Range(0, 300).Select(i => (byte)(i ^ 0x5A)).ToArray();
        using (PmemRegion region = PmemApi.Alloc(path, 8192, 65536, PmemBackend.Dax))
        {
            region.Write(61, record);
            region.Flush(61, record.Length);
            region.Store64(4096, 42);
            region.Persist(4096, 8);
            region.Drain();
        }
        using PmemRegion reopened = PmemApi.Alloc(path, 8192, 65536, PmemBackend.Dax);
        byte[] back = new byte[record.Length];
        reopened.Read(61, back);
        CollectionAssert.AreEqual(record, back);
        byte[] word = new byte[8];
        reopened.Read(4096, word);
        Assert.AreEqual(42UL, BitConverter.ToUInt64(word));
        // And the file itself (the media) holds them: read it through the block backend.
        reopened.Dispose();
        using PmemRegion asBlock = PmemApi.Alloc(path, 8192, 65536, PmemBackend.Block);
        asBlock.Read(61, back);
        CollectionAssert.AreEqual(record, back);
    }

    [TestMethod]
    public void A_non_dax_file_reports_page_granularity_unless_pmem_is_forced()
    {
        using TempDirectory dir = new();
        string path = dir.File("pmem");
        FileBlockDevice.CreateFile(path, 1 << 16);
        using DaxPmemRegion region = (DaxPmemRegion)PmemApi.Alloc(path, 0, 1 << 16, PmemBackend.Dax);
        Assert.IsFalse(region.IsMapSync, "ext4 without -o dax does not grant MAP_SYNC");
        bool forced = Environment.GetEnvironmentVariable("PMEM_IS_PMEM_FORCE") == "1";
        Assert.AreEqual(forced, region.IsPmem);
        Assert.AreEqual(forced ? PmemGranularity.CacheLine : PmemGranularity.Page, region.Granularity);
    }

    [TestMethod]
    public void Auto_maps_a_tmpfs_file_and_uses_read_modify_write_on_a_disk_file()
    {
        using TempDirectory shm = new(SharedMemory);
        using TempDirectory disk = new();
        string memoryFile = shm.File("pmem");
        string diskFile = disk.File("pmem");
        FileBlockDevice.CreateFile(memoryFile, 1 << 16);
        FileBlockDevice.CreateFile(diskFile, 1 << 16);
        Assert.AreEqual(PmemBackend.Dax, PmemApi.ChooseBackend(memoryFile));
        Assert.AreEqual(PmemBackend.Block, PmemApi.ChooseBackend(diskFile));
        using PmemRegion whole = PmemApi.Alloc(memoryFile, 0, -1);
        Assert.AreEqual(1 << 16, whole.LengthBytes);
    }

    [TestMethod]
    public void A_region_past_the_end_of_the_file_is_refused_with_its_path()
    {
        using TempDirectory dir = new(SharedMemory);
        string path = dir.File("pmem");
        FileBlockDevice.CreateFile(path, 1 << 16);
        ArgumentOutOfRangeException error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => PmemApi.Alloc(path, 4096, 1 << 16, PmemBackend.Dax));
        StringAssert.Contains(error.Message, path);
        StringAssert.Contains(error.Message, "offset 4096 length 65536");
    }

    [TestMethod]
    public void Bad_ranges_are_refused_and_damage_nothing()
    {
        using TempDirectory dir = new(SharedMemory);
        string path = dir.File("pmem");
        FileBlockDevice.CreateFile(path, 1 << 16);
        using PmemRegion region = PmemApi.Alloc(path, 0, 4096, PmemBackend.Dax);
        byte[] original = Enumerable.Range(0, 4096).Select(i => (byte)(i * 3)).ToArray();
        region.WritePersist(0, original);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => region.Write(4095, new byte[2]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => region.Flush(-64, 64));
        Assert.ThrowsExactly<ArgumentException>(() => region.Store64(12, 1));
        byte[] back = new byte[4096];
        region.Read(0, back);
        CollectionAssert.AreEqual(original, back);
    }

    [TestMethod]
    public void A_real_dax_device_or_filesystem_maps_with_MAP_SYNC()
    {
        string? target = RealDax.Find(out string why);
        if (target is null)
        {
            // The lab runs this on the kernel's real drivers on every machine that can boot it (Lab/LabPmemApiTests).
            Assert.Inconclusive($"skipped: no real DAX on this host ({why}); Lab/LabPmemApiTests covers it in the lab's VM");
            return;
        }
        using DaxPmemRegion region = (DaxPmemRegion)PmemApi.Alloc(target, 0, 2 * 1024 * 1024, PmemBackend.Dax);
        Assert.IsTrue(region.IsPmem);
        Assert.IsTrue(region.IsMapSync || region.IsDeviceDax);
        Assert.AreNotEqual(PmemGranularity.Page, region.Granularity);
    }
}
