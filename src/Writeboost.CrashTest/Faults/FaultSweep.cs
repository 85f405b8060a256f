using System.Diagnostics;
using Writeboost.Cache.Core;
using Writeboost.Cache.Table;
using Writeboost.CrashTest.Mutants;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.States;
using Writeboost.CrashTest.Targets;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.CrashTest.Faults;

/// <summary>One fault sweep: a workload in one mode, run once per fault.</summary>
/// <param name="Only">Null: every device and operation; else one of them, e.g. (Cache, Flush).</param>
public sealed record FaultSweepSpec(CacheMode Mode, Workload Workload, int Seed, int Ops, int MaxRuns, string Mutant = "none", (FaultTarget Target, FaultOperation Operation)? Only = null)
{
    /// <summary>
    /// A design of one's own to sweep instead of the writeboost device (<see cref="Mode"/> and <see cref="Mutant"/> are
    /// then not used): opened on its geometry's devices, judged by the same rules through its requests alone (it has
    /// no status: a request that fails after the fault is how it says it has failed).
    /// </summary>
    public ICrashTarget? Target { get; init; }

    /// <summary>What survives a power failure of the pmem region's stores in the crash states after each fault (dax regions: ADR or eADR).</summary>
    public PersistenceDomain Persistence { get; init; } = PersistenceDomain.Adr;

    /// <summary>The bound on one run (recovery, the workload, the flush, read and drop_caches after the fault): past it the run has hung, a violation.</summary>
    public TimeSpan RunTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The bound on a run standing still: no read, write or flush reaching any of its devices and no step of the
    /// run's own for this long, and the run has hung (a device retrying a failed writeback every millisecond, as
    /// the sweep's devices do, is never still for long; one that gave up waits for nothing).
    /// </summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>What one run with one fault showed.</summary>
public sealed record FaultRun(Fault Fault, bool Fired, bool SurfacedToCaller, bool DeviceFailed, int StatesChecked, string? Violation);

/// <summary>What a sweep found.</summary>
public sealed record FaultSweepResult(
    FaultSweepSpec Spec,
    IReadOnlyDictionary<string, int> OperationsCounted,
    int Runs,
    int FaultsFired,
    int SurfacedToCaller,
    int DeviceFailed,
    int StatesChecked,
    int Violations,
    string? FirstViolation,
    string? FirstViolationFault,
    double Seconds);

/// <summary>
/// I/O error injection swept over every operation of a workload (SQLite's test regime, on our devices).
/// A fault-free run counts the reads, writes and flushes each device sees (the backing store, the cache device,
/// the pmem region); then one run per fault fails exactly one of them — the N-th read, write or flush of one
/// device, as EIO, ENOSPC, a short write, or a burst of EIO — over recovery of an earlier crash and a workload
/// of writes, FUA writes, flushes and reads. Each run is judged by the rules of docs/reliability.md:
/// <list type="number">
/// <item>never silent: a fault that fired reached the caller of a request, or the status (device failed, or a
/// writeback error counted while writeback retries);</item>
/// <item>never wrong: every read that succeeded, during the run and after the fault cleared, gives the last
/// acknowledged data (or a newer, unacknowledged write);</item>
/// <item>after the fault clears the device works (a flush succeeds) or says it has failed — and a failed flush
/// is always fatal (no retry can make durable what a failed fsync may have dropped);</item>
/// <item>nothing acknowledged is lost: crashes right after each acknowledgement that followed the fault and at
/// the end (the crash states of docs/crash-model.md) recover to what the oracle allows.</item>
/// </list>
/// </summary>
public static class FaultSweep
{
    private const int CrashPointsAfterFault = 6;

    /// <summary>How often the liveness watch looks at a running run (a run that ends is seen at once).</summary>
    private static readonly TimeSpan StallPoll = TimeSpan.FromMilliseconds(50);

    /// <summary>The device images a run starts from: a crash after a first workload, and what they read as.</summary>
    private sealed record Baseline(byte[] Backing, byte[] Cache, byte[] Pmem, byte[] Content);

    /// <param name="cancel">Stops the sweep after the run in progress (an interrupted sweep): the result counts the runs made.</param>
    public static FaultSweepResult Run(FaultSweepSpec spec, Action<long, long>? progress = null, bool stopAtFirst = false, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.Ops, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.MaxRuns, 1);
        Stopwatch clock = Stopwatch.StartNew();
        FaultSweepSubject subject = FaultSweepSubject.For(spec);
        Baseline baseline = MakeBaseline(spec, subject);

