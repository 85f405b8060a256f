using Writeboost.Cache.Core;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Cache.Table;

/// <summary>Opens the devices a table names and the writeboost device on them.</summary>
public static class TableDevices
{
    /// <summary>
    /// Opens backing, cache and pmem (regular files or devices) with a lock each — exclusive, so a second process
    /// opening any of them gets a clear error naming the holder, not shared corruption; shared for a read-only look,
    /// which a running user keeps out — then the writeboost device, which owns them from then on. The backing
    /// device's stable identity goes with the options: the cache records it and refuses another device for its
    /// dirty data.
    /// </summary>
    /// <param name="direct">O_DIRECT on both devices where the filesystem allows it.</param>
    /// <param name="options">With <see cref="WriteboostOptions.ReadOnly"/>, backing and cache are opened read-only (and the
    /// pmem region too on the block backend; a dax mapping is never stored to: the device puts an overlay over it).</param>
    public static WriteboostDevice Open(DeviceTable table, WriteboostOptions? options = null, bool direct = false)
    {
        ArgumentNullException.ThrowIfNull(table);
        options ??= new WriteboostOptions();
        bool readOnly = options.ReadOnly;
        DeviceLock deviceLock = readOnly ? DeviceLock.Shared : DeviceLock.Exclusive;
        FileBlockDeviceOptions deviceOptions = new() { Lock = deviceLock, Direct = direct, ReadOnly = readOnly };
        FileBlockDevice backing = FileBlockDevice.Open(table.BackingPath, deviceOptions);
        FileBlockDevice? cache = null;
        PmemRegion? pmem = null;
        try
        {
            cache = FileBlockDevice.Open(table.CachePath, deviceOptions);
            if (table.Mode == CacheMode.Persistent)
            {
                pmem = Pmem.Pmem.Alloc(table.PmemPath!, 0, -1, table.PmemBackend, deviceLock: deviceLock, readOnly: readOnly);
            }
            BackingDeviceIdentity identity = new(DeviceProbe.StableIdentity(table.BackingPath), Path.GetFullPath(table.BackingPath));
            return WriteboostDevice.Open(backing, cache, table.CreateTunables(), options with { OwnsDevices = true, BackingIdentity = identity }, pmem);
        }
        catch
        {
            pmem?.Dispose();
            cache?.Dispose();
            backing.Dispose();
            throw;
        }
    }
}
