using System.Diagnostics;
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
/// The device itself is the front: the write and read paths, placement into the open segment and its seal.</para>
///
/// <para>Concurrency: one monitor (<see cref="DeviceMonitor"/>, <c>_lock</c> here) guards the index, the ring,
/// the buffers and the open segment; writers and workers waiting for the ring to move sleep on it.
/// Device I/O happens outside it, except the rare read of old dirty sectors for a partial overwrite. Mode 1
/// reserves a write's slot under it and copies and persists the slot into pmem outside it (writers persist in
/// parallel; the buffer stays pinned until they are done, see <see cref="PmemMirror"/> and <see cref="BufferPool"/>).</para>
/// </summary>
public sealed partial class WriteboostDevice : IBlockDevice
{
    private readonly DeviceMonitor _monitor;
    private readonly object _lock; // the monitor's
    private readonly IBlockDevice _backing;
    private readonly BackingStore _backingStore;
    private readonly IBlockDevice _cache;
    private readonly WriteboostOptions _options;
    private readonly BufferPool _buffers;
    private readonly bool _writeAroundMode; // a static tunable: read once, not per request
    private BufferMirror _mirror = BufferMirror.RamOnly.Instance; // mode 1: the pmem mirror, once opened
    private readonly PmemRegion? _pmemRegion;
    // The open segment's slots: what each was given when placed (see OpenSegment).
    private readonly OpenSegment _open;
    private readonly CacheSuperblock _superblock;

    // The metablocks and the block map (guarded by _lock).
    private readonly CacheIndex _cacheIndex;
    // Blocks whose newest durable copy recovery found lost: reads of those sectors fail (see PoisonSet).
    private readonly PoisonSet _poison = new();

    // The ring's slots and the segment ids' stages (guarded by _lock).
    private readonly SegmentRing _ring;
    private bool _acquiring;

