using System.Diagnostics;
using Writeboost.Devices;

namespace Writeboost.Cache.Core;

/// <summary>
/// The backing store as the device's paths use it: every read, write and flush is timed, so the modulator can tell
/// how busy the store was (dm-writeboost reads the disk's io_ticks; only our own I/O is seen here), and the bytes
/// written are counted.
/// </summary>
internal sealed class BackingStore(IBlockDevice device, WriteboostCounters counters)
{
    private long _busyTicks;

    public IBlockDevice Device => device;

    public void Write(long offsetBytes, ReadOnlySpan<byte> data, WriteOptions options)
    {
        long start = Stopwatch.GetTimestamp();
        device.Write(offsetBytes, data, options);
        Interlocked.Add(ref _busyTicks, Stopwatch.GetTimestamp() - start);
        counters.CountBackingWrite(data.Length);
    }

    public void Read(long offsetBytes, Span<byte> destination)
    {
        long start = Stopwatch.GetTimestamp();
        device.Read(offsetBytes, destination);
        Interlocked.Add(ref _busyTicks, Stopwatch.GetTimestamp() - start);
    }

    public void Flush()
    {
        long start = Stopwatch.GetTimestamp();
        device.Flush();
        Interlocked.Add(ref _busyTicks, Stopwatch.GetTimestamp() - start);
    }

    /// <summary>How long the store was busy (Stopwatch ticks) since the last call; the count starts again.</summary>
    public long TakeBusyTicks() => Interlocked.Exchange(ref _busyTicks, 0);
}
