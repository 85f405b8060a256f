using Writeboost.Devices;
using Writeboost.Native;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Devices;

[TestClass]
public sealed class FileBlockDeviceTests
{
    private const int Size = 1 << 20;

    [TestMethod]
    public void A_read_only_open_reads_and_refuses_writes()
    {
        using TempDirectory dir = new();
        string path = dir.File("image.img");
        FileBlockDevice.CreateFile(path, 8192);
        File.WriteAllBytes(path, Enumerable.Repeat((byte)9, 8192).ToArray());
        using FileBlockDevice device = FileBlockDevice.Open(path, new FileBlockDeviceOptions { ReadOnly = true });

        byte[] back = new byte[4096];
        device.Read(4096, back);

        Assert.IsTrue(back.All(b => b == 9));
        Assert.Throws<NativeIOException>(() => device.Write(0, new byte[512]));
    }

    [TestMethod]
    public void A_zero_filled_file_has_every_block_written_and_an_existing_file_keeps_its_data()
    {
        using TempDirectory dir = new();
        string sparse = dir.File("sparse.img");
        string filled = dir.File("filled.img");
        FileBlockDevice.CreateFile(sparse, 8 * Size);
        FileBlockDevice.CreateFile(filled, 8 * Size, zeroFill: true);

        Assert.IsLessThan(8L * Size, AllocatedBytes(sparse), "without zeroFill the file is sparse");
        Assert.IsGreaterThanOrEqualTo(8L * Size, AllocatedBytes(filled), "zeroFill writes every block");
        Assert.AreEqual(8L * Size, new FileInfo(filled).Length);
        Assert.IsTrue(File.ReadAllBytes(filled).All(b => b == 0));

        byte[] data = Enumerable.Repeat((byte)0x5a, 4096).ToArray();
        using (FileStream stream = new(filled, FileMode.Open, FileAccess.Write))
        {
            stream.Position = 3 * Size;
            stream.Write(data);
        }
        FileBlockDevice.CreateFile(filled, 8 * Size, zeroFill: true);
        byte[] back = File.ReadAllBytes(filled).AsSpan(3 * Size, 4096).ToArray();
        CollectionAssert.AreEqual(data, back, "an existing file is never overwritten");
    }

    private static long AllocatedBytes(string path) => new Mono.Unix.UnixFileInfo(path).BlocksAllocated * 512;

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void Writes_read_back_at_every_sector_offset(bool direct)
    {
        using TempDirectory dir = new();
        string path = dir.File("dev");
        FileBlockDevice.CreateFile(path, Size);
        using FileBlockDevice device = FileBlockDevice.Open(path, new FileBlockDeviceOptions { Direct = direct });
        Random random = new(1);
        byte[] reference = new byte[Size];
        for (int i = 0; i < 200; i++)
        {
            int sectors = random.Next(1, 17);
            long offset = random.Next(0, Size / 512 - sectors) * 512L;
            byte[] data = new byte[sectors * 512 + 1];
            random.NextBytes(data);
            // A span that starts one byte into an array is never aligned: O_DIRECT must bounce it.
            device.Write(offset, data.AsSpan(1), i % 3 == 0 ? WriteOptions.Fua : WriteOptions.None);
            data.AsSpan(1).CopyTo(reference.AsSpan((int)offset));
        }
        byte[] back = new byte[Size + 1];
        device.Read(0, back.AsSpan(1));
        CollectionAssert.AreEqual(reference, back[1..]);
    }

    [TestMethod]
    public void Data_survives_close_and_reopen()
    {
        using TempDirectory dir = new();
        string path = dir.File("dev");
        FileBlockDevice.CreateFile(path, Size);
        byte[] data = Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray();
        using (FileBlockDevice device = FileBlockDevice.Open(path))
        {
            device.Write(8192, data);
            device.Flush();
        }
        using FileBlockDevice reopened = FileBlockDevice.Open(path);
        byte[] back = new byte[4096];
        reopened.Read(8192, back);
        CollectionAssert.AreEqual(data, back);
    }

    [TestMethod]
    public void Size_is_the_file_size_rounded_down_to_whole_sectors()
    {
        using TempDirectory dir = new();
        string path = dir.File("dev");
        File.WriteAllBytes(path, new byte[5000]);
        using FileBlockDevice device = FileBlockDevice.Open(path);
        Assert.AreEqual(4608, device.SizeBytes);
        Assert.AreEqual(512, device.SectorSizeBytes);
        Assert.IsFalse(device.IsBlockDevice);
    }

