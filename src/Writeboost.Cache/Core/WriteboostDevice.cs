using Writeboost.Cache.Format;
using Writeboost.Cache.Index;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Recovery;
using Writeboost.Cache.Ring;
using Writeboost.Cache.Table;
using Writeboost.Cache.Workers;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Cache.Core;

/// <summary>
/// A user-space dm-writeboost: a log-structured write-back cache of a backing store on a cache device.
/// Writes gather in a RAM buffer of one segment (metadata block + up to 127 or 255 data blocks); a full
/// buffer is sealed into a log segment in dm-writeboost's on-disk format and written to the cache device by
/// the flush worker; the writeback worker later copies dirty blocks to the backing store. The device is itself
/// an <see cref="IBlockDevice"/> of 512-byte sectors the size of the backing store (rounded down to 4 KiB).
///
/// <para>The parts, each its own type: the block map and metablocks (<see cref="CacheIndex"/>), the ring of
/// segment slots and where each segment id stands (<see cref="SegmentRing"/>), the RAM buffers
/// (<see cref="BufferPool"/>) and what keeps them durable (<see cref="BufferMirror"/>: nothing in mode 0, <see cref="PmemMirror"/> in mode 1), the workers
/// (<see cref="FlushWorker"/>, <see cref="WritebackWorker"/>, <see cref="Modulator"/>), the superblock record
/// (<see cref="SuperblockRecordWriter"/>), and the open's recovery (<see cref="RingWalk"/>, <see cref="LogRecovery"/>).
/// The head of the log (<see cref="LogHead"/>) acquires, fills and seals the open segment. The device itself is the
/// front: open and close, the write and read paths, barriers, status and messages.</para>
///
/// <para>Concurrency: one monitor (<see cref="DeviceMonitor"/>, <c>_monitor</c> here) guards the index, the ring,
/// the buffers and the open segment; writers and workers waiting for the ring to move sleep on it.
/// No device I/O happens under it (see <see cref="LogHead"/> and <see cref="ReadPlanner"/> for the two waits that let it go). Mode 1
/// reserves a write's slot under it and copies and persists the slot into pmem outside it (writers persist in
/// parallel; the buffer stays pinned until they are done, see <see cref="PmemMirror"/> and <see cref="BufferPool"/>).</para>
/// </summary>
public sealed partial class WriteboostDevice : IBlockDevice
{
    private readonly DeviceMonitor _monitor;
    private readonly IBlockDevice _backing;
    private readonly BackingStore _backingStore;
    private readonly IBlockDevice _cache;
    private readonly WriteboostOptions _options;
    private readonly BufferPool _buffers;
    private readonly WriteAroundPath? _writeAround; // write_around_mode, a static tunable: read once, not per request
    private readonly PmemRegion? _pmemRegion;
    // The open segment: acquired, placed into, sealed (and the mirror that keeps the buffers durable).
    private readonly LogHead _head;
    // The read path's decisions under the lock, and the read cache's cells.
    private readonly ReadPlanner _reads;
    private readonly HitStats _stats = new();
    private readonly CacheSuperblock _superblock;

    // The metablocks and the block map (guarded by the lock).
    private readonly CacheIndex _cacheIndex;
    // Blocks whose newest durable copy recovery found lost: reads of those sectors fail (see PoisonSet).
    private readonly PoisonSet _poison = new();

    // The ring's slots and the segment ids' stages (guarded by the lock).
    private readonly SegmentRing _ring;

    private readonly DeviceWorkers _workers;
    private readonly WritebackWorker _writeback;
    private readonly SuperblockRecordWriter _record;
    private readonly DeviceParts _parts;
    private bool _disposed;

