using Writeboost.Cache.Core;
using Writeboost.Cache.Table;
using Writeboost.CrashTest.Faults;

namespace Writeboost.CrashTest.Mutants;

/// <summary>The harness's sweeps, each of which must catch the seeded bugs the catalogue gives it.</summary>
public enum Sweep
{
    /// <summary><c>wb crashtest</c>: crash states of a recorded workload (<see cref="Campaign"/>).</summary>
    Crash,
    /// <summary><c>wb faults</c>: I/O errors injected into a live device (<see cref="FaultSweep"/>).</summary>
    Faults,
    /// <summary><c>wb corrupt</c>: damaged media after a crash (<see cref="CorruptionSweep"/>).</summary>
    Corruption,
}

/// <summary>What shows a seeded bug to one sweep: the mode and workload it runs (the fault sweep also: where it injects).</summary>
public sealed record Exposure(CacheMode Mode, Workload Workload)
{
    /// <summary>A table key that must be on for the bug to show (configurations with it are tried first).</summary>
    public string? Key { get; init; }

    /// <summary>Only a table that changes between lives shows it (such configurations are tried first).</summary>
    public bool TablesChange { get; init; }

    /// <summary>Whether <paramref name="config"/> is one this exposure needs (its key, or tables changing between lives).</summary>
    public bool Prefers(Configs.CrashConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return (Key is not null && config.Keys.ContainsKey(Key)) || (TablesChange && config.ChangesBetweenLives);
    }

    /// <summary>The fault sweep: the device and operation whose errors show the bug.</summary>
    public (FaultTarget Target, FaultOperation Operation)? Where { get; init; }
}

/// <summary>
/// A seeded bug: a wrong answer at one of the device's decision points (<see cref="FaultHooks"/>), and the sweeps
/// that must catch it.
/// </summary>
/// <param name="Name">The name <c>--mutant</c> takes.</param>
/// <param name="Meaning">What the bug does, in a line.</param>
public sealed record SeededBug(string Name, string Meaning)
{
    /// <summary>The sweeps that must catch it, with what shows it to each.</summary>
    public IReadOnlyDictionary<Sweep, Exposure> CaughtBy { get; init; } = new Dictionary<Sweep, Exposure>();

    /// <summary>
    /// The bug is in what the device writes (its claims on the media), not only in how it reads them back: a sweep
    /// over damaged media records its workload with the bug too.
    /// </summary>
    public bool InWhatItWrites { get; init; }

    /// <summary>The answers the device gets at its decision points with this bug planted.</summary>
    internal FaultHooks Hooks { get; init; } = FaultHooks.None;

    /// <summary>
    /// Only users with requests in flight together show it (a read racing another thread's write): a minimised
    /// script, which replays one request at a time, cannot, and the minimiser says so.
    /// </summary>
    public bool NeedsConcurrentUsers { get; init; }

    /// <summary>The answers the NBD server gets (a bug in the server rather than the device).</summary>
    internal Nbd.NbdServerFaults ServerHooks { get; init; } = Nbd.NbdServerFaults.None;
}

/// <summary>
/// The one list of seeded bugs: every sweep's, with the decision each plants and the sweeps that must catch it.
/// <c>wb crashtest</c>, <c>wb faults</c> and <c>wb corrupt</c> list and take their <c>--mutant</c> from here, and
/// the tests prove each sweep catches every bug given to it.
/// </summary>
public static class MutantCatalogue
{
    private static Dictionary<Sweep, Exposure> Crash(CacheMode mode, Workload workload) => new() { [Sweep.Crash] = new(mode, workload) };

    private static Dictionary<Sweep, Exposure> Corruption(CacheMode mode, Workload workload) => new() { [Sweep.Corruption] = new(mode, workload) };

    private static Dictionary<Sweep, Exposure> Faults(CacheMode mode, Workload workload, FaultTarget target, FaultOperation operation) =>
        new() { [Sweep.Faults] = new(mode, workload) { Where = (target, operation) } };

