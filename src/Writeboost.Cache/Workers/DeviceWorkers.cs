using System.Diagnostics;
using Writeboost.Cache.Core;
using Writeboost.Cache.Index;

namespace Writeboost.Cache.Workers;

/// <summary>
/// A device's three background threads and their life: the flush worker, the writeback worker and the modulator,
/// started together after the open and stopped together (the monitor's stop, then each joined). Each worker sleeps
/// on its own signal; the monitor is for writers waiting on state (one monitor for all woke every worker at every
/// PulseAll: a thundering herd that cost a fifth of the write path's time).
/// </summary>
internal sealed class DeviceWorkers : IDisposable
{
    private readonly DeviceParts _parts;
    private WorkerRun? _modulator;

    public DeviceWorkers(DeviceParts parts, BufferPool buffers, CacheIndex index, PoisonSet poison, BackingStore backing, SuperblockRecordWriter record, IDurability durability)
    {
        _parts = parts;
        Writeback = new WritebackWorker(parts, index, poison, backing, record, durability);
        Flush = new FlushWorker(parts, buffers, Writeback);
    }

    public FlushWorker Flush { get; }

    public WritebackWorker Writeback { get; }

    public void Start(IModulatedDevice device)
    {
        Modulator modulator = new(device, _parts.Tunables, _parts.Options.ModulatorSecond, Stopwatch.GetTimestamp());
        Flush.Start();
        Writeback.Start();
        _modulator = WorkerThreads.Shared.Start("wb-modulator", () => modulator.Run(_parts.Monitor.StopSignal));
    }

    /// <summary>A close (or an abandon, already marked): the workers are told to stop and each is waited for.</summary>
    public void Stop()
    {
        _parts.Monitor.Stop();
        Flush.Join();
        Writeback.Join();
        _modulator?.Join();
    }

    public void Dispose()
    {
        Flush.Dispose();
        Writeback.Dispose();
    }
}