        FaultSwitch counter = new(null);
        if (RunOne(spec, subject, baseline, counter, cancel: cancel) is not { } dry)
        {
            return new FaultSweepResult(spec, Names(counter.Counts), 0, 0, 0, 0, 0, 0, null, null, clock.Elapsed.TotalSeconds);
        }
        if (dry.Violation is not null)
        {
            return new FaultSweepResult(spec, Names(counter.Counts), 1, 0, 0, 0, dry.StatesChecked, 1, $"without any fault: {dry.Violation}", "none", clock.Elapsed.TotalSeconds);
        }
        List<Fault> faults = Plan(counter.Counts.Where(c => spec.Only is null || c.Key == spec.Only).ToDictionary(), spec.MaxRuns);
        int runs = 0, fired = 0, surfaced = 0, failed = 0, states = dry.StatesChecked, violations = 0;
        string? firstViolation = null;
        string? firstFault = null;
        foreach (Fault fault in faults)
        {
            if (cancel.IsCancellationRequested)
            {
                break;
            }
            if (RunOne(spec, subject, baseline, null, fault, cancel) is not { } run)
            {
                break; // interrupted while it ran: given up unfinished, not judged
            }
            runs++;
            fired += run.Fired ? 1 : 0;
            surfaced += run.SurfacedToCaller ? 1 : 0;
            failed += run.DeviceFailed ? 1 : 0;
            states += run.StatesChecked;
            if (run.Violation is not null)
            {
                violations++;
                firstViolation ??= run.Violation;
                firstFault ??= fault.ToString();
                if (stopAtFirst || run.Violation.StartsWith("hung", StringComparison.Ordinal))
                {
                    break;
                }
            }
            progress?.Invoke(runs, faults.Count);
        }
        return new FaultSweepResult(spec, Names(counter.Counts), runs, fired, surfaced, failed, states, violations, firstViolation, firstFault, clock.Elapsed.TotalSeconds);
    }

    private static Dictionary<string, int> Names(IReadOnlyDictionary<(FaultTarget Target, FaultOperation Operation), int> counts) =>
        counts.OrderBy(c => c.Key).ToDictionary(c => $"{c.Key.Target}.{c.Key.Operation}".ToLowerInvariant(), c => c.Value);

    /// <summary>
    /// Every operation with every kind of fault that applies to it; when that is more than
    /// <paramref name="maxRuns"/>, evenly spaced operations of each (device, operation, kind).
    /// </summary>
    private static List<Fault> Plan(IReadOnlyDictionary<(FaultTarget Target, FaultOperation Operation), int> counts, int maxRuns)
    {
        List<(FaultTarget Target, FaultOperation Operation, FaultKind Kind, int Count)> classes = [];
        foreach (((FaultTarget target, FaultOperation operation), int count) in counts.OrderBy(c => c.Key))
        {
            FaultKind[] kinds = operation == FaultOperation.Write
                ? [FaultKind.Eio, FaultKind.Enospc, FaultKind.ShortWrite, FaultKind.BurstEio]
                : [FaultKind.Eio, FaultKind.BurstEio];
            classes.AddRange(kinds.Select(k => (target, operation, k, count)));
        }
        int total = classes.Sum(c => c.Count);
        List<Fault> faults = [];
        foreach ((FaultTarget target, FaultOperation operation, FaultKind kind, int count) in classes)
        {
            int share = total <= maxRuns ? count : Math.Max(1, (int)((long)maxRuns * count / total));
            for (int i = 0; i < Math.Min(share, count); i++)
            {
                int nth = 1 + (int)((long)i * count / Math.Min(share, count));
                faults.Add(new Fault(target, operation, nth, kind));
            }
        }
        return faults;
    }

    /// <summary>A first workload, a crash (everything written survives), and the images recovery starts from.</summary>
    private static Baseline MakeBaseline(FaultSweepSpec spec, FaultSweepSubject subject)
    {
        MemoryBlockDevice backing = new(subject.BackingBytes, name: "backing");
        MemoryBlockDevice cache = new(subject.CacheBytes, name: "cache");
        PagedImage pmemImage = new(new byte[subject.PmemBytes]);
        PmemRegion? pmem = PmemOver(subject, pmemImage);
        SweptDevice device = subject.Open(backing, cache, pmem, SweepStep.Baseline);
        Random random = new(spec.Seed ^ 0x0BA5E);
        try
        {
            for (int op = 0; op < spec.Ops / 2; op++)
            {
                (long offset, int length, bool fua) = NextWrite(random, spec.Workload, device.Device.SizeBytes);
                byte[] data = new byte[length];
                random.NextBytes(data);
                device.Device.Write(offset, data, fua ? WriteOptions.Fua : WriteOptions.None);
            }
        }
        finally
        {
            device.Crash();
        }
        // Recover once, so a run's own recovery starts from what a first recovery leaves (it must be idempotent).
        SweptDevice recovered = subject.Open(backing, cache, pmem, SweepStep.Recover);
        byte[] content = new byte[recovered.Device.SizeBytes];
        recovered.Device.Read(0, content);
        recovered.Crash();
        return new Baseline(backing.Media.ToArray(), cache.Media.ToArray(), Campaign.Materialize(pmemImage), content);
    }

