using Writeboost.Cache.Core;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Cache.Table;

/// <summary>Opens the devices a table names and the writeboost device on them.</summary>
public static class TableDevices
{
    /// <summary>
    /// Opens backing, cache and pmem (regular files or devices) with an exclusive lock each — a second process
    /// opening the same cache gets a clear error, not shared corruption — then the writeboost device, which
    /// owns them from then on.
    /// </summary>
    /// <param name="direct">O_DIRECT on both devices where the filesystem allows it.</param>
    /// <param name="options">With <see cref="WriteboostOptions.ReadOnly"/>, backing and cache are opened read-only (and the
    /// pmem region too on the block backend; a dax mapping is never stored to: the device puts an overlay over it).</param>
    public static WriteboostDevice Open(DeviceTable table, WriteboostOptions? options = null, bool direct = false)
    {
        ArgumentNullException.ThrowIfNull(table);
        bool readOnly = options?.ReadOnly ?? false;
        FileBlockDeviceOptions deviceOptions = new() { Exclusive = true, Direct = direct, ReadOnly = readOnly };
        FileBlockDevice backing = FileBlockDevice.Open(table.BackingPath, deviceOptions);
        FileBlockDevice? cache = null;
        PmemRegion? pmem = null;
        try
        {
            cache = FileBlockDevice.Open(table.CachePath, deviceOptions);
            if (table.Mode == CacheMode.Persistent)
            {
                pmem = Pmem.Pmem.Alloc(table.PmemPath!, 0, -1, table.PmemBackend, exclusive: true, readOnly: readOnly);
            }
            WriteboostDevice device = WriteboostDevice.Open(backing, cache, table.CreateTunables(), (options ?? new WriteboostOptions()) with { OwnsDevices = true }, pmem);
            return device;
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
