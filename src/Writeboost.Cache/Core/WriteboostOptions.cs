using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Format;
namespace Writeboost.Cache.Core;

/// <summary>How to open a writeboost device, beyond its table.</summary>
public sealed record WriteboostOptions
{
    /// <summary>Format the cache even if it holds a cache already (dirty data included). <c>wb create --reformat</c>.</summary>
    public bool Reformat { get; init; }

    /// <summary>
    /// Format a cache device with no superblock (true, the library's default). The <c>wb</c> verbs other than
    /// <c>create</c> say false: a path with no cache on it is refused ("not a writeboost cache"), never formatted.
    /// </summary>
    public bool FormatUnformatted { get; init; } = true;

    /// <summary>
    /// What the backing device is, by <see cref="Devices.DeviceProbe.StableIdentity"/>, and where (for messages):
    /// recorded in the cache at format and checked at every open — a cache holding dirty data refuses another
    /// backing device. Null: not known (a device opened without a path), neither checked nor recorded.
    /// </summary>
    public BackingDeviceIdentity? BackingIdentity { get; init; }

    /// <summary>
    /// Open even though the backing device is not the one the cache's dirty data belongs to: the dirty blocks will
    /// be written onto it (<c>--overwrite-backing</c>; for a device that is the same one, moved or copied).
    /// </summary>
    public bool OverwriteBacking { get; init; }

    /// <summary>
    /// Mode 1: take the pmem region given even when it is not the cache's own current buffer (blank, an earlier one,
    /// another cache's): it is formatted, and what the cache's own buffer held is lost (<c>--discard-pmem</c>). Mode 0:
    /// open a cache whose pmem buffer may hold acknowledged writes, without it.
    /// </summary>
    public bool DiscardPmem { get; init; }

    /// <summary>RAM buffers in the pool (dm-writeboost: 8). A writer waits only when all of them are being flushed.</summary>
    public int BufferPoolSize { get; init; } = 8;

    /// <summary>The pool's size for a cache of <paramref name="geometry"/>: at least one buffer, at most one per segment.</summary>
    internal int PoolSizeFor(CacheGeometry geometry) => (int)Math.Clamp(BufferPoolSize, 1, geometry.NrSegments);

    /// <summary>Mode 1: the pmem buffers' layout for a cache of <paramref name="geometry"/> opened with these options.</summary>
    internal PmemLayout PmemLayoutFor(CacheGeometry geometry) => new(geometry.SegmentSizeOrder, PoolSizeFor(geometry), geometry.BlocksPerSegment);

    /// <summary>Dispose the backing and cache devices when the writeboost device is disposed.</summary>
    public bool OwnsDevices { get; init; }

    /// <summary>
    /// Recover and serve reads only: no flush, writeback or modulator thread (the crash harness opens thousands
    /// of recovered states a second just to read them).
    /// </summary>
    internal bool WithoutWorkers { get; init; }

    /// <summary>The answers at the device's decision points: the product's own unless the crash harness plants a seeded bug (internal).</summary>
    internal FaultHooks Faults { get; init; } = FaultHooks.None;

    /// <summary>How long writeback pauses after a failed batch before trying it again (the fault sweep shortens it).</summary>
    internal TimeSpan WritebackRetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The modulator's second: its tick, and the unit of <c>update_sb_record_interval</c> and
    /// <c>sync_data_interval</c>. The crash harness shortens it, so a workload of milliseconds sees the periodic
    /// work (background writeback, record updates, data syncs) that a real second would hide from it.
    /// </summary>
    internal TimeSpan ModulatorSecond { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// What the last recovery on this thread read (the pmem buffers' slots, the segments' data CRCs), reused where the
    /// media say a page is unchanged (<see cref="Recovery.RecoveryMemo"/>; the crash harness keeps one per checking
    /// thread). Null: read everything.
    /// </summary>
    internal Recovery.RecoveryMemo? RecoveryMemo { get; init; }

    /// <summary>Called at the windows where thread order matters (the crash harness perturbs them).</summary>
    internal ScheduleHooks Schedule { get; init; } = ScheduleHooks.None;

    /// <summary>
    /// Open even when recovery finds a durable segment (or pmem record) whose block list is damaged, so the blocks
    /// it held are unknown: the segment is given up (replaced by an empty one, durably) and those blocks read
    /// their older data. Without it such a cache is refused with an error naming the segment. <c>--accept-loss</c>.
    /// </summary>
    public bool AcceptDataLoss { get; init; }

    /// <summary>
    /// Look, never touch: recovery runs as usual, but everything it would write (zeroed headers, tombstones,
    /// segments rebuilt from pmem, the superblock flags) goes to an overlay in memory, and the device refuses
    /// writes. <c>wb status</c> opens this way, so looking at a device never changes it.
    /// </summary>
    public bool ReadOnly { get; init; }
}

/// <summary>A backing device's stable identity and the path it had (see <see cref="Devices.DeviceProbe.StableIdentity"/>).</summary>
public sealed record BackingDeviceIdentity(string Identity, string Path);