    [TestMethod]
    public void Counters_see_reads_writes_fua_and_flushes()
    {
        using TempDirectory dir = new();
        string path = dir.File("dev");
        FileBlockDevice.CreateFile(path, Size);
        using FileBlockDevice device = FileBlockDevice.Open(path);
        device.Write(0, new byte[1024], WriteOptions.Fua);
        device.Write(1024, new byte[512]);
        device.Read(0, new byte[512]);
        device.Flush();
        Assert.AreEqual(new IoCountersSnapshot(Reads: 1, Writes: 2, FuaWrites: 1, Flushes: 1, BytesRead: 512, BytesWritten: 1536), device.Counters.Snapshot());
    }

    [TestMethod]
    public void A_missing_path_is_named_in_the_error()
    {
        FileNotFoundException error = Assert.ThrowsExactly<FileNotFoundException>(() => FileBlockDevice.Open("/nonexistent/wb-dev"));
        StringAssert.Contains(error.Message, "/nonexistent/wb-dev");
    }

    [TestMethod]
    public void Out_of_range_and_misaligned_requests_are_refused_and_leave_the_media_unchanged()
    {
        using TempDirectory dir = new();
        string path = dir.File("dev");
        FileBlockDevice.CreateFile(path, 8192);
        using FileBlockDevice device = FileBlockDevice.Open(path);
        byte[] original = Enumerable.Repeat((byte)0x5A, 8192).ToArray();
        device.Write(0, original);

        ArgumentOutOfRangeException past = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => device.Write(7680, new byte[1024]));
        StringAssert.Contains(past.Message, path);
        StringAssert.Contains(past.Message, "offset 7680 length 1024");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => device.Write(-512, new byte[512]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => device.Read(8192, new byte[512]));
        ArgumentException misaligned = Assert.ThrowsExactly<ArgumentException>(() => device.Write(100, new byte[512]));
        StringAssert.Contains(misaligned.Message, "512-byte sector");
        Assert.ThrowsExactly<ArgumentException>(() => device.Write(512, new byte[100]));

        byte[] back = new byte[8192];
        device.Read(0, back);
        CollectionAssert.AreEqual(original, back);
    }

    [TestMethod]
    public void A_second_exclusive_opener_gets_a_clear_error()
    {
        using TempDirectory dir = new();
        string path = dir.File("dev");
        FileBlockDevice.CreateFile(path, 8192);
        using FileBlockDevice first = FileBlockDevice.Open(path, new FileBlockDeviceOptions { Exclusive = true });
        DeviceInUseException error = Assert.ThrowsExactly<DeviceInUseException>(() => FileBlockDevice.Open(path, new FileBlockDeviceOptions { Exclusive = true }));
        StringAssert.Contains(error.Message, $"in use by process {Environment.ProcessId}");
    }

    [TestMethod]
    public void A_directory_is_not_a_block_device()
    {
        using TempDirectory dir = new();
        IOException error = Assert.ThrowsExactly<IOException>(() => FileBlockDevice.Open(dir.Path));
        StringAssert.Contains(error.Message, "is a directory");
    }

    [TestMethod]
    public void A_loop_device_reports_its_size_through_BLKGETSIZE64()
    {
        using TempDirectory dir = new();
        string backingFile = dir.File("loop-backing");
        FileBlockDevice.CreateFile(backingFile, 3 * 1024 * 1024);
        string? loop = LoopDevice.TryAttach(backingFile, out string why);
        if (loop is null)
        {
            Assert.Inconclusive($"skipped: no loop device can be attached here ({why})");
            return;
        }
        try
        {
            using FileBlockDevice device = FileBlockDevice.Open(loop);
            Assert.IsTrue(device.IsBlockDevice);
            Assert.AreEqual(3 * 1024 * 1024, device.SizeBytes);
            byte[] data = Enumerable.Repeat((byte)0xC3, device.SectorSizeBytes).ToArray();
            device.Write(device.SectorSizeBytes, data, WriteOptions.Fua);
            device.Flush();
            byte[] back = new byte[device.SectorSizeBytes];
            device.Read(device.SectorSizeBytes, back);
            CollectionAssert.AreEqual(data, back);
        }
        finally
        {
            LoopDevice.Detach(loop);
        }
    }

    [TestMethod]
    public void A_native_failure_names_the_call_path_and_errno()
    {
        NativeIOException error = Errors.FromErrno(5, "pwrite", "/dev/x", 4096, 512);
        Assert.AreEqual("EIO", error.ErrnoName);
        StringAssert.Contains(error.Message, "pwrite /dev/x at offset 4096 length 512: EIO");
    }
}
