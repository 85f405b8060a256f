using System.Diagnostics;
using Writeboost.Cache.PmemBuffer;

namespace Writeboost.Cache.Recovery;

/// <summary>
/// What the last recovery on a thread read, kept for the next one over media that say which 4 KiB pages are
/// unchanged (the crash harness's crash states: thousands recovered in turn over one timeline): the pmem buffers'
/// slots and the sealed segments' data CRCs. Real devices and regions give no page tokens, so it keeps nothing there.
/// </summary>
internal sealed class RecoveryMemo
{
    public PmemRecoveryMemo Pmem { get; } = new();

    public SegmentChecksumMemo Segments { get; } = new();
}

/// <summary>
/// A memo one recovery holds at a time (what it lends, such as a rebuild image, is that recovery's until it gives
/// the memo back); a second recovery while one holds it goes without.
/// </summary>
internal abstract class HeldByOneRecovery
{
    private int _held;

    /// <summary>Takes it for one recovery; false: another recovery holds it.</summary>
    public bool TryTake() => Interlocked.Exchange(ref _held, 1) == 0;

    /// <summary>Gives it back: the recovery is done with everything it lent.</summary>
    public void Give()
    {
        bool wasHeld = Interlocked.Exchange(ref _held, 0) == 1;
        Debug.Assert(wasHeld, $"a {GetType().Name} given back that was not taken");
    }

    /// <summary>A recovery holds it (asserted where it is used).</summary>
    protected bool IsHeld => Volatile.Read(ref _held) == 1;
}
