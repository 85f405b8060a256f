using Writeboost.Cache.Core;
using Writeboost.Devices;

namespace Writeboost.Cache.Table;

/// <summary>Opens the devices a table names and the writeboost device on them.</summary>
public static class TableDevices
{
    /// <summary>
    /// Opens backing and cache (regular files or block devices) with an exclusive lock each — a second process
    /// opening the same cache gets a clear error, not shared corruption — then the writeboost device, which
    /// owns them from then on.
    /// </summary>
    /// <param name="direct">O_DIRECT on both devices where the filesystem allows it.</param>
    public static WriteboostDevice Open(DeviceTable table, WriteboostOptions? options = null, bool direct = false)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (table.Mode == CacheMode.Persistent)
        {
            throw new TableException("mode 1 (a buffer in persistent memory) is not available in this build yet; use mode 0");
        }
        FileBlockDeviceOptions deviceOptions = new() { Exclusive = true, Direct = direct };
        FileBlockDevice backing = FileBlockDevice.Open(table.BackingPath, deviceOptions);
        FileBlockDevice? cache = null;
        try
        {
            cache = FileBlockDevice.Open(table.CachePath, deviceOptions);
            return WriteboostDevice.Open(backing, cache, table.CreateTunables(), (options ?? new WriteboostOptions()) with { OwnsDevices = true });
        }
        catch
        {
            cache?.Dispose();
            backing.Dispose();
            throw;
        }
    }
}
