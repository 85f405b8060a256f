using System.Diagnostics;

namespace Writeboost.Cache.Core;

/// <summary>
/// The device's one lock and its life. The lock guards the index, the ring and the buffers; writers and workers
/// that wait for the ring to move sleep on it (<see cref="WaitLocked()"/>) and whoever moves it wakes them
/// (<see cref="PulseAllLocked"/>). The life is running, then stopping (a close: the workers finish what is queued
/// and end), or abandoned (a simulated crash: they end at once), or failed (an I/O error the device cannot hide:
/// every waiter gets it). Each worker sleeps on its own signal, registered here so that a stop or a failure wakes
/// it; <see cref="StopSignal"/> is for timed pauses (a writeback retry, the modulator's second) that a stop cuts short.
/// </summary>
internal sealed class DeviceMonitor : IDisposable
{
    private readonly List<Action> _wakers = [];
    private readonly ScheduleHooks _schedule;

    /// <param name="schedule">Called as each scope of the lock ends (<see cref="Enter"/>): the harness stretches those windows.</param>
    public DeviceMonitor(ScheduleHooks? schedule = null) => _schedule = schedule ?? ScheduleHooks.None;

    /// <summary>
    /// Takes the lock for a scope, <c>using (monitor.Enter(point)) { ... }</c>: the one way the device and its workers
    /// hold it (a test keeps it so). Leaving the scope is a schedule point named for it, so every window in which
    /// another thread may run between two of this thread's steps under the lock is one the harness can stretch —
    /// found from the code's structure, not picked by hand.
    /// </summary>
    public Held Enter(Core.SchedulePoint leaving)
    {
        Monitor.Enter(Lock);
        return new Held(this, leaving);
    }

    /// <summary>The lock held by <see cref="Enter"/>; disposing it releases the lock, then passes the schedule point.</summary>
    public readonly ref struct Held(DeviceMonitor monitor, Core.SchedulePoint leaving)
    {
        public void Dispose()
        {
            Monitor.Exit(monitor.Lock);
            monitor._schedule.At(leaving);
        }
    }

    /// <summary>
    /// Lets the lock go for device I/O that must not hold every other thread up, <c>using (monitor.Leave(point)) { ... }</c>
    /// inside a scope of <see cref="Enter"/>; disposing takes it again. Letting go is a schedule point, as the end of
    /// a scope is. Whatever the caller checked under the lock may have changed when it has it back.
    /// </summary>
    public Released Leave(Core.SchedulePoint leaving)
    {
        AssertLocked();
        Monitor.Exit(Lock);
        _schedule.At(leaving);
        return new Released(this);
    }

    /// <summary>The lock let go by <see cref="Leave"/>; disposing takes it again.</summary>
    public readonly ref struct Released(DeviceMonitor monitor)
    {
        public void Dispose() => Monitor.Enter(monitor.Lock);
    }

    private bool _stopping;
    private bool _abandoned;
    private Exception? _failure;

    /// <summary>The lock. Everything a method's name ends in "Locked" touches is guarded by it.</summary>
    public object Lock { get; } = new();

    /// <summary>Set by a close (and by a stop or failure): cuts timed pauses short.</summary>
    public ManualResetEventSlim StopSignal { get; } = new(false);

    /// <summary>A close asked the workers to end once nothing is queued (under the lock).</summary>
    public bool Stopping => _stopping;

    /// <summary>A simulated crash: the workers end at once and write nothing more (under the lock).</summary>
    public bool Abandoned => _abandoned;

    /// <summary>The I/O error the device failed with (null: it has not). Set once, never cleared.</summary>
    public Exception? Failure => Volatile.Read(ref _failure);

    /// <summary>Not stopping, not abandoned, not failed (under the lock).</summary>
    public bool Running => !_stopping && !_abandoned && _failure is null;

    /// <summary>Stopping or failed, read without the lock held (a worker's or the modulator's loop condition).</summary>
    public bool StoppedOrFailed
    {
        get
        {
            lock (Lock)
            {
                return _stopping || _failure is not null;
            }
        }
    }

    /// <summary>The device is being closed, read without the lock (an error during the close is the close's).</summary>
    public bool Closing => Volatile.Read(ref _stopping);

    /// <summary>
    /// What a request meets on a device that cannot take it: its failure, as an <see cref="IOException"/> naming
    /// <paramref name="deviceName"/> and the cause, or its close (<see cref="ObjectDisposedException"/>).
    /// </summary>
    public void ThrowIfFailedOrClosed(string deviceName)
    {
        if (Failure is { } failure)
        {
            throw new IOException($"{deviceName} has failed and accepts no more I/O: {failure.Message}", failure);
        }
#pragma warning disable CA1513 // ThrowIf would name the string's type, not the device
        if (Closing)
        {
            throw new ObjectDisposedException(deviceName);
        }
#pragma warning restore CA1513
    }

    /// <summary>A worker's wake-up: called at a stop, an abandon and a failure.</summary>
    public void Register(Action wake) => _wakers.Add(wake);

    public void WaitLocked()
    {
        AssertLocked();
        Monitor.Wait(Lock);
    }

    /// <returns>False when the time ran out.</returns>
    public bool WaitLocked(int timeoutMs)
    {
        AssertLocked();
        return Monitor.Wait(Lock, timeoutMs);
    }

    public void PulseAllLocked()
    {
        AssertLocked();
        Monitor.PulseAll(Lock);
    }

    /// <summary>Marks the device failed (the first error wins) and wakes every waiter and worker so they see it.</summary>
    public void Fail(Exception error)
    {
        lock (Lock)
        {
            _failure ??= error;
            Monitor.PulseAll(Lock);
        }
        WakeAll();
    }

    /// <summary>A close: the workers finish what is queued and end; they are woken to see it.</summary>
    public void Stop()
    {
        lock (Lock)
        {
            Volatile.Write(ref _stopping, true);
            Monitor.PulseAll(Lock);
        }
        WakeAll();
    }

    /// <summary>Running again after a stop (the workers are started again: a drain before a format).</summary>
    public void Resume()
    {
        lock (Lock)
        {
            Debug.Assert(!_abandoned && _failure is null, "only a cleanly stopped device runs again");
            Volatile.Write(ref _stopping, false);
        }
        StopSignal.Reset();
    }

    /// <summary>A simulated crash: the workers end without writing anything more.</summary>
    public void Abandon()
    {
        lock (Lock)
        {
            _abandoned = true;
        }
    }

    public void Dispose() => StopSignal.Dispose();

    private void WakeAll()
    {
        foreach (Action wake in _wakers)
        {
            wake();
        }
        StopSignal.Set();
    }

    [Conditional("DEBUG")]
    private void AssertLocked() => Debug.Assert(Monitor.IsEntered(Lock), "waiting on or pulsing the device's monitor needs its lock");
}
