using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Writeboost.Native;

namespace Writeboost.Devices;

/// <summary>The advisory lock every tool takes on a device path (flock): one writer, or any number of lookers.</summary>
public enum DeviceLock
{
    /// <summary>No lock (tests, the harness's own images).</summary>
    None,
    /// <summary>Looking only: shared with other lookers, kept out by a writer.</summary>
    Shared,
    /// <summary>Writing: nobody else, looker or writer.</summary>
    Exclusive,
}

/// <summary>Another process holds the lock a tool asked for on a path: the message names the holder (from /proc/locks).</summary>
public sealed class DeviceInUseException(string path, string? why = null) : IOException(DeviceProbe.InUseMessage(path) + (why is null ? "" : $": {why}"))
{
    /// <summary>The path that is in use.</summary>
    public string Path { get; } = path;
}

/// <summary>How to open a <see cref="FileBlockDevice"/>.</summary>
public sealed record FileBlockDeviceOptions
{
    /// <summary>Ask for O_DIRECT (bypass the page cache); dropped silently where the filesystem refuses it.</summary>
    public bool Direct { get; init; }

    /// <summary>The sector size of a regular file (default 512). A block device always uses its own (BLKSSZGET).</summary>
    public int? SectorSizeBytes { get; init; }

    /// <summary>
    /// The flock taken at open: <see cref="DeviceLock.Exclusive"/> for a tool that writes (a second opener gets a clear
    /// error naming the holder instead of shared corruption), <see cref="DeviceLock.Shared"/> for one that only looks
    /// (other lookers may share it; a writer's exclusive lock keeps it out, and it keeps a writer out).
    /// </summary>
    public DeviceLock Lock { get; init; }

    /// <summary>Shorthand for <see cref="Lock"/> = <see cref="DeviceLock.Exclusive"/>.</summary>
    public bool Exclusive
    {
        get => Lock == DeviceLock.Exclusive;
        init => Lock = value ? DeviceLock.Exclusive : DeviceLock.None;
    }

    /// <summary>Open O_RDONLY (inspection of read-only images and devices); writes then fail.</summary>
    public bool ReadOnly { get; init; }
}

