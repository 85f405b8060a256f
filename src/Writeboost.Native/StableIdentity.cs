using System.Globalization;
using System.Runtime.Versioning;

namespace Writeboost.Native;

/// <summary>
/// A name for the file or disk behind a path that stays the same across reboots and renames, and differs for
/// another file or disk of the same size. Made of what the kernel knows, never of the content:
/// <list type="bullet">
/// <item>a regular file: its filesystem's device number, its inode and its birth time (statx) — a file deleted and
/// recreated gets another birth time even if the inode number comes back;</item>
/// <item>a loop device: the same for the file behind it, and its offset;</item>
/// <item>a device-mapper or md device: its uuid (dm: its name when it has none);</item>
/// <item>a disk or a partition: the disk's world-wide id or serial number (sysfs), and the partition's number;</item>
/// <item>any other block device: its device number, which a reboot may give to another disk.</item>
/// </list>
/// What it cannot tell apart: content replaced in place (the same file or disk, rewritten by someone else), and on
/// a disk without a serial, another disk enumerated under the same number.
/// </summary>
[SupportedOSPlatform("linux")]
internal static unsafe class StableIdentity
{
    private readonly record struct StatxResult(uint Mode, ulong Inode, long BirthSeconds, uint BirthNanoseconds, bool HasBirth, uint RdevMajor, uint RdevMinor, uint DevMajor, uint DevMinor);

    /// <summary>The identity of <paramref name="path"/> (symlinks followed). Throws <see cref="NativeIOException"/> when it cannot be stat'ed.</summary>
    internal static string Of(string path)
    {
        StatxResult stat = Statx(path);
        return (stat.Mode & 0xF000) switch
        {
            0x8000 => FileIdentity(stat),
            0x6000 => BlockIdentity(stat.RdevMajor, stat.RdevMinor),
            0x2000 => string.Create(CultureInfo.InvariantCulture, $"character device {stat.RdevMajor}:{stat.RdevMinor}{SysfsSuffix($"/sys/dev/char/{stat.RdevMajor}:{stat.RdevMinor}")}"),
            _ => string.Create(CultureInfo.InvariantCulture, $"file {stat.DevMajor}:{stat.DevMinor} inode {stat.Inode}"),
        };
    }

    private static string FileIdentity(StatxResult stat) =>
        string.Create(CultureInfo.InvariantCulture,
            $"file on {stat.DevMajor}:{stat.DevMinor} inode {stat.Inode}{(stat.HasBirth ? $" born {stat.BirthSeconds}.{stat.BirthNanoseconds:D9}" : "")}");

    private static string BlockIdentity(uint major, uint minor)
    {
        string sys = $"/sys/dev/block/{major}:{minor}";
        string? loopFile = ReadSysfs($"{sys}/loop/backing_file");
        if (loopFile is not null)
        {
            string offset = ReadSysfs($"{sys}/loop/offset") ?? "0";
            string behind = File.Exists(loopFile) ? FileIdentity(Statx(loopFile)) : $"file {loopFile} (gone)";
            return $"loop device over {behind} at offset {offset}";
        }
        if (ReadSysfs($"{sys}/dm/uuid") is { Length: > 0 } dmUuid)
        {
            return $"dm device uuid {dmUuid}";
        }
        if (ReadSysfs($"{sys}/dm/name") is { Length: > 0 } dmName)
        {
            return $"dm device named {dmName}";
        }
        if (ReadSysfs($"{sys}/md/uuid") is { Length: > 0 } mdUuid)
        {
            return $"md device uuid {mdUuid}";
        }
        if (ReadSysfs($"{sys}/partition") is { } partition)
        {
            // The partition's own directory sits inside its disk's.
            string? disk = Directory.Exists(sys) ? Directory.GetParent(new DirectoryInfo(sys).ResolveLinkTarget(true)?.FullName ?? sys)?.FullName : null;
            string? diskId = disk is null ? null : DiskId(disk);
            string start = ReadSysfs($"{sys}/start") ?? "?";
            return diskId is null
                ? string.Create(CultureInfo.InvariantCulture, $"block device {major}:{minor}")
                : $"partition {partition} (start {start}) of disk {diskId}";
        }
        return DiskId(sys) is { } id ? $"disk {id}" : string.Create(CultureInfo.InvariantCulture, $"block device {major}:{minor}");
    }

    /// <summary>The disk's world-wide id or serial, from sysfs; null when it has neither.</summary>
    private static string? DiskId(string sysDir)
    {
        foreach (string name in new[] { "wwid", "device/wwid", "serial", "device/serial" })
        {
            if (ReadSysfs($"{sysDir}/{name}") is { Length: > 0 } value)
            {
                return $"{(name.EndsWith("wwid", StringComparison.Ordinal) ? "wwid" : "serial")} {value}";
            }
        }
        return null;
    }

    private static string SysfsSuffix(string sysDir) => DiskId(sysDir) is { } id ? $" ({id})" : "";

    private static string? ReadSysfs(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static StatxResult Statx(string path)
    {
        byte* buffer = stackalloc byte[LibC.StatxBufferBytes];
        new Span<byte>(buffer, LibC.StatxBufferBytes).Clear();
        if (LibC.statx(LibC.AT_FDCWD, path, 0, LibC.STATX_BASIC_STATS | LibC.STATX_BTIME, buffer) != 0)
        {
            throw Errors.Last("statx", path);
        }
        ReadOnlySpan<byte> b = new(buffer, LibC.StatxBufferBytes);
        uint mask = BitConverter.ToUInt32(b[LibC.StatxMaskOffset..]);
        return new StatxResult(
            BitConverter.ToUInt16(b[LibC.StatxModeOffset..]),
            BitConverter.ToUInt64(b[LibC.StatxInoOffset..]),
            BitConverter.ToInt64(b[LibC.StatxBtimeOffset..]),
            BitConverter.ToUInt32(b[(LibC.StatxBtimeOffset + 8)..]),
            (mask & LibC.STATX_BTIME) != 0,
            BitConverter.ToUInt32(b[LibC.StatxRdevMajorOffset..]),
            BitConverter.ToUInt32(b[(LibC.StatxRdevMajorOffset + 4)..]),
            BitConverter.ToUInt32(b[LibC.StatxDevMajorOffset..]),
            BitConverter.ToUInt32(b[(LibC.StatxDevMajorOffset + 4)..]));
    }
}
