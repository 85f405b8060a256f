using Writeboost.Cache.Core;
using Writeboost.Cache.Table;
using Writeboost.CrashTest.Mutants;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.States;
using Writeboost.CrashTest.Targets;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.CrashTest.Faults;

/// <summary>Why a sweep opens its device: the first workload, a recovery to read, or a faulted run.</summary>
internal enum SweepStep
{
    Baseline,
    Recover,
    Run,
}

/// <summary>What a device's status says after a fault: its failure (null: none) and the background errors it counted while retrying.</summary>
internal readonly record struct SweptStatus(string? Failure, long WritebackErrors);

/// <summary>An opened device of a fault sweep: the block device the workload uses, its crash, and what it says of itself.</summary>
internal abstract class SweptDevice(IBlockDevice device)
{
    public IBlockDevice Device => device;

    /// <summary>Stops without writing anything more (the workers too): the devices hold the crash.</summary>
    public abstract void Crash();

    /// <summary>False for a design without a status: a request that fails after the fault is how it says it has failed.</summary>
    public virtual bool HasStatus => false;

    /// <summary>What its status says now (one snapshot; a device without a status says nothing).</summary>
    public virtual SweptStatus Status() => default;

    /// <summary>Writes everything back (drop_caches), where the device has such a thing.</summary>
    public virtual void DrainAll()
    {
    }
}

/// <summary>
/// What a fault sweep runs: the writeboost device in one mode (its status and drop_caches judged too, a seeded bug
/// possible) or a design of one's own (<see cref="FaultSweepSpec.Target"/>), opened the same way at each step.
/// </summary>
internal abstract class FaultSweepSubject
{
    public static FaultSweepSubject For(FaultSweepSpec spec)
    {
        if (spec.Target is null)
        {
            return new Writeboost(spec);
        }
        return new Design(spec.Target, spec.Target.GeometryFor(spec.Workload), spec.Seed);
    }

    public abstract long BackingBytes { get; }

    public abstract long CacheBytes { get; }

    /// <summary>0: no pmem region.</summary>
    public abstract long PmemBytes { get; }

    /// <summary>How the pmem region is presented (null: none): stores to lines, or a block device under read-modify-write.</summary>
    public abstract PmemBackend? PmemBackend { get; }

    /// <summary>
    /// The device promises to fail, not carry on, after a failed flush (the writeboost device's rule, docs/reliability.md:
    /// a failed fsync may have dropped writes it can no longer name). A design of one's own makes no such promise: one
    /// that keeps what it flushes elsewhere (a log it replays) may retry, and is judged by the crash states after the
    /// fault — whether anything acknowledged was lost — not by this rule.
    /// </summary>
    public abstract bool FailsStopOnFailedFlush { get; }

    public abstract SweptDevice Open(IBlockDevice backing, IBlockDevice cache, PmemRegion? pmem, SweepStep step);

    /// <summary>Recovers a crash state (without faults) and checks the oracle for a crash at <paramref name="point"/>.</summary>
    internal abstract string? RecoverAndCheck(Oracle oracle, int point, CrashState state);

    /// <summary>The writeboost device, as the sweep always ran it: the default configuration, the spec's mode and seeded bug.</summary>
    private sealed class Writeboost(FaultSweepSpec spec) : FaultSweepSubject
    {
        private readonly Campaign.Geometry _geometry = Campaign.GeometryFor(spec.Workload);
        private readonly FaultHooks _mutant = MutantCatalogue.HooksFor(spec.Mutant);

        public override long BackingBytes => _geometry.BackingBytes;

        public override long CacheBytes => _geometry.CacheBytes;

        public override long PmemBytes => spec.Mode == CacheMode.Persistent ? _geometry.PmemBytes : 0;

        public override PmemBackend? PmemBackend => spec.Mode == CacheMode.Persistent ? Pmem.PmemBackend.Dax : null;

        public override bool FailsStopOnFailedFlush => true;

        public override SweptDevice Open(IBlockDevice backing, IBlockDevice cache, PmemRegion? pmem, SweepStep step)
        {
            WriteboostOptions options = step switch
            {
                SweepStep.Baseline => new() { BufferPoolSize = Campaign.PoolSize },
                SweepStep.Recover => new() { BufferPoolSize = Campaign.PoolSize, WithoutWorkers = true },
                _ => new() { BufferPoolSize = Campaign.PoolSize, Faults = _mutant, WritebackRetryDelay = TimeSpan.FromMilliseconds(1) },
            };
            return new Opened(WriteboostDevice.Open(backing, cache, new Tunables(_geometry.Keys), options, pmem));
        }

        internal override string? RecoverAndCheck(Oracle oracle, int point, CrashState state) =>
            Campaign.RecoverAndCheck(_geometry, oracle, point, _mutant, state);

        private sealed class Opened(WriteboostDevice device) : SweptDevice(device)
        {
            public override void Crash() => device.Abandon();

            public override bool HasStatus => true;

            public override SweptStatus Status()
            {
                WriteboostStatus status = device.Status();
                return new SweptStatus(status.Failure, status.WritebackErrors);
            }

            public override void DrainAll() => device.DropCaches();
        }
    }

    /// <summary>A design of one's own: its geometry's devices, opened live for a workload and not for a recovery.</summary>
    private sealed class Design(ICrashTarget target, TargetGeometry geometry, int seed) : FaultSweepSubject
    {
        public override long BackingBytes => geometry.BackingBytes;

        public override long CacheBytes => geometry.CacheBytes;

        public override long PmemBytes => geometry.PmemBytes;

        public override PmemBackend? PmemBackend => geometry.Pmem;

        public override bool FailsStopOnFailedFlush => false;

        public override SweptDevice Open(IBlockDevice backing, IBlockDevice cache, PmemRegion? pmem, SweepStep step) =>
            new Opened(target.Open(new TargetDevices(backing, cache, pmem), new TargetOpen(Live: step != SweepStep.Recover, 0, seed)));

        internal override string? RecoverAndCheck(Oracle oracle, int point, CrashState state) =>
            Campaign.RecoverAndCheck(target, oracle, point, state);

        private sealed class Opened(ICrashTargetDevice device) : SweptDevice(device)
        {
            public override void Crash() => device.Crash();
        }
    }
}
