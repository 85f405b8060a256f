using System.Runtime.Versioning;
using Mono.Unix.Native;

namespace Writeboost.Native;

/// <summary>What a path names, as stat(2) tells it.</summary>
internal enum FileKind
{
    Regular,
    BlockDevice,
    CharacterDevice,
    Other,
}

/// <summary>
/// An open file or device with positional I/O. Every call is checked here, once: short reads and writes are
/// looped, EINTR is retried, and any other failure becomes a <see cref="NativeIOException"/> naming the path and
/// the byte range. A failed fdatasync is never retried (fsync-gate): the kernel may already have dropped the
/// dirty pages, so a retry that succeeds would hide data loss.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed unsafe class PosixFile : IDisposable
{
    private bool _fuaUnsupported;

    private PosixFile(SafeFileDescriptor fd, string path, bool direct)
    {
        Fd = fd;
        Path = path;
        IsDirect = direct;
    }

    internal SafeFileDescriptor Fd { get; }
    internal string Path { get; }
    /// <summary>True when the descriptor was opened with O_DIRECT (buffers and offsets must then be aligned).</summary>
    internal bool IsDirect { get; }

    /// <summary>
    /// Opens <paramref name="path"/> read-write (or read-only). With <paramref name="tryDirect"/> O_DIRECT is asked
    /// for first and dropped when the filesystem refuses it with EINVAL (tmpfs before Linux 6.6 does).
    /// </summary>
    internal static PosixFile Open(string path, bool tryDirect, bool create = false, bool readOnly = false)
    {
        int flags = (readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC | (create ? LibC.O_CREAT : 0);
        if (tryDirect)
        {
            int directFd = LibC.open(path, flags | LibC.O_DIRECT, 0x1B6 /* 0666 */);
            if (directFd >= 0)
            {
                return new PosixFile(new SafeFileDescriptor(directFd), path, direct: true);
            }
            if (Errors.LastErrno != LibC.EINVAL)
            {
                throw Errors.Last("open", path);
            }
        }
        int fd = LibC.open(path, flags, 0x1B6);
        if (fd < 0)
        {
            throw Errors.Last("open", path);
        }
        return new PosixFile(new SafeFileDescriptor(fd), path, direct: false);
    }

    internal FileKind Kind
    {
        get
        {
            if (Syscall.fstat(Fd.Number, out Stat stat) != 0)
            {
                throw Errors.FromErrno((int)NativeConvert.FromErrno(Stdlib.GetLastError()), "fstat", Path);
            }
            return (stat.st_mode & FilePermissions.S_IFMT) switch
            {
                FilePermissions.S_IFREG => FileKind.Regular,
                FilePermissions.S_IFBLK => FileKind.BlockDevice,
                FilePermissions.S_IFCHR => FileKind.CharacterDevice,
                _ => FileKind.Other,
            };
        }
    }

    /// <summary>The device number of a character or block device (for its sysfs entry).</summary>
    internal (uint Major, uint Minor) DeviceNumber
    {
        get
        {
            if (Syscall.fstat(Fd.Number, out Stat stat) != 0)
            {
                throw Errors.FromErrno((int)NativeConvert.FromErrno(Stdlib.GetLastError()), "fstat", Path);
            }
            ulong rdev = stat.st_rdev;
            // glibc's gnu_dev_major/minor encoding.
            uint major = (uint)(((rdev >> 32) & 0xfffff000) | ((rdev >> 8) & 0x00000fff));
            uint minor = (uint)(((rdev >> 12) & 0xffffff00) | (rdev & 0x000000ff));
            return (major, minor);
        }
    }

    /// <summary>Size in bytes: st_size for a regular file, ioctl(BLKGETSIZE64) for a block device.</summary>
    internal long SizeBytes
    {
        get
        {
            if (Kind == FileKind.BlockDevice)
            {
                ulong size;
                if (LibC.ioctl(Fd, (nuint)LibC.BLKGETSIZE64, &size) != 0)
                {
                    throw Errors.Last("ioctl(BLKGETSIZE64)", Path);
                }
                return checked((long)size);
            }
            if (Syscall.fstat(Fd.Number, out Stat stat) != 0)
            {
                throw Errors.FromErrno((int)NativeConvert.FromErrno(Stdlib.GetLastError()), "fstat", Path);
            }
            return stat.st_size;
        }
    }

    /// <summary>The logical sector size of a block device (ioctl BLKSSZGET), or null for anything else.</summary>
    internal int? LogicalSectorSizeBytes
    {
        get
        {
            if (Kind != FileKind.BlockDevice)
            {
                return null;
            }
            int size;
            if (LibC.ioctl(Fd, (nuint)LibC.BLKSSZGET, &size) != 0)
            {
                throw Errors.Last("ioctl(BLKSSZGET)", Path);
            }
            return size;
        }
    }

    /// <summary>Reads exactly <c>destination.Length</c> bytes at <paramref name="offsetBytes"/>; end of file is an error.</summary>
    internal void ReadExactly(long offsetBytes, Span<byte> destination)
    {
        fixed (byte* start = destination)
        {
            int done = 0;
            while (done < destination.Length)
            {
                nint n = LibC.pread(Fd, start + done, (nuint)(destination.Length - done), offsetBytes + done);
                if (n < 0)
                {
                    if (Errors.LastErrno == LibC.EINTR)
                    {
                        continue;
                    }
                    throw Errors.Last("pread", Path, offsetBytes, destination.Length);
                }
                if (n == 0)
                {
                    throw new EndOfStreamException(
                        $"pread {Path} at offset {offsetBytes} length {destination.Length}: end of file after {done} bytes");
                }
                done += (int)n;
            }
        }
    }

    /// <summary>Writes all of <paramref name="source"/> at <paramref name="offsetBytes"/>, looping on short writes.</summary>
    internal void WriteFully(long offsetBytes, ReadOnlySpan<byte> source)
    {
        fixed (byte* start = source)
        {
            int done = 0;
            while (done < source.Length)
            {
                nint n = LibC.pwrite(Fd, start + done, (nuint)(source.Length - done), offsetBytes + done);
                if (n < 0)
                {
                    if (Errors.LastErrno == LibC.EINTR)
                    {
                        continue;
                    }
                    throw Errors.Last("pwrite", Path, offsetBytes, source.Length);
                }
                if (n == 0)
                {
                    throw Errors.FromErrno(LibC.ENOSPC, "pwrite", Path, offsetBytes, source.Length);
                }
                done += (int)n;
            }
        }
    }

    /// <summary>
    /// A write that is durable when it returns (REQ_FUA): pwritev2 with RWF_DSYNC, which the block layer turns
    /// into a FUA write. Where the kernel lacks RWF_DSYNC the write is followed by fdatasync.
    /// </summary>
    internal void WriteFullyDurable(long offsetBytes, ReadOnlySpan<byte> source)
    {
        if (_fuaUnsupported)
        {
            WriteFully(offsetBytes, source);
            DataSync();
            return;
        }
        fixed (byte* start = source)
        {
            int done = 0;
            while (done < source.Length)
            {
                LibC.Iovec iov = new() { iov_base = start + done, iov_len = (nuint)(source.Length - done) };
                nint n = LibC.pwritev2(Fd, &iov, 1, offsetBytes + done, LibC.RWF_DSYNC);
                if (n < 0)
                {
                    int errno = Errors.LastErrno;
                    if (errno == LibC.EINTR)
                    {
                        continue;
                    }
                    if (done == 0 && (errno == LibC.EOPNOTSUPP || errno == LibC.ENOSYS))
                    {
                        _fuaUnsupported = true;
                        WriteFully(offsetBytes, source);
                        DataSync();
                        return;
                    }
                    throw Errors.FromErrno(errno, "pwritev2(RWF_DSYNC)", Path, offsetBytes, source.Length);
                }
                if (n == 0)
                {
                    throw Errors.FromErrno(LibC.ENOSPC, "pwritev2(RWF_DSYNC)", Path, offsetBytes, source.Length);
                }
                done += (int)n;
            }
        }
    }

    /// <summary>fdatasync: everything written before is durable when this returns. Never retried on failure.</summary>
    internal void DataSync()
    {
        if (LibC.fdatasync(Fd) != 0)
        {
            throw Errors.Last("fdatasync", Path);
        }
    }

    /// <summary>
    /// What identifies the file or device at <paramref name="path"/> (symlinks followed): the device number for a
    /// block or character device (two nodes of one disk are the same device), else filesystem and inode (hard
    /// links are the same file). Null when the path does not exist.
    /// </summary>
    internal static (ulong Device, ulong Inode)? Identity(string path)
    {
        if (Syscall.stat(path, out Stat stat) != 0)
        {
            return null;
        }
        FilePermissions type = stat.st_mode & FilePermissions.S_IFMT;
        return type is FilePermissions.S_IFBLK or FilePermissions.S_IFCHR ? (stat.st_rdev, 0) : (stat.st_dev, stat.st_ino);
    }

    /// <summary>What <paramref name="path"/> names (links followed); null when it does not exist.</summary>
    internal static FileKind? KindOf(string path)
    {
        if (Syscall.stat(path, out Stat stat) != 0)
        {
            return null;
        }
        return (stat.st_mode & FilePermissions.S_IFMT) switch
        {
            FilePermissions.S_IFREG => FileKind.Regular,
            FilePermissions.S_IFBLK => FileKind.BlockDevice,
            FilePermissions.S_IFCHR => FileKind.CharacterDevice,
            _ => FileKind.Other,
        };
    }

    /// <summary>True when <paramref name="path"/> itself (not a link target) is a unix-domain socket.</summary>
    internal static bool IsSocket(string path) =>
        Syscall.lstat(path, out Stat stat) == 0 && (stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFSOCK;

    /// <summary>An exclusive advisory lock (flock LOCK_EX|LOCK_NB); false when another open file description holds a lock.</summary>
    internal bool TryLockExclusive() => TryLock(LibC.LOCK_EX);

    /// <summary>A shared advisory lock (flock LOCK_SH|LOCK_NB): other lookers may hold one too, an exclusive holder may not.</summary>
    internal bool TryLockShared() => TryLock(LibC.LOCK_SH);

    private bool TryLock(int operation)
    {
        if (LibC.flock(Fd, operation | LibC.LOCK_NB) == 0)
        {
            return true;
        }
        if (Errors.LastErrno == LibC.EWOULDBLOCK)
        {
            return false;
        }
        throw Errors.Last("flock", Path);
    }

    /// <summary>fsync of a directory, so a file created or grown in it survives a crash.</summary>
    internal static void SyncDirectory(string directory)
    {
        int fd = LibC.open(directory, LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
        if (fd < 0)
        {
            throw Errors.Last("open", directory);
        }
        using SafeFileDescriptor handle = new(fd);
        if (LibC.fsync(handle) != 0)
        {
            throw Errors.Last("fsync", directory);
        }
    }

    internal static long PageSizeBytes => LibC.sysconf(LibC._SC_PAGESIZE);

    public void Dispose() => Fd.Dispose();
}
