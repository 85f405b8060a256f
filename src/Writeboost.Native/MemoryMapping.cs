using System.Runtime.Versioning;

namespace Writeboost.Native;

/// <summary>
/// A shared, writable mmap of a byte range of an open file or device. The mapping is asked for with
/// MAP_SHARED_VALIDATE|MAP_SYNC first: the kernel grants it only where the file is DAX (a file on a
/// <c>-o dax</c> filesystem, a device-dax character device), and then stores reach the media without any
/// filesystem metadata sync — a cache-line flush + fence makes them durable. Elsewhere (tmpfs, ext4 without
/// dax) the kernel answers EOPNOTSUPP and a plain MAP_SHARED mapping is made, durable only through msync.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed unsafe class MemoryMapping : IDisposable
{
    private nint _base;

    private MemoryMapping(nint baseAddress, nuint mappedLength, long alignedOffsetBytes, int deltaBytes, long lengthBytes, bool mapSync, string path)
    {
        _base = baseAddress;
        MappedLengthBytes = mappedLength;
        AlignedOffsetBytes = alignedOffsetBytes;
        DeltaBytes = deltaBytes;
        LengthBytes = lengthBytes;
        IsMapSync = mapSync;
        Path = path;
    }

    internal string Path { get; }
    internal long LengthBytes { get; }
    /// <summary>True when the kernel granted MAP_SYNC (the file is DAX).</summary>
    internal bool IsMapSync { get; }
    private nuint MappedLengthBytes { get; }
    private long AlignedOffsetBytes { get; }
    private int DeltaBytes { get; }

    /// <summary>Address of the first byte of the requested range.</summary>
    internal byte* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(_base == 0, this);
            return (byte*)_base + DeltaBytes;
        }
    }

    /// <summary>
    /// Maps <paramref name="lengthBytes"/> bytes starting at <paramref name="offsetBytes"/>. The file offset is
    /// rounded down to <paramref name="alignmentBytes"/> (the page size, or a device-dax alignment such as 2 MiB).
    /// </summary>
    internal static MemoryMapping Map(PosixFile file, long offsetBytes, long lengthBytes, long alignmentBytes, bool allowMapSync = true)
    {
        long alignedOffset = offsetBytes / alignmentBytes * alignmentBytes;
        int delta = checked((int)(offsetBytes - alignedOffset));
        long span = delta + lengthBytes;
        nuint mapLength = (nuint)((span + alignmentBytes - 1) / alignmentBytes * alignmentBytes);
        const int prot = LibC.PROT_READ | LibC.PROT_WRITE;

        if (allowMapSync)
        {
            nint syncAddress = LibC.mmap(0, mapLength, prot, LibC.MAP_SHARED_VALIDATE | LibC.MAP_SYNC, file.Fd, alignedOffset);
            if (syncAddress != LibC.MAP_FAILED)
            {
                return new MemoryMapping(syncAddress, mapLength, alignedOffset, delta, lengthBytes, mapSync: true, file.Path);
            }
            int errno = Errors.LastErrno;
            // EOPNOTSUPP: not DAX. EINVAL: a kernel older than 4.15 that does not know MAP_SHARED_VALIDATE.
            if (errno != LibC.EOPNOTSUPP && errno != LibC.EINVAL)
            {
                throw Errors.FromErrno(errno, "mmap(MAP_SYNC)", file.Path, alignedOffset, (long)mapLength);
            }
        }
        nint address = LibC.mmap(0, mapLength, prot, LibC.MAP_SHARED, file.Fd, alignedOffset);
        if (address == LibC.MAP_FAILED)
        {
            throw Errors.Last("mmap", file.Path, alignedOffset, (long)mapLength);
        }
        return new MemoryMapping(address, mapLength, alignedOffset, delta, lengthBytes, mapSync: false, file.Path);
    }

    /// <summary>msync(MS_SYNC) of the pages that hold [offsetBytes, offsetBytes + lengthBytes) of the range.</summary>
    internal void Msync(long offsetBytes, long lengthBytes)
    {
        long pageSize = PosixFile.PageSizeBytes;
        long start = DeltaBytes + offsetBytes;
        long alignedStart = start / pageSize * pageSize;
        long end = start + lengthBytes;
        if (LibC.msync(_base + (nint)alignedStart, (nuint)(end - alignedStart), LibC.MS_SYNC) != 0)
        {
            throw Errors.Last("msync", Path, AlignedOffsetBytes + alignedStart, end - alignedStart);
        }
    }

    public void Dispose()
    {
        nint address = Interlocked.Exchange(ref _base, 0);
        if (address != 0 && LibC.munmap(address, MappedLengthBytes) != 0)
        {
            throw Errors.Last("munmap", Path, AlignedOffsetBytes, (long)MappedLengthBytes);
        }
    }
}
