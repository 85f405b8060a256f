using Writeboost.Cache.Core;

namespace Writeboost.CrashTest.Workloads;

/// <summary>
/// The reads that race the writers of one recording (configurations with read caching, several writers). Half the
/// reads go to a block written a moment ago (<see cref="Pick"/>), which races a write only when the machine's timing
/// says so. The rest is by construction: a write may be held at one schedule point of its way through the device
/// (its n-th, drawn with the workload), and there it offers its block and waits until another writer has read that
/// block whole, so the read runs inside that window however fast or loaded the machine is. A write a read raced is
/// read back by its writer once acknowledged: whatever the racing read left in the read cache is then checked live.
/// </summary>
/// <para>The wait is bounded (<see cref="OfferLimit"/>, <see cref="ReadLimit"/>): the other writers may be busy, done,
/// or (correctly) waiting for this very write, as a read of a block whose data is still being copied in does.</para>
internal sealed class RacingReads : IDisposable
{
    /// <summary>How long a held write waits for another writer to take its block.</summary>
    internal static readonly TimeSpan OfferLimit = TimeSpan.FromMilliseconds(20);
    /// <summary>How long it then waits for that read to return.</summary>
    internal static readonly TimeSpan ReadLimit = TimeSpan.FromMilliseconds(20);

    private readonly long[] _recent = [-1, -1, -1, -1];
    private int _next;
    private readonly ThreadLocal<WriteInFlight?> _writing = new();
    private readonly object _offerLock = new();
    private long _offeredBlock = -1;
    /// <summary>The offers made, taken by a reader, and finished (read, or withdrawn): one at a time, by number.</summary>
    private int _offers;
    private int _taken;
    private int _finished;
    /// <summary>The writers still running their workload: a write is held only while another could read it.</summary>
    private int _writers;

    /// <summary>A write on its way through the device, counting the schedule points its thread passes.</summary>
    private sealed class WriteInFlight(long block, int holdAtPoint)
    {
        public long Block { get; } = block;
        public int HoldAtPoint { get; } = holdAtPoint;
        public int PointsPassed { get; set; }
        public bool Raced { get; set; }
    }

    /// <summary>The schedule hooks of a recording whose writes may be held for a racing read (a decorator of its perturbation).</summary>
    internal sealed class Hooks(ScheduleHooks inner, RacingReads reads) : ScheduleHooks
    {
        public override void At(SchedulePoint point)
        {
            reads.AtPoint();
            inner.At(point);
        }
    }

    /// <summary>A writer will run its workload (counted before any starts, so a held write waits for one that wakes late).</summary>
    public void Joined()
    {
        lock (_offerLock)
        {
            _writers++;
        }
    }

    /// <summary>A writer finished its workload: nobody waits for it to read.</summary>
    public void Left()
    {
        lock (_offerLock)
        {
            _writers--;
            Monitor.PulseAll(_offerLock);
        }
    }

    /// <summary>The calling writer is about to write <paramref name="block"/>; it is held at its <paramref name="holdAtPoint"/>-th schedule point (-1: not held).</summary>
    public void Writing(long block, int holdAtPoint)
    {
        _writing.Value = new WriteInFlight(block, holdAtPoint);
        Volatile.Write(ref _recent[(Interlocked.Increment(ref _next) & int.MaxValue) % _recent.Length], block);
    }

    /// <summary>The calling writer's write returned: whether a read of its block ran while it was held.</summary>
    public bool Wrote()
    {
        bool raced = _writing.Value?.Raced ?? false;
        _writing.Value = null;
        return raced;
    }

    /// <summary>Half the time the newest block written (likely still in flight), else one of the last few.</summary>
    public long Pick(Random random) => Volatile.Read(ref _recent[random.Next(2) == 0
        ? (Volatile.Read(ref _next) & int.MaxValue) % _recent.Length
        : random.Next(_recent.Length)]);

    /// <summary>A block a held write offers for reading, taken by the calling writer (false: none is offered).</summary>
    public bool TakeOffer(out long block, out int offer)
    {
        lock (_offerLock)
        {
            block = _offeredBlock;
            offer = _offers;
            if (block < 0)
            {
                return false;
            }
            _offeredBlock = -1;
            _taken = offer;
            Monitor.PulseAll(_offerLock);
            return true;
        }
    }

    /// <summary>The read of offer <paramref name="offer"/> returned: its writer may go on.</summary>
    public void OfferRead(int offer)
    {
        lock (_offerLock)
        {
            _finished = Math.Max(_finished, offer);
            Monitor.PulseAll(_offerLock);
        }
    }

    private void AtPoint()
    {
        WriteInFlight? write = _writing.Value;
        if (write is null || write.PointsPassed++ != write.HoldAtPoint)
        {
            return;
        }
        lock (_offerLock)
        {
            if (_finished < _offers || _writers < 2)
            {
                return; // another write is held (one race at a time), or nobody is left to read
            }
            _offeredBlock = write.Block;
            int offer = ++_offers;
            if (!WaitLocked(() => _taken >= offer || _writers < 2, OfferLimit) || _taken < offer)
            {
                _offeredBlock = -1; // nobody came: withdrawn
                _finished = offer;
                return;
            }
            write.Raced = true;
            WaitLocked(() => _finished >= offer, ReadLimit);
            _finished = Math.Max(_finished, offer); // a read still running does not hold the next offer back
        }
    }

    private bool WaitLocked(Func<bool> done, TimeSpan limit)
    {
        long deadline = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        while (!done())
        {
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return false;
            }
            Monitor.Wait(_offerLock, (int)left);
        }
        return true;
    }

    public void Dispose() => _writing.Dispose();
}
