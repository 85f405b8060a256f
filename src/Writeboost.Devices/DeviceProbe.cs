using System.Runtime.Versioning;
using Writeboost.Native;

namespace Writeboost.Devices;

/// <summary>
/// What a path holds and who uses it, asked before a tool writes to it: the identity of the file or disk behind it
/// (stable across reboots and renames), the signatures libblkid finds (a filesystem, a partition table, LVM, RAID),
/// and the processes holding it locked.
/// </summary>
[SupportedOSPlatform("linux")]
public static class DeviceProbe
{
    /// <summary>
    /// A name for the file or disk behind <paramref name="path"/> that another file or disk of the same size does
    /// not share: filesystem, inode and birth time of a file (of the file behind a loop device); uuid of a dm or md
    /// device; world-wide id or serial of a disk (and the partition's number). It cannot tell content replaced in
    /// place, nor, on a disk with no serial, another disk given the same device number after a reboot.
    /// </summary>
    public static string StableIdentity(string path) => Native.StableIdentity.Of(path);

    /// <summary>
    /// What libblkid finds on <paramref name="path"/> — "an ext4 filesystem (label 'data')", "a gpt partition
    /// table", "an LVM2_member (raid) signature" — or null when it finds nothing it knows.
    /// </summary>
    /// <exception cref="DllNotFoundException">libblkid.so.1 is not installed.</exception>
    public static string? KnownSignature(string path)
    {
        LibBlkid.Signature? found = LibBlkid.Probe(path);
        if (found is null)
        {
            return null;
        }
        List<string> parts = [];
        if (found.Type is not null)
        {
            string what = found.Usage switch
            {
                "filesystem" => $"{Article(found.Type)} {found.Type} filesystem",
                null => $"{Article(found.Type)} {found.Type} signature",
                _ => $"{Article(found.Type)} {found.Type} ({found.Usage}) signature",
            };
            parts.Add(found.Label is { Length: > 0 } label ? $"{what} (label '{label}')" : what);
        }
        if (found.PartitionTable is not null)
        {
            parts.Add($"{Article(found.PartitionTable)} {found.PartitionTable} partition table");
        }
        if (parts.Count == 0)
        {
            parts.Add(found.Ambivalent ? "more than one signature" : "an unnamed signature");
        }
        return string.Join(" and ", parts) + (found.Ambivalent ? " (libblkid finds more than one signature)" : "");
    }

    /// <summary>True when <paramref name="path"/> (links followed) is a character device, such as device dax (/dev/dax0.0).</summary>
    public static bool IsCharacterDevice(string path) => PosixFile.KindOf(path) == FileKind.CharacterDevice;

    /// <summary>The process's effective user id (0 for root): who may reach a control socket.</summary>
    public static uint EffectiveUserId => LibC.geteuid();

    /// <summary>"process 1234 (wb serve ...), exclusively" for each process holding a flock on the path (from /proc/locks).</summary>
    public static IReadOnlyList<string> LockHolders(string path) => Native.LockHolders.Describe(path);

    /// <summary>The one line a tool prints when <paramref name="path"/> is locked by someone else.</summary>
    public static string InUseMessage(string path)
    {
        IReadOnlyList<string> holders = LockHolders(path);
        return holders.Count == 0
            ? $"{path} is in use: another process holds it locked"
            : $"{path} is in use by {string.Join("; ", holders)}";
    }

    private static string Article(string word) => word.Length > 0 && "aeiouAEIOU".Contains(word[0], StringComparison.Ordinal) ? "an" : "a";
}
