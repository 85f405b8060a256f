using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Writeboost.Native;

/// <summary>
/// glibc entry points, with their C names so the man pages match. Every call sets errno; callers check the
/// return value once and turn a failure into a <see cref="NativeIOException"/> through <see cref="Errors"/>.
/// Why not the BCL: FileOptions silently drops a cast O_DIRECT, FileStream.Length is 0 for a block device,
/// RandomAccess has no FUA write (pwritev2 RWF_DSYNC) and there is no managed msync or MAP_SYNC.
/// </summary>
[SupportedOSPlatform("linux")]
internal static unsafe partial class LibC
{
    private const string Lib = "libc.so.6";

    // fcntl.h (x86_64 / aarch64 generic values)
    internal const int O_RDONLY = 0x0;
    internal const int O_RDWR = 0x2;
    internal const int O_CREAT = 0x40;
    internal const int O_EXCL = 0x80;
    internal const int O_DIRECT = 0x4000;
    internal const int O_CLOEXEC = 0x80000;

    // errno.h
    internal const int EINTR = 4;
    internal const int EIO = 5;
    internal const int EINVAL = 22;
    internal const int ENOSPC = 28;
    internal const int ENOSYS = 38;
    internal const int EOPNOTSUPP = 95;
    internal const int EWOULDBLOCK = 11;

    // linux/fs.h ioctls
    internal const ulong BLKSSZGET = 0x1268;          // logical sector size, int
    internal const ulong BLKGETSIZE64 = 0x80081272;   // device size in bytes, u64

    // sys/mman.h
    internal const int PROT_READ = 0x1;
    internal const int PROT_WRITE = 0x2;
    internal const int MAP_SHARED = 0x01;
    internal const int MAP_SHARED_VALIDATE = 0x03;
    internal const int MAP_SYNC = 0x80000;
    internal const int MS_SYNC = 0x4;
    internal static readonly nint MAP_FAILED = -1;

    // uio.h: pwritev2 flags
    internal const int RWF_DSYNC = 0x2;

    // sys/file.h
    internal const int LOCK_SH = 1;
    internal const int LOCK_EX = 2;
    internal const int LOCK_NB = 4;

    // fcntl.h / linux/stat.h: statx
    internal const int AT_FDCWD = -100;
    internal const uint STATX_BASIC_STATS = 0x7ff;
    internal const uint STATX_BTIME = 0x800;
    internal const int StatxBufferBytes = 256;
    internal const int StatxInoOffset = 32;
    internal const int StatxModeOffset = 28;
    internal const int StatxMaskOffset = 0;
    internal const int StatxBtimeOffset = 80;
    internal const int StatxRdevMajorOffset = 128;
    internal const int StatxDevMajorOffset = 136;

    [StructLayout(LayoutKind.Sequential)]
    internal struct Iovec
    {
        public void* iov_base;
        public nuint iov_len;
    }

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int open(string pathname, int flags, uint mode);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    internal static partial int close(int fd);

    [LibraryImport(Lib, EntryPoint = "pread", SetLastError = true)]
    internal static partial nint pread(SafeFileDescriptor fd, byte* buf, nuint count, long offset);

    [LibraryImport(Lib, EntryPoint = "pwrite", SetLastError = true)]
    internal static partial nint pwrite(SafeFileDescriptor fd, byte* buf, nuint count, long offset);

    [LibraryImport(Lib, EntryPoint = "pwritev2", SetLastError = true)]
    internal static partial nint pwritev2(SafeFileDescriptor fd, Iovec* iov, int iovcnt, long offset, int flags);

    [LibraryImport(Lib, EntryPoint = "fdatasync", SetLastError = true)]
    internal static partial int fdatasync(SafeFileDescriptor fd);

    [LibraryImport(Lib, EntryPoint = "fsync", SetLastError = true)]
    internal static partial int fsync(SafeFileDescriptor fd);

    [LibraryImport(Lib, EntryPoint = "flock", SetLastError = true)]
    internal static partial int flock(SafeFileDescriptor fd, int operation);

    // ioctl is variadic; on the Linux ABIs we target a pointer third argument is passed like a fixed one.
    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int ioctl(SafeFileDescriptor fd, nuint request, void* argp);

    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    internal static partial nint mmap(nint addr, nuint length, int prot, int flags, SafeFileDescriptor fd, long offset);

    [LibraryImport(Lib, EntryPoint = "munmap", SetLastError = true)]
    internal static partial int munmap(nint addr, nuint length);

    [LibraryImport(Lib, EntryPoint = "msync", SetLastError = true)]
    internal static partial int msync(nint addr, nuint length, int flags);

    [LibraryImport(Lib, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int statx(int dirfd, string pathname, int flags, uint mask, byte* statxbuf);

    [LibraryImport(Lib, EntryPoint = "kill", SetLastError = true)]
    internal static partial int kill(int pid, int sig);

    internal const int SIGTERM = 15;

    [LibraryImport(Lib, EntryPoint = "geteuid")]
    internal static partial uint geteuid();

    [LibraryImport(Lib, EntryPoint = "sysconf")]
    internal static partial long sysconf(int name);

    internal const int _SC_PAGESIZE = 30;
}
