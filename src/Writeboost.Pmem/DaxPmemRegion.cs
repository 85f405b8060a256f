using System.Runtime.Versioning;
using Writeboost.Devices;
using Writeboost.Native;

namespace Writeboost.Pmem;

/// <summary>
/// A memory-mapped region: a file on a <c>-o dax</c> filesystem, a device-dax character device (/dev/daxX.Y),
/// or an emulation (a file on /dev/shm). Stores are plain memory copies into the mapping. Persistence:
/// <list type="bullet">
/// <item>pmem (MAP_SYNC granted, device dax, or <c>PMEM_IS_PMEM_FORCE=1</c> in the environment at process start):
/// libpmem's cache-line write-back (clwb/clflushopt/clflush, whichever the CPU has) and sfence;</item>
/// <item>otherwise: msync(MS_SYNC) of the pages, as libpmem's pmem_msync.</item>
/// </list>
/// </summary>
[SupportedOSPlatform("linux")]
public sealed unsafe class DaxPmemRegion : PmemRegion
{
    private readonly PosixFile _file;
    private readonly MemoryMapping _mapping;

    private DaxPmemRegion(PosixFile file, MemoryMapping mapping, long startBytes, long lengthBytes, bool isPmem, bool isDeviceDax)
        : base($"{file.Path}@{startBytes}", lengthBytes)
    {
        _file = file;
        _mapping = mapping;
        IsPmem = isPmem;
        IsDeviceDax = isDeviceDax;
        Granularity = !isPmem ? PmemGranularity.Page
            : LibPmem.pmem_has_auto_flush() == 1 ? PmemGranularity.Byte
            : PmemGranularity.CacheLine;
    }

    /// <inheritdoc />
    public override PmemBackend Backend => PmemBackend.Dax;
    /// <inheritdoc />
    public override PmemGranularity Granularity { get; }
    /// <inheritdoc />
    public override bool IsPmem { get; }
    /// <summary>True when the kernel granted MAP_SYNC: the file really is DAX.</summary>
    public bool IsMapSync => _mapping.IsMapSync;
    /// <summary>True when the mapping is of a device-dax character device (/dev/daxN.M) rather than a file.</summary>
    public bool IsDeviceDax { get; }

