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
