using Writeboost.CrashTest.Recording;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.CrashTest.Faults;

/// <summary>The device a fault is injected on.</summary>
public enum FaultTarget
{
    Backing,
    Cache,
    Pmem,
}

/// <summary>The operation that fails. On pmem, Write is a store and Flush a line write-back or fence.</summary>
public enum FaultOperation
{
    Read,
    Write,
    Flush,
}

/// <summary>How the operation fails.</summary>
public enum FaultKind
{
    /// <summary>EIO, once: the operation did nothing.</summary>
    Eio,
    /// <summary>ENOSPC, once (a thin-provisioned or full device): the operation did nothing.</summary>
    Enospc,
    /// <summary>A short write, once: the first half of the sectors (bytes, on pmem) landed, then EIO.</summary>
    ShortWrite,
    /// <summary>EIO on this and the next <see cref="FaultSwitch.BurstLength"/> - 1 operations of the kind (a path that fails for a while, then clears).</summary>
    BurstEio,
}

/// <summary>The <see cref="Nth"/> (1-based) <see cref="Operation"/> on <see cref="Target"/> fails as <see cref="Kind"/>.</summary>
public sealed record Fault(FaultTarget Target, FaultOperation Operation, int Nth, FaultKind Kind)
{
    public override string ToString() => $"{Kind} on {Target} {Operation.ToString().ToLowerInvariant()} #{Nth}";
}

/// <summary>
/// Counts the operations of every device it is wired into (while armed) and fails the one <see cref="Fault"/>
/// names. Thread-safe: the workers and the user's thread all go through it.
/// </summary>
public sealed class FaultSwitch(Fault? fault, CrashLog? log = null)
{
    /// <summary>How many operations in a row a <see cref="FaultKind.BurstEio"/> fails.</summary>
    public const int BurstLength = 16;

    private readonly Lock _lock = new();
    private readonly Dictionary<(FaultTarget, FaultOperation), int> _counts = [];
    private bool _armed;
    private bool _cleared;
    private long _operations;

    public Fault? Fault => fault;
    /// <summary>The log position when the fault first fired, or -1.</summary>
    public int FiredAtEvent { get; private set; } = -1;
    public bool Fired => FiredAtEvent >= 0;

    /// <summary>
    /// Every operation that has reached the switch, armed or not, failed or not: that the device is still doing
    /// something (the fault sweep's liveness watch reads it).
    /// </summary>
    public long Operations => Volatile.Read(ref _operations);

    /// <summary>Starts counting (operations before this are not counted and never fail).</summary>
    public void Arm()
    {
        lock (_lock)
        {
            _armed = true;
        }
    }

    /// <summary>The fault clears: no operation fails from now on.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _cleared = true;
        }
    }

    /// <summary>How many operations of each kind were counted while armed.</summary>
    public IReadOnlyDictionary<(FaultTarget Target, FaultOperation Operation), int> Counts
    {
        get
        {
            lock (_lock)
            {
                return new Dictionary<(FaultTarget, FaultOperation), int>(_counts);
            }
        }
    }

    /// <summary>Counts one operation; returns how it must fail, or null to let it through.</summary>
    internal FaultKind? Next(FaultTarget target, FaultOperation operation)
    {
        Interlocked.Increment(ref _operations);
        lock (_lock)
        {
            if (!_armed || _cleared)
            {
                return null;
            }
            int n = _counts[(target, operation)] = _counts.GetValueOrDefault((target, operation)) + 1;
            if (fault is null || fault.Target != target || fault.Operation != operation)
            {
                return null;
            }
            bool fails = fault.Kind == FaultKind.BurstEio ? n >= fault.Nth && n < fault.Nth + BurstLength : n == fault.Nth;
            if (fails && FiredAtEvent < 0)
            {
                FiredAtEvent = log?.Count ?? 0;
            }
            return fails ? fault.Kind : null;
        }
    }

    internal static IOException Error(FaultKind kind, string device, string operation, long offsetBytes) => kind switch
    {
        FaultKind.Enospc => new IOException($"{device}: injected ENOSPC (No space left on device) on {operation} at offset {offsetBytes}"),
        FaultKind.ShortWrite => new IOException($"{device}: injected short write at offset {offsetBytes}, then EIO (Input/output error)"),
        _ => new IOException($"{device}: injected EIO (Input/output error) on {operation} at offset {offsetBytes}"),
    };
}