    /// <summary>Every seeded bug, in the order the sweeps list them.</summary>
    public static IReadOnlyList<SeededBug> All { get; } =
    [
        new("ack-before-pmem-persist", "mode 1: acknowledge before the pmem lines are written back and fenced")
            { CaughtBy = Crash(CacheMode.Persistent, Workload.Random), Hooks = new SeededFaults.AckBeforePmemPersist() },
        new("drop-pmem-fence", "mode 1: write back the pmem lines but drop the fence")
            { CaughtBy = Crash(CacheMode.Persistent, Workload.Random), Hooks = new SeededFaults.DropPmemFence() },
        new("skip-cache-flush-before-ack", "mode 0: acknowledge a FUA/flush after writing the partial log, without flushing the cache device")
            { CaughtBy = Crash(CacheMode.Volatile, Workload.Random), Hooks = new SeededFaults.SkipCacheFlushBeforeAck() },
        new("trust-segment-without-checksum", "replay a segment without verifying its checksum")
        {
            CaughtBy = new Dictionary<Sweep, Exposure> { [Sweep.Crash] = new(CacheMode.Volatile, Workload.Random), [Sweep.Corruption] = new(CacheMode.Volatile, Workload.Wrap) },
            Hooks = new SeededFaults.TrustSegmentWithoutChecksum(),
        },
        new("replay-stale-after-gap", "replay like the kernel: every valid slot in ring order, across id gaps")
        {
            CaughtBy = new Dictionary<Sweep, Exposure> { [Sweep.Crash] = new(CacheMode.Volatile, Workload.Wrap), [Sweep.Corruption] = new(CacheMode.Volatile, Workload.Wrap) },
            Hooks = new KernelStyleReplay(),
        },
        new("reuse-slot-before-writeback-flushed", "free ring slots after writeback without flushing the backing store")
            { CaughtBy = Crash(CacheMode.Volatile, Workload.Wrap), Hooks = new SeededFaults.ReuseSlotBeforeWritebackFlushed() },
        new("recovery-skips-its-flush", "recovery writes the segments it rebuilt from pmem but does not flush them; the device goes on and reuses the pmem buffers (only a second crash shows it)")
            { CaughtBy = Crash(CacheMode.Persistent, Workload.Random), Hooks = new SeededFaults.RecoverySkipsItsFlush() },
        new("reuse-pmem-buffer-once-written", "mode 1: reuse a pmem buffer once its segment is written to the cache device, not once it is durable")
            { CaughtBy = Crash(CacheMode.Persistent, Workload.Random), Hooks = new SeededFaults.ReusePmemBufferOnceWritten() },
        new("fua-trusts-written-segment", "mode 0: a FUA that filled its segment returns if the flush worker already wrote it, without the cache flush")
            { CaughtBy = Crash(CacheMode.Volatile, Workload.Random), Hooks = new SeededFaults.FuaTrustsWrittenSegment() },
        new("flush-publishes-before-write", "the flush worker counts a segment as written just before writing it (a window no other thread is woken for: perturbed schedules show it)")
            { CaughtBy = Crash(CacheMode.Volatile, Workload.Random), Hooks = new SeededFaults.FlushPublishesBeforeWrite() },
        new("pmem-record-crc-skips-data", "mode 1: a pmem record's CRC does not cover the slot's data (only a torn pmem line shows it)")
            { CaughtBy = Crash(CacheMode.Persistent, Workload.Random), Hooks = new SeededFaults.PmemRecordCrcSkipsData() },
        new("pmem-hole-not-recorded", "mode 1: a slot the read cache stages counts as placed without its hole record, so a later record vouches for whatever an older segment left in it (only read caching in mode 1 shows it)")
            { CaughtBy = new Dictionary<Sweep, Exposure> { [Sweep.Crash] = new(CacheMode.Persistent, Workload.Random) { Key = TunableSpecs.NrReadCacheCells } }, Hooks = new SeededFaults.PmemHoleNotRecorded() },
        new("read-buffer-serves-unheld-sectors", "a read of a block in a RAM buffer takes every sector from the buffer, not only those it holds (only a live read shows it)")
            { CaughtBy = Crash(CacheMode.Volatile, Workload.Random), Hooks = new SeededFaults.ReadBufferServesUnheldSectors() },
        new("compact-metablock-claims-whole-block", "order 11's 8-byte metablocks are sealed with all eight dirty bits (only a non-default configuration shows it)")
            { CaughtBy = Crash(CacheMode.Volatile, Workload.Overwrite), Hooks = new SeededFaults.CompactMetablockClaimsWholeBlock() },
        new("read-caches-around-write-around", "write-around: a read miss during a write's trip to the backing store caches the old data, served after the write is acknowledged (only a live read under write-around and read caching shows it)")
            { CaughtBy = new Dictionary<Sweep, Exposure> { [Sweep.Crash] = new(CacheMode.Volatile, Workload.Random) { Key = TunableSpecs.WriteAroundMode } }, Hooks = new SeededFaults.ReadCachesAroundWriteAround(), NeedsConcurrentUsers = true },
        new("nbd-fua-write-zeroes-skips-flush", "the NBD server acknowledges a FUA WRITE_ZEROES before flushing the device (only the NBD path shows it: the device itself is asked for nothing wrong)")
            { CaughtBy = Crash(CacheMode.Volatile, Workload.Protocol), ServerHooks = new SeededFaults.NbdFuaWriteZeroesSkipsFlush() },
        new("write-around-switch-keeps-pmem-records", "switching a mode-1 cache to write-around formats the cache but leaves its pmem buffers' records: the next write-back life rebuilds old data from them (only a table that changes between lives shows it)")
            { CaughtBy = new Dictionary<Sweep, Exposure> { [Sweep.Crash] = new(CacheMode.Persistent, Workload.Random) { TablesChange = true } }, Hooks = new SeededFaults.WriteAroundSwitchKeepsPmemRecords() },
        new("second-gap-keeps-its-slot", "recovery marks the first of two dropped segments in a row with a tombstone but not the second: later durable segments vouch for the torn one left in its slot (only a next life that starts from two gaps in a row shows it)")
            { CaughtBy = Crash(CacheMode.Volatile, Workload.Random), Hooks = new SeededFaults.SecondGapKeepsItsSlot() },
        new("poison-torn-tail", "take a crash's torn segment for damage to durable data: poison its blocks")
            { CaughtBy = Crash(CacheMode.Volatile, Workload.Random), Hooks = new SeededFaults.PoisonTornTail() },
        new("ignore-cache-flush-error", "treat a failed cache-device flush as done: FUA and flush acknowledged anyway")
            { CaughtBy = Faults(CacheMode.Volatile, Workload.Random, FaultTarget.Cache, FaultOperation.Flush), Hooks = new SeededFaults.IgnoreCacheFlushError() },
        new("writeback-ignores-write-error", "writeback skips a block whose backing write failed and marks it clean")
            { CaughtBy = Faults(CacheMode.Volatile, Workload.Wrap, FaultTarget.Backing, FaultOperation.Write), Hooks = new SeededFaults.WritebackIgnoresWriteError() },
        new("writeback-gives-up-after-error", "a writeback batch that failed once is never tried again: nothing is lost, but drop_caches waits forever (only the sweep's liveness check shows it: a hang)")
            { CaughtBy = Faults(CacheMode.Volatile, Workload.Wrap, FaultTarget.Backing, FaultOperation.Write), Hooks = new SeededFaults.WritebackGivesUpAfterError() },
        new("stop-at-damaged-segment", "end the walk at the first bad checksum, even of a durable segment, and zero the rest")
            { CaughtBy = Corruption(CacheMode.Volatile, Workload.Wrap), Hooks = new SeededFaults.StopAtDamagedSegment() },
        new("poison-reads-old-data", "a poisoned block reads its older data instead of failing")
            { CaughtBy = Corruption(CacheMode.Volatile, Workload.Wrap), Hooks = new SeededFaults.PoisonReadsOldData() },
        new("replay-damaged-blocks", "replay a damaged durable segment whole, its damaged blocks included")
            { CaughtBy = Corruption(CacheMode.Volatile, Workload.Wrap), Hooks = new SeededFaults.ReplayDamagedBlocks() },
        new("claim-nothing-durable", "segment headers and the superblock record vouch for nothing")
            { CaughtBy = Corruption(CacheMode.Volatile, Workload.Wrap), Hooks = new SeededFaults.ClaimNothingDurable(), InWhatItWrites = true },
        new("pmem-damage-as-torn", "mode 1: a damaged record of an acknowledged write is discarded as torn")
            { CaughtBy = Corruption(CacheMode.Persistent, Workload.Wrap), Hooks = new SeededFaults.PmemDamageAsTorn() },
        new("read-only-writes-through", "a read-only open (wb status) writes what recovery does to the devices")
            { CaughtBy = Corruption(CacheMode.Volatile, Workload.Wrap), Hooks = new SeededFaults.ReadOnlyWritesThrough() },
    ];

    /// <summary>The bugs <paramref name="sweep"/> must catch, in listing order.</summary>
    public static IReadOnlyList<SeededBug> CaughtBy(Sweep sweep) => All.Where(b => b.CaughtBy.ContainsKey(sweep)).ToList();

    /// <summary>The bug named <paramref name="name"/>; null for "none". A clear error for a name the catalogue does not know.</summary>
    public static SeededBug? Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name == "none" ? null
            : All.FirstOrDefault(b => b.Name == name) ?? throw new ArgumentException($"unknown mutant {name} (see --list-mutants)");
    }

    /// <summary>The device's answers for <paramref name="name"/> ("none": the product's own).</summary>
    internal static FaultHooks HooksFor(string name) => Find(name)?.Hooks ?? FaultHooks.None;
}
