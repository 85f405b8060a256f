using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Ring;
using Writeboost.Cache.Table;
using Writeboost.Devices;

namespace Writeboost.Cache.Workers;

/// <summary>
/// What every worker of a device is built from: its lock and life, its ring, its geometry and cache device, its
/// counters and tunables, and the options it was opened with (the fault and schedule hooks among them).
/// </summary>
internal sealed record DeviceParts(DeviceMonitor Monitor, SegmentRing Ring, CacheGeometry Geometry, IBlockDevice Cache,
    WriteboostCounters Counters, Tunables Tunables, WriteboostOptions Options, string DeviceName);

/// <summary>Told by the flush worker, with the lock held, after each segment is written: writeback may be waiting for one.</summary>
internal interface ISegmentsWritten
{
    void SegmentWrittenLocked();
}

/// <summary>How writeback gets segments made durable on the cache device.</summary>
internal interface IDurability
{
    /// <summary>With the lock held: asks for a cache flush that makes every segment up to <paramref name="id"/> durable (the caller waits on the ring).</summary>
    void RequestDurableLocked(ulong id);

    /// <summary>Without the lock: returns once segment <paramref name="id"/> is durable, sealing it first if it is the open one.</summary>
    void MakeDurable(ulong id);
}