/// <summary>A block device decorator that fails operations as its <see cref="FaultSwitch"/> says.</summary>
public sealed class FaultInjectingBlockDevice(IBlockDevice inner, FaultTarget target, FaultSwitch faults) : IBlockDevice
{
    public string Name => inner.Name;
    public int SectorSizeBytes => inner.SectorSizeBytes;
    public long SizeBytes => inner.SizeBytes;

    public void Read(long offsetBytes, Span<byte> destination)
    {
        if (faults.Next(target, FaultOperation.Read) is { } kind)
        {
            throw FaultSwitch.Error(kind, Name, "read", offsetBytes);
        }
        inner.Read(offsetBytes, destination);
    }

    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        if (faults.Next(target, FaultOperation.Write) is { } kind)
        {
            if (kind == FaultKind.ShortWrite)
            {
                int landedBytes = source.Length / inner.SectorSizeBytes / 2 * inner.SectorSizeBytes;
                if (landedBytes > 0)
                {
                    inner.Write(offsetBytes, source[..landedBytes], WriteOptions.None);
                }
            }
            throw FaultSwitch.Error(kind, Name, "write", offsetBytes);
        }
        inner.Write(offsetBytes, source, options);
    }

    public void Flush()
    {
        if (faults.Next(target, FaultOperation.Flush) is { } kind)
        {
            throw FaultSwitch.Error(kind, Name, "flush", 0);
        }
        inner.Flush();
    }

    public void Dispose() => inner.Dispose();
}

/// <summary>
/// A pmem decorator that fails operations as its <see cref="FaultSwitch"/> says. Real DAX stores do not
/// return errors (a poisoned line is a SIGBUS); the block backend's stores and flushes do: those are modelled.
/// </summary>
public sealed class FaultInjectingPmemRegion(PmemRegion inner, FaultSwitch faults) : PmemRegion(inner.Name, inner.LengthBytes)
{
    public override PmemBackend Backend => inner.Backend;
    public override PmemGranularity Granularity => inner.Granularity;
    public override bool IsPmem => inner.IsPmem;

    protected override void WriteCore(long offsetBytes, ReadOnlySpan<byte> source)
    {
        if (faults.Next(FaultTarget.Pmem, FaultOperation.Write) is { } kind)
        {
            if (kind == FaultKind.ShortWrite && source.Length > 1)
            {
                inner.Write(offsetBytes, source[..(source.Length / 2)]);
            }
            throw FaultSwitch.Error(kind, Name, "store", offsetBytes);
        }
        inner.Write(offsetBytes, source);
    }

    /// <summary>
    /// An aligned 8-byte store is atomic (the API's promise, and the crash model's): a fault fails it whole, and a
    /// short write of it lands nothing — half a commit word is no outcome the hardware has.
    /// </summary>
    protected override void Store64Core(long offsetBytes, ulong value)
    {
        if (faults.Next(FaultTarget.Pmem, FaultOperation.Write) is { } kind)
        {
            throw FaultSwitch.Error(kind, Name, "store64", offsetBytes);
        }
        inner.Store64(offsetBytes, value);
    }

    protected override void ReadCore(long offsetBytes, Span<byte> destination)
    {
        if (faults.Next(FaultTarget.Pmem, FaultOperation.Read) is { } kind)
        {
            throw FaultSwitch.Error(kind, Name, "read", offsetBytes);
        }
        inner.Read(offsetBytes, destination);
    }

    protected override void FlushCore(long offsetBytes, long lengthBytes)
    {
        if (faults.Next(FaultTarget.Pmem, FaultOperation.Flush) is { } kind)
        {
            throw FaultSwitch.Error(kind, Name, "flush", offsetBytes);
        }
        inner.Flush(offsetBytes, lengthBytes);
    }

    protected override void DrainCore()
    {
        if (faults.Next(FaultTarget.Pmem, FaultOperation.Flush) is { } kind)
        {
            throw FaultSwitch.Error(kind, Name, "fence", 0);
        }
        inner.Drain();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
    }
}