    /// <summary>
    /// The subject's pmem region over <paramref name="image"/> (null: it has none): lines of memory on the dax
    /// backend, a block device under read-modify-write on the block backend. With a run's <paramref name="faulted"/>
    /// log and switch, what reaches the image is recorded and failed as the switch says, on either backend.
    /// </summary>
    private static PmemRegion? PmemOver(FaultSweepSubject subject, PagedImage image, (CrashLog Log, FaultSwitch Faults)? faulted = null)
    {
        switch (subject.PmemBackend)
        {
            case null:
                return null;
            case PmemBackend.Block:
                IBlockDevice device = new PagedBlockDevice(image, "pmem");
                if (faulted is ({ } log, { } faults))
                {
                    device = new FaultInjectingBlockDevice(new RecordingBlockDevice(device, log, DeviceId.Pmem), FaultTarget.Pmem, faults);
                }
                return Pmem.Pmem.Alloc(device, 0, image.LengthBytes);
            default:
                PmemRegion lines = new MemoryPmemRegion(image);
                return faulted is ({ } lineLog, { } lineFaults) ? new FaultInjectingPmemRegion(new RecordingPmemRegion(lines, lineLog), lineFaults) : lines;
        }
    }

    private static (long Offset, int Length, bool Fua) NextWrite(Random random, Workload workload, long sizeBytes)
    {
        int sectors = (int)(sizeBytes / 512);
        (long offset, int length) = workload == Workload.Wrap
            ? (random.Next(sectors / 8) * 4096L, 4096)
            : Campaign.RandomRange(random, sectors, 12);
        return (offset, length, random.Next(100) < 25);
    }

    /// <summary>One run: recovery of the baseline and the workload with the fault armed, then the checks.</summary>
    /// <returns>Null when the sweep was interrupted while the run went on: the run is given up unfinished (its thread
    /// is left to end on its own) and judged neither way.</returns>
    private static FaultRun? RunOne(FaultSweepSpec spec, FaultSweepSubject subject, Baseline baseline, FaultSwitch? counter, Fault? fault = null, CancellationToken cancel = default)
    {
        CrashLog log = new();
        FaultSwitch faults = counter ?? new FaultSwitch(fault, log);
        // Copy-on-write over the baseline, which every run starts from again: a run pays for the pages it writes.
        PagedBlockDevice backing = new(baseline.Backing, "backing");
        PagedBlockDevice cache = new(baseline.Cache, "cache");
        PmemRegion? pmem = PmemOver(subject, new PagedImage(baseline.Pmem), (log, faults));
        IBlockDevice backingStack = new FaultInjectingBlockDevice(new RecordingBlockDevice(backing, log, DeviceId.Backing), FaultTarget.Backing, faults);
        IBlockDevice cacheStack = new FaultInjectingBlockDevice(new RecordingBlockDevice(cache, log, DeviceId.Cache), FaultTarget.Cache, faults);

        RunState state = new();
        faults.Arm();
        Thread worker = new(() => state.Run(spec, subject, log, faults, backingStack, cacheStack, pmem)) { IsBackground = true, Name = "wb-fault-run" };
        worker.Start();
        (bool interrupted, string? hang) = AwaitRun(worker, spec, faults, state, cancel);
        if (interrupted)
        {
            faults.Clear();
            return null;
        }
        if (hang is not null)
        {
            faults.Clear();
            return new FaultRun(fault ?? new Fault(FaultTarget.Backing, FaultOperation.Read, 0, FaultKind.Eio), faults.Fired, false, false, 0,
                $"hung: {state.Stage} {hang} after {fault?.ToString() ?? "no fault"} (liveness: every operation after a fault completes or fails)");
        }
        faults.Clear();
        string? violation = state.Violation;
        bool failed = state.DeviceFailed;

        Oracle oracle = new(log.Events, baseline.Content);
        foreach ((int point, long offset, byte[] data) in state.Reads)
        {
            violation ??= oracle.CheckLive(point, offset, data);
        }
        if (faults.Fired && !state.Surfaced && !failed && state.WritebackErrors == 0)
        {
            violation ??= "the fault fired but neither a request nor the status reported it";
        }
        if (faults.Fired && fault!.Operation == FaultOperation.Flush && state.Opened && !failed && subject.FailsStopOnFailedFlush)
        {
            // A failed fsync may have dropped writes the device can no longer name: no retry can make them durable.
            violation ??= "a flush failed but the device carried on (a failed flush must be fatal)";
        }
        (int states, string? lost) = CrashAfterFault(subject, baseline, log, oracle, faults.FiredAtEvent, spec);
        violation ??= lost;
        Fault described = fault ?? new Fault(FaultTarget.Backing, FaultOperation.Read, 0, FaultKind.Eio);
        return new FaultRun(described, faults.Fired, state.Surfaced, failed, states, violation is null ? null : $"{(fault is null ? "no fault" : fault.ToString())}: {violation}");
    }