/// <summary>
/// A regular file or a block device (a block file, a loop device, /dev/pmem0, an NVMe partition) used as a
/// block device: pread/pwrite at byte offsets, FUA as pwritev2(RWF_DSYNC), flush as fdatasync, size from
/// st_size or ioctl(BLKGETSIZE64). With O_DIRECT, spans that are not aligned in memory go through an aligned
/// bounce buffer, so callers never have to care.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class FileBlockDevice : IBlockDevice
{
    private const int DefaultSectorSizeBytes = 512;
    private readonly PosixFile _file;

    private FileBlockDevice(PosixFile file, int sectorSizeBytes, long sizeBytes, bool isBlockDevice)
    {
        _file = file;
        SectorSizeBytes = sectorSizeBytes;
        SizeBytes = sizeBytes;
        IsBlockDevice = isBlockDevice;
    }

    /// <inheritdoc />
    public string Name => _file.Path;
    /// <inheritdoc />
    public int SectorSizeBytes { get; }
    /// <inheritdoc />
    public long SizeBytes { get; }
    /// <summary>True for a real block device node, false for a regular file.</summary>
    public bool IsBlockDevice { get; }
    /// <summary>True when the file was opened with O_DIRECT.</summary>
    public bool IsDirect => _file.IsDirect;
    /// <summary>The requests this device has served, for benchmarks and tests.</summary>
    public IoCounters Counters { get; } = new();

    /// <summary>True when both paths exist and name the same file or device (through symlinks, hard links or two device nodes).</summary>
    public static bool SameFile(string first, string second) =>
        PosixFile.Identity(first) is { } a && PosixFile.Identity(second) is { } b && a == b;

    /// <summary>The size of the file or block device at <paramref name="path"/> in bytes (a read-only open, no lock).</summary>
    public static long SizeOf(string path)
    {
        using FileBlockDevice device = Open(path, new FileBlockDeviceOptions { ReadOnly = true });
        return device.SizeBytes;
    }

    /// <summary>Opens an existing file or block device. Its size is fixed at open: the device never grows.</summary>
    /// <exception cref="FileNotFoundException">the path does not exist.</exception>
    /// <exception cref="NativeIOException">open or a size query failed.</exception>
    public static FileBlockDevice Open(string path, FileBlockDeviceOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new FileBlockDeviceOptions();
        if (Directory.Exists(path))
        {
            throw new IOException($"{path} is a directory, not a file or block device");
        }
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"block device or file {path} does not exist", path);
        }
        PosixFile file = PosixFile.Open(path, options.Direct, readOnly: options.ReadOnly);
        try
        {
            FileKind kind = file.Kind;
            if (kind != FileKind.Regular && kind != FileKind.BlockDevice)
            {
                throw new IOException($"{path} is neither a regular file nor a block device (it is a {kind})");
            }
            bool locked = options.Lock switch
            {
                DeviceLock.Exclusive => file.TryLockExclusive(),
                DeviceLock.Shared => file.TryLockShared(),
                _ => true,
            };
            if (!locked)
            {
                throw new DeviceInUseException(path);
            }
            int sector = file.LogicalSectorSizeBytes ?? options.SectorSizeBytes ?? DefaultSectorSizeBytes;
            if (sector <= 0 || (sector & (sector - 1)) != 0)
            {
                throw new ArgumentOutOfRangeException(nameof(options), $"{path}: sector size {sector} is not a power of two");
            }
            long size = file.SizeBytes;
            return new FileBlockDevice(file, sector, size - size % sector, kind == FileKind.BlockDevice);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates (or grows) a regular file of <paramref name="sizeBytes"/> bytes to serve as a block device, then
    /// makes the new size and the directory entry durable (fsync of the file and of its directory).
    /// An existing file is never shrunk or overwritten.
    /// </summary>
    /// <param name="zeroFill">A new file has every block written now (zeros), as a device's blocks exist, instead
    /// of being sparse: no later write into it waits for the file system to find the space (on tmpfs: for a page to
    /// be allocated and zeroed). fallocate is not enough for that: on tmpfs here a first write into fallocated pages
    /// was as slow as into a sparse file. An existing file is left as it is.</param>
    public static void CreateFile(string path, long sizeBytes, bool zeroFill = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sizeBytes);
        bool isNew = !File.Exists(path);
        using (FileStream stream = new(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            if (stream.Length < sizeBytes)
            {
                stream.SetLength(sizeBytes);
            }
            if (zeroFill && isNew)
            {
                byte[] zeros = new byte[1 << 20];
                for (long offset = 0; offset < sizeBytes; offset += zeros.Length)
                {
                    RandomAccess.Write(stream.SafeFileHandle, zeros.AsSpan(0, (int)Math.Min(zeros.Length, sizeBytes - offset)), offset);
                }
            }
            stream.Flush(flushToDisk: true);
        }
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            PosixFile.SyncDirectory(directory);
        }
    }

    /// <inheritdoc />
    public void Read(long offsetBytes, Span<byte> destination)
    {
        DeviceRange.CheckAligned(this, offsetBytes, destination.Length, "read");
        if (_file.IsDirect && !IsAligned(destination))
        {
            Span<byte> bounce = Bounce(destination.Length);
            _file.ReadExactly(offsetBytes, bounce);
            bounce.CopyTo(destination);
        }
        else
        {
            _file.ReadExactly(offsetBytes, destination);
        }
        Counters.CountRead(destination.Length);
    }

    /// <inheritdoc />
    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        DeviceRange.CheckAligned(this, offsetBytes, source.Length, "write");
        if (_file.IsDirect && !IsAligned(source))
        {
            Span<byte> bounce = Bounce(source.Length);
            source.CopyTo(bounce);
            WriteAligned(offsetBytes, bounce, options);
        }
        else
        {
            WriteAligned(offsetBytes, source, options);
        }
        Counters.CountWrite(source.Length, options);
    }

    private void WriteAligned(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options)
    {
        if ((options & WriteOptions.Fua) != 0)
        {
            _file.WriteFullyDurable(offsetBytes, source);
        }
        else
        {
            _file.WriteFully(offsetBytes, source);
        }
    }

    /// <inheritdoc />
    public void Flush()
    {
        _file.DataSync();
        Counters.CountFlush();
    }

    /// <inheritdoc />
    public void Dispose() => _file.Dispose();

    private unsafe bool IsAligned(ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            return (nuint)p % (nuint)SectorSizeBytes == 0;
        }
    }

    /// <summary>
    /// The calling thread's aligned bounce buffer for an unaligned O_DIRECT transfer, grown as needed and kept
    /// (up to <see cref="KeptBounceBytes"/>; larger ones are made for the call): no allocation per I/O.
    /// </summary>
    private static Span<byte> Bounce(int lengthBytes)
    {
        if (lengthBytes > KeptBounceBytes)
        {
            return AlignedMemory.Allocate(lengthBytes).Span;
        }
        if (t_bounce.Length < lengthBytes)
        {
            t_bounce = AlignedMemory.Allocate(Math.Max(lengthBytes, 64 * 1024));
        }
        return t_bounce.Span[..lengthBytes];
    }

    private const int KeptBounceBytes = 1 << 20;
    [ThreadStatic]
    private static Memory<byte> t_bounce;
}