    internal static DaxPmemRegion Open(string path, long startBytes, long lengthBytes, DeviceLock deviceLock = DeviceLock.None)
    {
        LibPmem.EnsureAvailable();
        PosixFile file = PosixFile.Open(path, tryDirect: false);
        try
        {
            bool locked = deviceLock switch
            {
                DeviceLock.Exclusive => file.TryLockExclusive(),
                DeviceLock.Shared => file.TryLockShared(),
                _ => true,
            };
            if (!locked)
            {
                throw new Devices.DeviceInUseException(path);
            }
            FileKind kind = file.Kind;
            long sizeBytes;
            long alignmentBytes = PosixFile.PageSizeBytes;
            bool isDeviceDax = false;
            switch (kind)
            {
                case FileKind.Regular:
                case FileKind.BlockDevice:
                    sizeBytes = file.SizeBytes;
                    break;
                case FileKind.CharacterDevice:
                    (uint major, uint minor) = file.DeviceNumber;
                    DeviceDaxInfo dax = DeviceDaxInfo.Read(path, major, minor);
                    sizeBytes = dax.SizeBytes;
                    alignmentBytes = Math.Max(alignmentBytes, dax.AlignmentBytes);
                    isDeviceDax = true;
                    break;
                default:
                    throw new IOException($"{path} cannot be mapped as pmem: it is a {kind}");
            }
            Devices.DeviceRange.CheckInside(path, sizeBytes, startBytes, lengthBytes, "map");
            if (lengthBytes == 0)
            {
                throw new ArgumentOutOfRangeException(nameof(lengthBytes), $"map {path} at offset {startBytes}: an empty region cannot be mapped");
            }
            if (isDeviceDax && startBytes % alignmentBytes != 0)
            {
                throw new ArgumentException($"map {path} at offset {startBytes}: device dax needs offsets aligned to {alignmentBytes} bytes");
            }
            MemoryMapping mapping = MemoryMapping.Map(file, startBytes, lengthBytes, alignmentBytes);
            bool isPmem = mapping.IsMapSync || isDeviceDax || LibPmem.pmem_is_pmem(mapping.Pointer, (nuint)lengthBytes) != 0;
            return new DaxPmemRegion(file, mapping, startBytes, lengthBytes, isPmem, isDeviceDax);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    protected override void WriteCore(long offsetBytes, ReadOnlySpan<byte> source) =>
        source.CopyTo(new Span<byte>(_mapping.Pointer + offsetBytes, source.Length));

    /// <inheritdoc />
    protected override void ReadCore(long offsetBytes, Span<byte> destination) =>
        new ReadOnlySpan<byte>(_mapping.Pointer + offsetBytes, destination.Length).CopyTo(destination);

    /// <inheritdoc />
    protected override void FlushCore(long offsetBytes, long lengthBytes)
    {
        if (IsPmem)
        {
            LibPmem.pmem_flush(_mapping.Pointer + offsetBytes, (nuint)lengthBytes);
        }
        else if (lengthBytes > 0)
        {
            _mapping.Msync(offsetBytes, lengthBytes);
        }
    }

    /// <inheritdoc />
    protected override void DrainCore()
    {
        if (IsPmem)
        {
            LibPmem.pmem_drain();
        }
    }

    /// <inheritdoc />
    protected override void PersistCore(long offsetBytes, long lengthBytes)
    {
        if (IsPmem)
        {
            LibPmem.pmem_persist(_mapping.Pointer + offsetBytes, (nuint)lengthBytes);
        }
        else if (lengthBytes > 0)
        {
            _mapping.Msync(offsetBytes, lengthBytes);
        }
    }

    /// <inheritdoc />
    protected override void WriteFlushCore(long offsetBytes, ReadOnlySpan<byte> source)
    {
        if (!IsPmem)
        {
            base.WriteFlushCore(offsetBytes, source);
            return;
        }
        fixed (byte* from = source)
        {
            LibPmem.pmem_memcpy(_mapping.Pointer + offsetBytes, from, (nuint)source.Length, LibPmem.PMEM_F_MEM_NODRAIN);
        }
    }

    /// <inheritdoc />
    protected override void WritePersistCore(long offsetBytes, ReadOnlySpan<byte> source)
    {
        if (!IsPmem)
        {
            base.WritePersistCore(offsetBytes, source);
            return;
        }
        fixed (byte* from = source)
        {
            LibPmem.pmem_memcpy_persist(_mapping.Pointer + offsetBytes, from, (nuint)source.Length);
        }
    }

    // An aligned 8-byte store is a single MOV on x86-64 and aarch64: it cannot tear.
    /// <inheritdoc />
    protected override void Store64Core(long offsetBytes, ulong value) =>
        Volatile.Write(ref *(ulong*)(_mapping.Pointer + offsetBytes), value);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _mapping.Dispose();
            _file.Dispose();
        }
    }
}

/// <summary>Size and mapping alignment of a device-dax character device, from sysfs.</summary>
internal readonly record struct DeviceDaxInfo(long SizeBytes, long AlignmentBytes)
{
    internal static DeviceDaxInfo Read(string path, uint major, uint minor)
    {
        string sysfs = $"/sys/dev/char/{major}:{minor}";
        string sizeFile = Path.Combine(sysfs, "size");
        if (!File.Exists(sizeFile))
        {
            throw new IOException($"{path} is a character device but not device dax ({sizeFile} does not exist)");
        }
        long size = long.Parse(File.ReadAllText(sizeFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        long align = 2 * 1024 * 1024;
        foreach (string candidate in new[] { Path.Combine(sysfs, "align"), Path.Combine(sysfs, "device", "align") })
        {
            if (File.Exists(candidate) && long.TryParse(File.ReadAllText(candidate).Trim(), out long value) && value > 0)
            {
                align = value;
                break;
            }
        }
        return new DeviceDaxInfo(size, align);
    }
}
