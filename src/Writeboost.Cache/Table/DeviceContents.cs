using System.Buffers.Binary;
using Writeboost.Cache.Format;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Devices;

namespace Writeboost.Cache.Table;

/// <summary>
/// What a path holds, asked before a tool formats or overwrites it, as mkfs asks: a writeboost cache or pmem
/// buffer (our own magics), or whatever libblkid recognises (a filesystem, a partition table, an LVM physical
/// volume, a RAID member, swap). Reads only; takes no lock (the tool that writes takes its own afterwards).
/// </summary>
public static class DeviceContents
{
    /// <summary>What <paramref name="path"/> holds, in words ("a writeboost cache (uuid …)", "an ext4 filesystem"), or null when nothing is recognised.</summary>
    public static string? Describe(string path) =>
        DescribeWriteboost(path) ?? (IsCharacterDevice(path) ? null : DeviceProbe.KnownSignature(path));

    /// <summary>A writeboost cache or pmem buffer at the start of <paramref name="path"/>, in words; null when neither.</summary>
    public static string? DescribeWriteboost(string path)
    {
        byte[] head = new byte[Units.BlockBytes];
        if (IsCharacterDevice(path))
        {
            // Device dax: readable only through a mapping.
            using Pmem.PmemRegion region = Pmem.Pmem.Alloc(path, 0, head.Length, Pmem.PmemBackend.Dax);
            region.Read(0, head);
        }
        else
        {
            using FileBlockDevice device = FileBlockDevice.Open(path, new FileBlockDeviceOptions { ReadOnly = true });
            if (device.SizeBytes < head.Length)
            {
                return null;
            }
            device.Read(0, head);
        }
        SuperblockReadResult superblock = SuperblockHeaderOnDisk.Read(head);
        switch (superblock.State)
        {
            case SuperblockState.Formatted:
                return $"a writeboost cache (uuid {superblock.Header!.CacheUuid}{((superblock.Header.Flags & SuperblockHeaderOnDisk.FlagPmemBufferLive) != 0 ? ", its pmem buffer live" : "")})";
            case SuperblockState.KernelFormat:
                return "a writeboost cache made by the kernel module";
            case SuperblockState.CorruptExtension or SuperblockState.CorruptMagic:
                return "a damaged writeboost cache superblock";
            case SuperblockState.FormatInterrupted:
                return "a writeboost cache whose format was interrupted";
        }
        if (BinaryPrimitives.ReadUInt64LittleEndian(head) == PmemLayout.Magic)
        {
            Guid cache = new(head.AsSpan(24, 16));
            return $"a writeboost pmem buffer (of cache {cache})";
        }
        return null;
    }

    private static bool IsCharacterDevice(string path) => DeviceProbe.IsCharacterDevice(path);
}