    // Each worker sleeps on its own signal; the monitor is for writers waiting on state. (One monitor for all
    // woke every worker at every PulseAll: a thundering herd that cost a fifth of the write path's time.)
    private readonly FlushWorker _flushWorker;
    private readonly WritebackWorker _writeback;
    private readonly SuperblockRecordWriter _record;
    private Thread? _modulator;
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
        Geometry = geometry;
        Tunables = tunables;
        _options = options;
        CacheUuid = cacheUuid;
        SizeBytes = backing.SizeBytes / Units.BlockBytes * Units.BlockBytes;
        _writeAroundMode = tunables.WriteAroundMode;
        int poolSize = (int)Math.Clamp(options.BufferPoolSize, 1, geometry.NrSegments);
        _buffers = new BufferPool(poolSize, geometry.SegmentSizeBytes);
        _cacheIndex = new CacheIndex(geometry.NrSegments, geometry.BlocksPerSegment);
        _readCache = new ReadCacheCells(tunables.NrReadCacheCells);
        _open = new OpenSegment(geometry.BlocksPerSegment);
        _lock = _monitor.Lock;
        _ring = new SegmentRing(geometry.NrSegments, _lock);
        _backingStore = new BackingStore(backing, Counters);
        _record = new SuperblockRecordWriter(cache, _monitor, _ring, Counters, options.Faults);
        DeviceParts parts = new(_monitor, _ring, geometry, cache, Counters, tunables, options, Name);
        _writeback = new WritebackWorker(parts, _cacheIndex, _poison, _backingStore, _record, new DurabilityOf(this));
        _flushWorker = new FlushWorker(parts, _buffers, _writeback);
    }

    /// <summary>0: the buffer is RAM. 1: the buffer is mirrored in persistent memory; FUA and flush complete at pmem speed.</summary>
    public CacheMode Mode { get; }

    /// <summary>Mode 1 on dax: a flush or FUA is a no-op fence (every write was persisted in pmem before it returned).</summary>
    public bool DurabilityIsCheap => _mirror.BarrierIsFree && !_writeAroundMode;
    public PmemRegion? PmemRegion => _pmemRegion;

    public string Name => $"writeboost({_backing.Name}, {_cache.Name})";
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
        CacheSuperblock.RefuseBackingThatIsACache(backing, cache);
        SuperblockReadResult superblock = CacheSuperblock.Read(cache);
        if (superblock.State == SuperblockState.Unformatted && !options.Reformat && CacheSuperblock.HoldsCacheEvidence(cache) is { } evidence)
        {
            throw new InvalidDataException(
                $"cache device {cache.Name}: sector 0 is blank, but {evidence}: a damaged superblock; refusing to format over a cache that may hold dirty data (wb check --segment-size-order N to inspect it, wb create --reformat to start over)");
        }
        bool blank = superblock.State is SuperblockState.Unformatted or SuperblockState.FormatInterrupted;
        if (blank && !options.Reformat && !options.FormatUnformatted)
        {
            throw new TableException(superblock.State == SuperblockState.FormatInterrupted
                ? $"cache device {cache.Name} holds a format that was interrupted (a crash while it was formatted): it is not a cache yet; `wb create` formats it"
                : $"cache device {cache.Name} is not a writeboost cache (sector 0 holds no superblock): `wb create` formats it");
        }
        bool format = options.Reformat || blank;
        int order = CacheSuperblock.ChooseSegmentSizeOrder(superblock, tunables, format, cache.Name);
        CacheGeometry geometry = CacheGeometry.For(cache.SizeBytes, order, cache.Name);
        if (pmem is not null)
        {
            // Before any write: a pmem too small for the buffers is refused with the cache untouched.
            PmemBufferPool.CheckFits(pmem, PmemLayoutFor(geometry, options));
        }
        if (!format)
        {
            CacheSuperblock.CheckSizes(superblock.Header!, backing, cache);
            if (pmem is null && (superblock.Header!.Flags & SuperblockHeaderOnDisk.FlagPmemBufferLive) != 0 && !options.DiscardPmem)
            {
                throw new TableException(
                    $"cache device {cache.Name} was last used in mode 1 and its pmem buffer may hold acknowledged writes: open it in mode 1 with its pmem device (which writes the buffer to the cache) and close it cleanly before using mode 0 (--discard-pmem opens it without them: they are lost)");
            }
        }
        // An interrupted format is finished under the cache's own uuid: its pmem buffer (cleared or half formatted
        // for it) is still its own, not another cache's.
        Guid cacheUuid = superblock.State == SuperblockState.FormatInterrupted && !options.Reformat ? superblock.Header!.CacheUuid : Guid.NewGuid();
        SuperblockHeaderOnDisk header = format
            ? new SuperblockHeaderOnDisk(order, cacheUuid, backing.SizeBytes, cache.SizeBytes)
            {
                Bindings = CacheBindings.None with { BackingIdentity = CacheBindings.Fit(options.BackingIdentity?.Identity ?? ""), BackingPath = options.BackingIdentity?.Path ?? "" },
            }
            : superblock.Header!;
        if (options.ReadOnly && options.Faults.ReadOnlyOpenWritesToOverlay)
        {
            // Looking never writes: whatever recovery writes lands in memory over the devices.
            backing = new OverlayBlockDevice(backing);
            cache = new OverlayBlockDevice(cache);
            pmem = pmem is null ? null : new OverlayPmemRegion(pmem);
        }
        WriteboostDevice device = new(backing, cache, geometry, tunables, options, header, pmem);
        try
        {
            if (format)
            {
                device.Format(superblock.State is not (SuperblockState.Unformatted or SuperblockState.FormatInterrupted));
                if (pmem is not null)
                {
                    // Only --reformat (or --discard-pmem) takes over a pmem region that belongs to another cache, even for a
                    // new cache; the cache's own buffer (an interrupted format's) is formatted with it.
                    PmemClaim claim = new(header.CacheUuid, cache.Name, Guid.Empty, OwnBufferMayHoldWrites: false, options.Reformat, options.DiscardPmem) { FormatOwn = true };
                    device._mirror = device.MirrorIn(PmemBufferPool.Open(pmem, PmemLayoutFor(geometry, options), claim, device.Faults, out PmemOpened opened));
                    device.FinishPmemOpen(opened);
                }
            }
            else
            {
                device.Recover();
            }
            if (tunables.WriteAroundMode && !format && !options.ReadOnly)
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

    /// <summary>The pmem buffers' layout for a cache of this geometry opened with these options (its pool size).</summary>
    private static PmemLayout PmemLayoutFor(CacheGeometry geometry, WriteboostOptions options) =>
        new(geometry.SegmentSizeOrder, (int)Math.Clamp(options.BufferPoolSize, 1, geometry.NrSegments), geometry.BlocksPerSegment);

    private void StartWorkers()
    {
        Modulator modulator = new(new ModulatedDevice(this), Tunables, _options.ModulatorSecond, Stopwatch.GetTimestamp());
        _modulator = new Thread(() => modulator.Run(_monitor.StopSignal)) { IsBackground = true, Name = "wb-modulator" };
        _flushWorker.Start();
        _writeback.Start();
        _modulator.Start();
    }

    internal FaultHooks Faults => _options.Faults;

    private void StopWorkers()
    {
        _monitor.Stop();
        _flushWorker.Join();
        _writeback.Join();
        _modulator?.Join();
    }

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
                if (_writeAroundMode)
                {
                    _backingStore.Flush();
                }
                FlushToCacheDevice();
                if (_mirror.IsPersistent && _monitor.Failure is null)
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
        _flushWorker.Dispose();
        _writeback.Dispose();
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

    // ---- helpers shared by the paths (call with _lock held) ----

    private int BlocksPerSegment => Geometry.BlocksPerSegment;

    // Metablock numbering is the cache index's (g = slot × blocks per segment + index in the segment).
    private long SlotOfGlobal(int g) => _cacheIndex.SlotOf(g);

    private int IndexInSegment(int g) => _cacheIndex.IndexInSegment(g);

    private int Global(long slot, int indexInSegment) => _cacheIndex.GlobalOf(slot, indexInSegment);

    private SegmentBuffer BufferOf(ulong segmentId) => _buffers.Of(segmentId);

    private PmemMirror MirrorIn(PmemBufferPool pool) => new(pool, _buffers, _monitor);

    /// <summary>True when the segment of metablock g is still in a RAM buffer (open, or queued and not yet written).</summary>
    private bool IsInBuffer(int g)
    {
        ulong id = _ring.IdIn(SlotOfGlobal(g));
        return id > _ring.FlushedId;
    }

    private void ThrowIfFailed()
    {
        if (_monitor.Failure is { } failure)
        {
            throw new IOException($"{Name} has failed and accepts no more I/O: {failure.Message}", failure);
        }
        ObjectDisposedException.ThrowIf(_disposed && _monitor.Stopping, this);
    }

    /// <summary>
    /// An overwrite moved block g's data to a newer copy: a dirty copy in a sealed segment stays owed to writeback
    /// (see <see cref="CacheIndex.Supersede"/>); anything else is cleared.
    /// </summary>
    private void Supersede(int g) => _cacheIndex.Supersede(g, inOpenSegment: _ring.IdIn(SlotOfGlobal(g)) == _ring.OpenId);

    /// <summary>
    /// The next slot of the open segment (the caller made room) now holds <paramref name="sectors"/> of
    /// <paramref name="block"/>: the one placement of writes and read-cache staging (whose data is already in the
    /// buffer). What the seal writes for the slot is kept too (see <see cref="OpenSegment"/>).
    /// </summary>
    private void PlaceInOpenSegmentLocked(long block, byte sectors, bool dirty)
    {
        int index = _open.Place(block, sectors, dirty);
        _cacheIndex.Place(Global(Geometry.SlotOf(_ring.OpenId), index), block, sectors, dirty);
    }

    /// <summary>
    /// A slot is taken for a new segment: whatever its old segment still maps goes. That segment was written back
    /// (the writer waits for it; in recovery, a pmem buffer bound to the new id proves it), so the backing store
    /// has its data and only the mappings go.
    /// </summary>
    private void UnmapSlotLocked(long slot)
    {
        _cacheIndex.UnmapSlot(slot);
        _poison.ForgetSlot(slot, BlocksPerSegment);
    }

    /// <summary>The device's durability as writeback asks for it (<see cref="IDurability"/>).</summary>
    private sealed class DurabilityOf(WriteboostDevice device) : IDurability
    {
        public void RequestDurableLocked(ulong id) => device._flushWorker.RequestDurableLocked(id);

        public void MakeDurable(ulong id) => device.MakeDurable(id);
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
