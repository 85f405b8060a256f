using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Writeboost.Native;

/// <summary>
/// util-linux's libblkid (Debian package <c>libblkid1</c>, part of every Debian system; soname
/// <c>libblkid.so.1</c>), the prober mkfs and wipefs use: which filesystem, partition table, LVM physical
/// volume, RAID member or swap a device or image holds. Low-level probing of the path itself (what
/// <c>blkid -p</c> does), never its cache.
/// </summary>
[SupportedOSPlatform("linux")]
internal static unsafe partial class LibBlkid
{
    private const string Lib = "libblkid.so.1";

    // blkid.h
    private const int BLKID_SUBLKS_LABEL = 1 << 1;
    private const int BLKID_SUBLKS_UUID = 1 << 3;
    private const int BLKID_SUBLKS_TYPE = 1 << 5;
    private const int BLKID_SUBLKS_USAGE = 1 << 7;
    private const int BLKID_SUBLKS_VERSION = 1 << 8;

    [LibraryImport(Lib, EntryPoint = "blkid_new_probe_from_filename", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint blkid_new_probe_from_filename(string filename);

    [LibraryImport(Lib, EntryPoint = "blkid_free_probe")]
    private static partial void blkid_free_probe(nint pr);

    [LibraryImport(Lib, EntryPoint = "blkid_probe_enable_superblocks")]
    private static partial int blkid_probe_enable_superblocks(nint pr, int enable);

    [LibraryImport(Lib, EntryPoint = "blkid_probe_set_superblocks_flags")]
    private static partial int blkid_probe_set_superblocks_flags(nint pr, int flags);

    [LibraryImport(Lib, EntryPoint = "blkid_probe_enable_partitions")]
    private static partial int blkid_probe_enable_partitions(nint pr, int enable);

    [LibraryImport(Lib, EntryPoint = "blkid_do_safeprobe")]
    private static partial int blkid_do_safeprobe(nint pr);

    [LibraryImport(Lib, EntryPoint = "blkid_probe_lookup_value", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int blkid_probe_lookup_value(nint pr, string name, out nint data, out nuint len);

    /// <summary>What a probe found: a signature's type and usage ("filesystem", "raid", "crypto", "other"), or a partition table.</summary>
    internal sealed record Signature(string? Type, string? Usage, string? Label, string? PartitionTable, bool Ambivalent);

    /// <summary>
    /// Probes <paramref name="path"/> for superblocks and partition tables. Null when it holds none of those
    /// libblkid knows. Throws <see cref="DllNotFoundException"/> when libblkid is missing and
    /// <see cref="NativeIOException"/> when the path cannot be opened.
    /// </summary>
    internal static Signature? Probe(string path)
    {
        nint probe = blkid_new_probe_from_filename(path);
        if (probe == 0)
        {
            throw Errors.Last("blkid_new_probe_from_filename", path);
        }
        try
        {
            if (blkid_probe_enable_superblocks(probe, 1) != 0
                || blkid_probe_set_superblocks_flags(probe, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE | BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID | BLKID_SUBLKS_VERSION) != 0
                || blkid_probe_enable_partitions(probe, 1) != 0)
            {
                throw new IOException($"libblkid: could not set up a probe of {path}");
            }
            int result = blkid_do_safeprobe(probe);
            // 0: found, 1: nothing, -2: more than one signature (ambivalent), -1: error
            if (result == 1)
            {
                return null;
            }
            if (result == -1)
            {
                throw Errors.Last("blkid_do_safeprobe", path);
            }
            return new Signature(Lookup(probe, "TYPE"), Lookup(probe, "USAGE"), Lookup(probe, "LABEL"), Lookup(probe, "PTTYPE"), result == -2);
        }
        finally
        {
            blkid_free_probe(probe);
        }
    }

    private static string? Lookup(nint probe, string name) =>
        blkid_probe_lookup_value(probe, name, out nint data, out nuint length) == 0 && data != 0 && length > 0
            ? Marshal.PtrToStringUTF8(data, (int)length - 1) // the length counts the terminating NUL
            : null;
}