    private WriteboostDevice(IBlockDevice backing, IBlockDevice cache, CacheGeometry geometry, Tunables tunables, WriteboostOptions options, SuperblockHeaderOnDisk superblock, PmemRegion? pmem)
    {
        Guid cacheUuid = superblock.CacheUuid;
        _monitor = new DeviceMonitor(options.Schedule);
        _superblock = new CacheSuperblock(cache, superblock);
        _pmemRegion = pmem;
        Mode = pmem is null ? CacheMode.Volatile : CacheMode.Persistent;
        _backing = backing;
        _cache = cache;
        Name = $"writeboost({backing.Name}, {cache.Name})"; // once: every request's failure check names the device
        Geometry = geometry;
        Tunables = tunables;
        _options = options;
        CacheUuid = cacheUuid;
        SizeBytes = backing.SizeBytes / Units.BlockBytes * Units.BlockBytes;
        _buffers = new BufferPool(options.PoolSizeFor(geometry), geometry.SegmentSizeBytes);
        _cacheIndex = new CacheIndex(geometry.NrSegments, geometry.BlocksPerSegment);
        _ring = new SegmentRing(geometry.NrSegments, _monitor.Lock);
        _backingStore = new BackingStore(backing, Counters);
        _record = new SuperblockRecordWriter(cache, _monitor, _ring, Counters, options.Faults);
        DeviceParts parts = _parts = new(_monitor, _ring, geometry, cache, Counters, tunables, options, Name);
        _workers = new DeviceWorkers(parts, _buffers, _cacheIndex, _poison, _backingStore, _record, new DurabilityOf(this));
        _writeback = _workers.Writeback;
        _head = new LogHead(parts, _buffers, _cacheIndex, _poison, _workers.Flush, _writeback);
        _reads = new ReadPlanner(parts, _cacheIndex, _poison, _buffers, _head, _stats);
        _writeAround = tunables.WriteAroundMode ? new WriteAroundPath(parts, _cacheIndex, _reads.Cells, _stats, _backingStore) : null;
    }

    /// <summary>0: the buffer is RAM. 1: the buffer is mirrored in persistent memory; FUA and flush complete at pmem speed.</summary>
    public CacheMode Mode { get; }

    /// <summary>Mode 1 on dax: a flush or FUA is a no-op fence (every write was persisted in pmem before it returned).</summary>
    public bool DurabilityIsCheap => _head.Mirror.BarrierIsFree && _writeAround is null;
    public PmemRegion? PmemRegion => _pmemRegion;

    public string Name { get; }
    public int SectorSizeBytes => Units.SectorBytes;
    /// <summary>The backing store's size, rounded down to whole 4 KiB blocks.</summary>
    public long SizeBytes { get; }
    public CacheGeometry Geometry { get; }
    public Tunables Tunables { get; }
    public Guid CacheUuid { get; }
    public IBlockDevice BackingDevice => _backing;
    public IBlockDevice CacheDevice => _cache;
    /// <summary>What the last open found and did (replayed, discarded, formatted).</summary>
    public RecoveryReport Recovery { get; private set; } = RecoveryReport.None;
    /// <summary>Opened only to look (<see cref="WriteboostOptions.ReadOnly"/>): writes fail, and nothing reaches the devices.</summary>
    public bool IsReadOnly => _options.ReadOnly;

    /// <summary>
    /// Opens the cache of <paramref name="backing"/> on <paramref name="cache"/>: formats an unformatted cache
    /// device (or any, with <see cref="WriteboostOptions.Reformat"/>), otherwise recovers it — replays its logs
    /// and rebuilds the index — then starts the workers.
    /// </summary>
    /// <exception cref="ArgumentException">the cache device is too small, or it holds a cache of a different geometry or backing store.</exception>
    /// <exception cref="IOException">a device failed during recovery.</exception>
    /// <param name="pmem">Mode 1: the pmem region holding the write buffer. Null: mode 0.</param>
    public static WriteboostDevice Open(IBlockDevice backing, IBlockDevice cache, Tunables tunables, WriteboostOptions? options = null, PmemRegion? pmem = null)
    {
        ArgumentNullException.ThrowIfNull(backing);
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(tunables);
        options ??= new WriteboostOptions();
        if (backing.SizeBytes < Units.BlockBytes)
        {
            throw new ArgumentException($"backing device {backing.Name} is {backing.SizeBytes} bytes: smaller than one 4 KiB block");
        }
        OpenPlan plan = CacheSuperblock.PlanOpen(backing, cache, tunables, options, pmem);
        if (options.ReadOnly && options.Faults.ReadOnlyOpenWritesToOverlay)
        {
            // Looking never writes: whatever recovery writes lands in memory over the devices.
            backing = new OverlayBlockDevice(backing);
            cache = new OverlayBlockDevice(cache);
            pmem = pmem is null ? null : new OverlayPmemRegion(pmem);
        }
        WriteboostDevice device = new(backing, cache, plan.Geometry, tunables, options, plan.Header, pmem);
        try
        {
            if (plan.Format)
            {
                device.Format(wasFormatted: plan.WasFormatted);
                if (pmem is not null)
                {
                    // Only --reformat (or --discard-pmem) takes over a pmem region that belongs to another cache, even for a
                    // new cache; the cache's own buffer (an interrupted format's) is formatted with it.
                    PmemClaim claim = new(plan.Header.CacheUuid, cache.Name, Guid.Empty, OwnBufferMayHoldWrites: false, options.Reformat, options.DiscardPmem) { FormatOwn = true };
                    device._head.Mirror = device.MirrorIn(PmemBufferPool.Open(pmem, options.PmemLayoutFor(plan.Geometry), claim, device.Faults, out PmemOpened opened));
                    device.FinishPmemOpen(opened);
                }
            }
            else
            {
                device.Recover();
            }
            if (tunables.WriteAroundMode && !plan.Format && !options.ReadOnly)
            {
                // dm-writeboost formats whenever write_around_mode is on; we first write back what is dirty, so
                // switching a cache to write-around never drops data.
                device.DrainAndReformat();
            }
            if (!options.WithoutWorkers && !options.ReadOnly)
            {
                device.StartWorkers();
            }
            return device;
        }
        catch
        {
            // The caller still owns the devices when opening fails.
            device.StopWorkers();
            device.DisposeSignals();
            throw;
        }
    }