    /// <summary>
    /// Waits for a run's thread: no hang once it ended, else how it hung — still (no device operation and no step of
    /// the run) for <see cref="FaultSweepSpec.StallTimeout"/>, or not ended within <see cref="FaultSweepSpec.RunTimeout"/>;
    /// interrupted when the sweep is, first.
    /// </summary>
    private static (bool Interrupted, string? Hang) AwaitRun(Thread worker, FaultSweepSpec spec, FaultSwitch faults, RunState state, CancellationToken cancel)
    {
        TimeSpan stall = spec.StallTimeout < spec.RunTimeout ? spec.StallTimeout : spec.RunTimeout;
        Stopwatch running = Stopwatch.StartNew();
        Stopwatch still = Stopwatch.StartNew();
        (long Operations, string Stage) seen = (faults.Operations, state.Stage);
        while (!worker.Join(StallPoll))
        {
            if (cancel.IsCancellationRequested)
            {
                return (true, null);
            }
            (long Operations, string Stage) now = (faults.Operations, state.Stage);
            if (now != seen)
            {
                seen = now;
                still.Restart();
            }
            if (still.Elapsed >= stall)
            {
                return (false, $"made no progress for {stall.TotalSeconds:F0} s (no read, write or flush reached a device)");
            }
            if (running.Elapsed >= spec.RunTimeout)
            {
                return (false, $"did not end within {spec.RunTimeout.TotalSeconds:F0} s");
            }
        }
        return (false, null);
    }

    /// <summary>The user's side of one run, on its own thread (so a hang is seen, not suffered).</summary>
    private sealed class RunState
    {
        public List<(int Point, long Offset, byte[] Data)> Reads { get; } = [];
        public bool Surfaced { get; private set; }
        /// <summary>Recovery succeeded (a fault during it fails the open, which is reported and fine).</summary>
        public bool Opened { get; private set; }
        public bool DeviceFailed { get; private set; }
        public long WritebackErrors { get; private set; }
        public string? Violation { get; private set; }
        private volatile string _stage = "recovery";

        /// <summary>What the run is doing now (read by the watch on another thread): what hung, if it hangs.</summary>
        public string Stage
        {
            get => _stage;
            private set => _stage = value;
        }

        public void Run(FaultSweepSpec spec, FaultSweepSubject subject, CrashLog log, FaultSwitch faults, IBlockDevice backing, IBlockDevice cache, PmemRegion? pmem)
        {
            SweptDevice device;
            try
            {
                device = subject.Open(backing, cache, pmem, SweepStep.Run);
                Opened = true;
            }
            catch (IOException)
            {
                Surfaced = true; // recovery failed and said so; the crash check below reopens without the fault
                return;
            }
#pragma warning disable CA1031 // Anything but an I/O error out of the device is a violation to report.
            catch (Exception error)
            {
                Violation = $"recovery threw {error.GetType().Name}: {error.Message}";
                return;
            }
            try
            {
                Stage = "the workload";
                Workload(spec, log, device.Device);
                faults.Clear();
                Finish(log, device);
            }
            catch (Exception error)
            {
                Violation ??= $"a request threw {error.GetType().Name} (not an I/O error): {error.Message}";
            }
#pragma warning restore CA1031
            finally
            {
                device.Crash(); // the workers are stopped, so the status is final
                SweptStatus final = device.Status();
                DeviceFailed |= final.Failure is not null;
                WritebackErrors = final.WritebackErrors;
            }
        }

