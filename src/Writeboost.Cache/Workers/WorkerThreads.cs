namespace Writeboost.Cache.Workers;

/// <summary>
/// The threads a device's workers run on, kept for the next device once a worker ends. Starting a thread waits
/// until the new thread runs, and on a busy machine that wait is long: a crash campaign opens a device for every
/// state it checks, and a write-around switch's drain at open starts the workers each time — their start was a
/// fifth of such a campaign's checking. A worker ending gives its thread back; the next <see cref="Start"/> hands
/// it the next body. A body's exception is not caught: it ends the process, as on a thread of its own.
/// </summary>
internal sealed class WorkerThreads
{
    /// <summary>Idle threads kept at most: a device's three workers, a few devices open at once.</summary>
    private const int MaxIdle = 12;
    private readonly Stack<Carrier> _idle = new();

    /// <summary>The threads every device's workers share.</summary>
    public static WorkerThreads Shared { get; } = new();

    /// <summary>Runs <paramref name="body"/> on a worker thread; the run's <see cref="WorkerRun.Join"/> waits for it to end.</summary>
    public WorkerRun Start(string name, Action body)
    {
        WorkerRun run = new(name, body);
        Carrier? carrier;
        lock (_idle)
        {
            _idle.TryPop(out carrier);
        }
        if (carrier is null)
        {
            carrier = new Carrier(_idle);
            carrier.Hand(run);
            Thread thread = new(carrier.Loop) { IsBackground = true, Name = name };
            thread.Start();
        }
        else
        {
            carrier.Hand(run);
        }
        return run;
    }

    /// <summary>One thread: runs the bodies it is handed, one after another, and waits idle between them.</summary>
    private sealed class Carrier(Stack<Carrier> idle)
    {
        private readonly object _gate = new();
        private WorkerRun? _run;

        public void Hand(WorkerRun run)
        {
            lock (_gate)
            {
                _run = run;
                Monitor.Pulse(_gate);
            }
        }

        public void Loop()
        {
            while (true)
            {
                WorkerRun run;
                lock (_gate)
                {
                    while (_run is null)
                    {
                        Monitor.Wait(_gate);
                    }
                    run = _run;
                    _run = null;
                }
                run.RunBody();
                bool kept;
                lock (idle)
                {
                    kept = idle.Count < MaxIdle; // else enough idle ones: this thread ends
                    if (kept)
                    {
                        idle.Push(this);
                    }
                }
                run.MarkEnded(); // after the thread is idle again: a worker started once this one is joined gets it
                if (!kept)
                {
                    return;
                }
            }
        }
    }
}

/// <summary>One worker's run on a <see cref="WorkerThreads"/> thread.</summary>
internal sealed class WorkerRun(string name, Action body)
{
    private readonly object _gate = new();
    private bool _ended;

    /// <summary>Waits until the body has returned.</summary>
    public void Join()
    {
        lock (_gate)
        {
            while (!_ended)
            {
                Monitor.Wait(_gate);
            }
        }
    }

    internal void RunBody()
    {
        Thread.CurrentThread.Name = name; // a thread kept for another worker takes that worker's name
        body();
    }

    internal void MarkEnded()
    {
        lock (_gate)
        {
            _ended = true;
            Monitor.PulseAll(_gate);
        }
    }
}