    private void StartWorkers() => _workers.Start(new ModulatedDevice(this));

    internal FaultHooks Faults => _options.Faults;

    private void StopWorkers() => _workers.Stop();

    /// <summary>
    /// Clean shutdown: seals the open buffer (a partial log), waits until every queued segment is written and
    /// the cache device flushed, then stops the workers. Dirty data stays in the cache (as dm-writeboost's
    /// suspend); <see cref="DropCaches"/> first to write it all back.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        bool clean = false;
        try
        {
            if (_monitor.Failure is null && !_options.WithoutWorkers && !_options.ReadOnly)
            {
                // Both modes: everything buffered reaches the cache device. Mode 1 then clears "pmem buffer live":
                // the pmem buffers are stale, and mode 0 may open the cache.
                if (_writeAround is not null)
                {
                    _backingStore.Flush();
                }
                _head.MakeAllDurable();
                if (_head.Mirror.IsPersistent && _monitor.Failure is null)
                {
                    _superblock.WriteFlags(0);
                }
                clean = true;
            }
        }
        finally
        {
            StopWorkers();
            try
            {
                if (clean && _monitor.Failure is null)
                {
                    // Last, with the workers stopped (no later record can pass it): the record vouches for every
                    // segment, so damage to the newest ones is told from a torn tail at the next open.
                    _record.Write(_ring.WrittenBackId);
                }
            }
            finally
            {
                ReleaseResources();
            }
        }
    }

    /// <summary>
    /// Stops the workers without sealing or flushing anything: what the devices hold is what a crash would
    /// leave of the RAM buffer (lost). For tests of recovery.
    /// </summary>
    public void Abandon()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _monitor.Abandon();
        StopWorkers();
        ReleaseResources();
    }

    private void DisposeSignals()
    {
        _workers.Dispose();
        _monitor.Dispose();
    }

    private void ReleaseResources()
    {
        DisposeSignals();
        if (_options.OwnsDevices)
        {
            _backing.Dispose();
            _cache.Dispose();
            _pmemRegion?.Dispose();
        }
    }

    private PmemMirror MirrorIn(PmemBufferPool pool) => new(pool, _buffers, _monitor);

    private void ThrowIfFailed() => _monitor.ThrowIfFailedOrClosed(Name);

    /// <summary>The device's durability as writeback asks for it (<see cref="IDurability"/>).</summary>
    private sealed class DurabilityOf(WriteboostDevice device) : IDurability
    {
        public void RequestDurableLocked(ulong id) => device._workers.Flush.RequestDurableLocked(id);

        public void MakeDurable(ulong id) => device._head.MakeDurable(id);
    }

    /// <summary>The device as the modulator sees it (<see cref="Modulator"/>).</summary>
    private sealed class ModulatedDevice(WriteboostDevice device) : IModulatedDevice
    {
        public bool Stopped => device._monitor.StoppedOrFailed;

        public bool Closing => device._monitor.Closing;

        public long TakeBackingBusyTicks() => device._backingStore.TakeBusyTicks();

        public void SetBackingUtilisation(int percent, bool allowWriteback) => device._writeback.SetBackingUtilisation(percent, allowWriteback);

        public void WriteSuperblockRecord() => device._record.WriteCurrent();

        public void SyncData() => device.Flush();

        public void Fail(Exception error) => device._monitor.Fail(error);
    }
}