        private void Workload(FaultSweepSpec spec, CrashLog log, IBlockDevice device)
        {
            Random random = new(spec.Seed);
            for (int op = 0; op < spec.Ops; op++)
            {
                int roll = random.Next(100);
                try
                {
                    if (roll < 8)
                    {
                        UserFlush(log, device);
                    }
                    else if (roll < 20)
                    {
                        (long offset, int length) = Campaign.RandomRange(random, (int)(device.SizeBytes / 512), 16);
                        byte[] data = new byte[length];
                        device.Read(offset, data);
                        Reads.Add((log.Count, offset, data));
                    }
                    else
                    {
                        (long offset, int length, bool fua) = NextWrite(random, spec.Workload, device.SizeBytes);
                        byte[] data = new byte[length];
                        random.NextBytes(data);
                        int issued = log.Append(new CrashEvent(EventKind.UserWrite, DeviceId.User, offset, length, data, fua, -1));
                        device.Write(offset, data, fua ? WriteOptions.Fua : WriteOptions.None);
                        log.Append(new CrashEvent(EventKind.UserWriteAck, DeviceId.User, offset, length, null, fua, issued));
                    }
                }
                catch (IOException)
                {
                    Surfaced = true; // the request failed and said so: not acknowledged, nothing is owed for it
                }
            }
        }

        /// <summary>After the fault cleared: the device works again (a flush, a read of everything), or says it failed.</summary>
        private void Finish(CrashLog log, SweptDevice device)
        {
            SweptStatus status = device.Status();
            WritebackErrors = status.WritebackErrors;
            DeviceFailed = status.Failure is not null;
            if (DeviceFailed)
            {
                return;
            }
            try
            {
                Stage = "a flush after the fault";
                UserFlush(log, device.Device);
                Stage = "a read of the whole device after the fault";
                byte[] content = new byte[device.Device.SizeBytes];
                device.Device.Read(0, content);
                Reads.Add((log.Count, 0, content));
                // Liveness: drop_caches (write everything back) ends too — a hang is a violation, like lost data.
                Stage = "drop_caches after the fault";
                device.DrainAll();
                Stage = "the crash";
            }
            catch (IOException error)
            {
                Surfaced = true;
                // A device with a status must say there that it failed; a design without one says it by failing.
                DeviceFailed = !device.HasStatus || device.Status().Failure is not null;
                if (!DeviceFailed)
                {
                    Violation ??= $"after the fault, a flush or read failed ({error.Message}) but the device is not marked failed";
                }
            }
        }

        private static void UserFlush(CrashLog log, IBlockDevice device)
        {
            int flush = log.Append(new CrashEvent(EventKind.UserFlush, DeviceId.User, 0, 0, null, false, -1));
            device.Flush();
            log.Append(new CrashEvent(EventKind.UserFlushAck, DeviceId.User, 0, 0, null, false, flush));
        }
    }

    /// <summary>
    /// Crash states after the fault: at each of the first few acknowledgements that followed it, and at the end;
    /// nothing non-durable survived, everything did, and two seeded mixes. Recovery runs without faults.
    /// </summary>
    private static (int States, string? Problem) CrashAfterFault(FaultSweepSubject subject, Baseline baseline, CrashLog log, Oracle oracle, int firedAt, FaultSweepSpec spec)
    {
        IReadOnlyList<CrashEvent> events = log.Events;
        SortedSet<int> points = [events.Count];
        if (firedAt >= 0)
        {
            foreach (int ack in Enumerable.Range(firedAt, events.Count - firedAt)
                .Where(i => events[i].Kind is EventKind.UserWriteAck or EventKind.UserFlushAck).Take(CrashPointsAfterFault))
            {
                points.Add(ack + 1);
            }
        }
        // Layered over the baseline, which they never change: the next run starts from it again.
        PmemModel? model = subject.PmemBackend is { } backend ? new PmemModel(backend, spec.Persistence) : null;
        Timelines timelines = new(new Media(new PagedImage(baseline.Backing), new PagedImage(baseline.Cache), new PagedImage(baseline.Pmem)), model);
        int states = 0;
        foreach (int point in points)
        {
            timelines.AdvanceTo(events, point);
            List<StateKind> kinds = CrashStates.ExtraKinds(timelines);
            foreach (int variant in (int[])[0, 1, 1000, 1001])
            {
                CrashState state = CrashStates.Build(timelines, kinds, subject.PmemBytes, spec.Seed, point, variant);
                states++;
                if (subject.RecoverAndCheck(oracle, point, state) is { } problem)
                {
                    return (states, $"after a crash at event {point} (variant {variant}): {problem}");
                }
            }
        }
        return (states, null);
    }
}
