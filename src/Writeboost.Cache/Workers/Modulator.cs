using System.Diagnostics;
using Writeboost.Cache.Table;

namespace Writeboost.Cache.Workers;

/// <summary>What the modulator works on: the device, seen through the few things the modulator reads and asks of it.</summary>
internal interface IModulatedDevice
{
    /// <summary>The device is stopping or has failed: the modulator ends.</summary>
    bool Stopped { get; }

    /// <summary>The device is being closed (an <see cref="ObjectDisposedException"/> from a periodic sync is the close, not a failure).</summary>
    bool Closing { get; }

    /// <summary>How long the backing store was busy (Stopwatch ticks) since the last call; the count starts again.</summary>
    long TakeBackingBusyTicks();

    /// <summary>The backing store's utilisation over the last second, and whether background writeback may run (it is woken if so).</summary>
    void SetBackingUtilisation(int percent, bool allowWriteback);

    /// <summary>Writes the superblock record with the last written-back id as it is now.</summary>
    void WriteSuperblockRecord();

    /// <summary>Makes everything written so far durable (a flush).</summary>
    void SyncData();

    /// <summary>The device fails with <paramref name="error"/>.</summary>
    void Fail(Exception error);
}

/// <summary>
/// dm-writeboost's modulator and its two periodic chores, once a second (the harness shortens the second):
/// <list type="bullet">
/// <item>measures the backing store's utilisation (the share of the last second our own I/O to it was in flight;
/// dm-writeboost reads the disk's io_ticks) and lets writeback run in the background while it is below
/// <c>writeback_threshold</c> (0: writeback only when the ring is full);</item>
/// <item>writes the superblock record every <c>update_sb_record_interval</c> seconds;</item>
/// <item>flushes everything written every <c>sync_data_interval</c> seconds.</item>
/// </list>
/// The tunables are read at every tick (they can change online). An I/O error of a chore fails the device.
/// </summary>
internal sealed class Modulator
{
    private readonly IModulatedDevice _device;
    private readonly Tunables _tunables;
    private readonly long _secondTicks;
    private long _lastTick;
    private long _lastRecord;
    private long _lastSync;

    /// <param name="second">The modulator's second, as a span.</param>
    /// <param name="startTimestamp">When it starts (a Stopwatch timestamp): the first second ends one second later.</param>
    public Modulator(IModulatedDevice device, Tunables tunables, TimeSpan second, long startTimestamp)
    {
        _device = device;
        _tunables = tunables;
        Second = second;
        _secondTicks = Math.Max(1, (long)(second.TotalSeconds * Stopwatch.Frequency));
        _lastTick = _lastRecord = _lastSync = startTimestamp;
    }

    public TimeSpan Second { get; }

    /// <summary>The modulator's thread: a tick after every wait of a second, until the device stops or fails.</summary>
    public void Run(ManualResetEventSlim stopSignal)
    {
        while (true)
        {
            stopSignal.Wait(Second);
            if (_device.Stopped || !Tick(Stopwatch.GetTimestamp()))
            {
                return;
            }
        }
    }

    /// <summary>
    /// One tick at <paramref name="now"/> (a Stopwatch timestamp): nothing before a whole second has passed since
    /// the last; then the utilisation and the chores that are due. False when the device failed (the modulator ends).
    /// </summary>
    internal bool Tick(long now)
    {
        if (now - _lastTick < _secondTicks)
        {
            return true;
        }
        int util = UtilisationPercent(_device.TakeBackingBusyTicks(), now - _lastTick);
        _lastTick = now;
        int threshold = _tunables.WritebackThreshold;
        _device.SetBackingUtilisation(util, allowWriteback: threshold > 0 && util < threshold);
        try
        {
            int recordInterval = _tunables.UpdateSbRecordInterval;
            if (recordInterval > 0 && now - _lastRecord >= recordInterval * _secondTicks)
            {
                _lastRecord = now;
                _device.WriteSuperblockRecord();
            }
            int syncInterval = _tunables.SyncDataInterval;
            if (syncInterval > 0 && now - _lastSync >= syncInterval * _secondTicks)
            {
                _lastSync = now;
                _device.SyncData();
            }
        }
        catch (IOException error)
        {
            _device.Fail(error);
            return false;
        }
        catch (ObjectDisposedException) when (_device.Closing)
        {
            // The device closed while the periodic sync waited on the flush worker (found by the crash
            // harness: this thread's exception ended the process): the close flushes, or it was a crash.
            return false;
        }
        return true;
    }

    /// <summary>The share (0–100 %) of <paramref name="elapsedTicks"/> the backing store was busy.</summary>
    internal static int UtilisationPercent(long busyTicks, long elapsedTicks) =>
        (int)Math.Clamp(100 * busyTicks / Math.Max(1, elapsedTicks), 0, 100);
}
