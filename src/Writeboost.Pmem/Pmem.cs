using System.Runtime.Versioning;
using Writeboost.Devices;
using Writeboost.Native;

namespace Writeboost.Pmem;

/// <summary>
/// The RFC's allocation interface: <c>Alloc(device, start, length)</c> hands out a byte-addressed region of a
/// pmem device. Free it with <see cref="PmemRegion.Free"/> (or Dispose).
/// </summary>
[SupportedOSPlatform("linux")]
public static class Pmem
{
    /// <summary>A region of a block device, byte-addressed by read-modify-write (the block backend).</summary>
    public static BlockPmemRegion Alloc(IBlockDevice device, long startBytes, long lengthBytes, bool ownsDevice = false)
    {
        ArgumentNullException.ThrowIfNull(device);
        DeviceRange.CheckInside(device.Name, device.SizeBytes, startBytes, lengthBytes, "alloc");
        return new BlockPmemRegion(device, startBytes, lengthBytes, ownsDevice);
    }

    /// <summary>
    /// A region of the file or device at <paramref name="path"/>. With <see cref="PmemBackend.Auto"/> the backend is
    /// chosen from what the path is (<see cref="ChooseBackend"/>). A <paramref name="lengthBytes"/> of -1 means
    /// "to the end of the device".
    /// </summary>
    /// <exception cref="FileNotFoundException">the path does not exist.</exception>
    /// <exception cref="ArgumentOutOfRangeException">the range does not fit in the device.</exception>
    /// <exception cref="DllNotFoundException">the dax backend was chosen and libpmem is not installed.</exception>
    /// <param name="deviceLock">The flock to take: exclusive for a user of the region (a second process gets a clear
    /// error naming the holder), shared for one that only looks.</param>
    /// <param name="readOnly">Block backend only: open read-only, for inspection.</param>
    public static PmemRegion Alloc(string path, long startBytes, long lengthBytes, PmemBackend backend = PmemBackend.Auto, bool direct = false, DeviceLock deviceLock = DeviceLock.None, bool readOnly = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"pmem device or file {path} does not exist", path);
        }
        if (backend == PmemBackend.Auto || lengthBytes == -1)
        {
            (PmemBackend chosen, long sizeBytes) = Probe(path);
            backend = backend == PmemBackend.Auto ? chosen : backend;
            lengthBytes = lengthBytes == -1 ? Math.Max(0, sizeBytes - startBytes) : lengthBytes;
        }
        if (backend == PmemBackend.Dax)
        {
            return DaxPmemRegion.Open(path, startBytes, lengthBytes, deviceLock);
        }
        FileBlockDevice device = FileBlockDevice.Open(path, new FileBlockDeviceOptions { Direct = direct, Lock = deviceLock, ReadOnly = readOnly });
        try
        {
            return Alloc(device, startBytes, lengthBytes, ownsDevice: true);
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The backend a path gets by default: a character device (device dax) and a file on a DAX or memory
    /// filesystem (<c>-o dax</c>, tmpfs such as /dev/shm) are mapped (dax); a block device (/dev/pmem0, a loop
    /// device) and a file on any other filesystem are used by read-modify-write (block).
    /// </summary>
    public static PmemBackend ChooseBackend(string path) => Probe(path).Backend;

    /// <summary>The size of a file, block device or device-dax character device, in bytes.</summary>
    public static long SizeOf(string path) => Probe(path).SizeBytes;

    /// <summary>The default backend and the size of <paramref name="path"/>, from one read-only open.</summary>
    private static (PmemBackend Backend, long SizeBytes) Probe(string path)
    {
        using PosixFile file = PosixFile.Open(path, tryDirect: false, readOnly: true);
        FileKind kind = file.Kind;
        if (kind == FileKind.CharacterDevice)
        {
            (uint major, uint minor) = file.DeviceNumber;
            return (PmemBackend.Dax, DeviceDaxInfo.Read(path, major, minor).SizeBytes);
        }
        PmemBackend backend = kind == FileKind.BlockDevice ? PmemBackend.Block
            : Mounts.IsDaxOrMemory(path) ? PmemBackend.Dax : PmemBackend.Block;
        return (backend, file.SizeBytes);
    }

    /// <summary>Null when libpmem (and so the dax backend's cache-line path) can be used; otherwise why not.</summary>
    public static string? LibPmemUnavailableReason => LibPmem.UnavailableReason;
}

/// <summary>Which filesystem a path lives on, from /proc/self/mountinfo.</summary>
internal static class Mounts
{
    internal static bool IsDaxOrMemory(string path)
    {
        (string fsType, string superOptions)? mount = Find(path);
        if (mount is null)
        {
            return false;
        }
        (string fsType, string options) = mount.Value;
        bool dax = options.Split(',').Any(o => o == "dax" || o == "dax=always");
        return dax || fsType is "tmpfs" or "ramfs";
    }

    /// <summary>The filesystem type and super options of the mount holding <paramref name="path"/>.</summary>
    internal static (string FsType, string SuperOptions)? Find(string path)
    {
        string full = Path.GetFullPath(path);
        try
        {
            full = new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full;
        }
        catch (IOException)
        {
            // Keep the unresolved path: the longest-prefix match below still works for plain files.
        }
        (string, string)? best = null;
        int bestLength = -1;
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            string[] fields = line.Split(' ');
            int dash = Array.IndexOf(fields, "-");
            if (fields.Length < 5 || dash < 0 || dash + 3 >= fields.Length)
            {
                continue;
            }
            string mountPoint = fields[4].Replace("\\040", " ", StringComparison.Ordinal);
            bool contains = mountPoint == "/" || full == mountPoint || full.StartsWith(mountPoint + "/", StringComparison.Ordinal);
            if (contains && mountPoint.Length > bestLength)
            {
                bestLength = mountPoint.Length;
                best = (fields[dash + 1], fields[dash + 3]);
            }
        }
        return best;
    }
}
