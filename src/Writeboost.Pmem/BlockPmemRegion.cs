using System.Buffers;
using Writeboost.Devices;

namespace Writeboost.Pmem;

/// <summary>
/// Byte addressing emulated over a block device by read-modify-write. An unaligned write reads only the partial
/// head and tail sectors (at most two reads, one when they are the same sector) and writes the whole aligned run
/// once; a read reads the covering aligned run once. Flush is free (the bytes already went to the device);
/// Drain is the device flush, so durability is exactly the block device's.
/// </summary>
public sealed class BlockPmemRegion : PmemRegion
{
    private readonly IBlockDevice _device;
    private readonly long _startBytes;
    private readonly bool _ownsDevice;
    // Two writes sharing a partial sector must not interleave their read-modify-write.
    private readonly Lock _writeLock = new();

    internal BlockPmemRegion(IBlockDevice device, long startBytes, long lengthBytes, bool ownsDevice)
        : base($"{device.Name}@{startBytes}", lengthBytes)
    {
        _device = device;
        _startBytes = startBytes;
        _ownsDevice = ownsDevice;
    }

    /// <inheritdoc />
    public override PmemBackend Backend => PmemBackend.Block;
    /// <inheritdoc />
    public override PmemGranularity Granularity => PmemGranularity.Page;
    /// <inheritdoc />
    public override bool IsPmem => false;
    /// <summary>The I/O this region issued to its device: reads, writes, flushes.</summary>
    public IoCounters Counters { get; } = new();
    /// <summary>The block device (or file) the region lies on.</summary>
    public IBlockDevice Device => _device;

    /// <inheritdoc />
    protected override void WriteCore(long offsetBytes, ReadOnlySpan<byte> source)
    {
        if (source.IsEmpty)
        {
            return;
        }
        int sector = _device.SectorSizeBytes;
        long startBytes = _startBytes + offsetBytes;
        long endBytes = startBytes + source.Length;
        long alignedStart = startBytes / sector * sector;
        long alignedEnd = (endBytes + sector - 1) / sector * sector;
        int runLength = checked((int)(alignedEnd - alignedStart));
        byte[] run = ArrayPool<byte>.Shared.Rent(runLength);
        try
        {
            Span<byte> runSpan = run.AsSpan(0, runLength);
            lock (_writeLock)
            {
                bool headPartial = startBytes != alignedStart;
                bool tailPartial = endBytes != alignedEnd;
                if (headPartial)
                {
                    ReadDevice(alignedStart, runSpan[..sector]);
                }
                long tailSector = alignedEnd - sector;
                if (tailPartial && !(headPartial && tailSector == alignedStart))
                {
                    ReadDevice(tailSector, runSpan[(runLength - sector)..]);
                }
                source.CopyTo(runSpan[(int)(startBytes - alignedStart)..]);
                _device.Write(alignedStart, runSpan);
                Counters.CountWrite(runLength, WriteOptions.None);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(run);
        }
    }

    /// <inheritdoc />
    protected override void ReadCore(long offsetBytes, Span<byte> destination)
    {
        if (destination.IsEmpty)
        {
            return;
        }
        int sector = _device.SectorSizeBytes;
        long startBytes = _startBytes + offsetBytes;
        long alignedStart = startBytes / sector * sector;
        long alignedEnd = (startBytes + destination.Length + sector - 1) / sector * sector;
        if (alignedStart == startBytes && alignedEnd == startBytes + destination.Length)
        {
            ReadDevice(startBytes, destination);
            return;
        }
        int runLength = checked((int)(alignedEnd - alignedStart));
        byte[] run = ArrayPool<byte>.Shared.Rent(runLength);
        try
        {
            ReadDevice(alignedStart, run.AsSpan(0, runLength));
            run.AsSpan((int)(startBytes - alignedStart), destination.Length).CopyTo(destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(run);
        }
    }

    /// <inheritdoc />
    protected override void FlushCore(long offsetBytes, long lengthBytes)
    {
        // Nothing to write back: Write already handed the sectors to the device. Drain makes them durable.
    }

    /// <inheritdoc />
    protected override void DrainCore()
    {
        _device.Flush();
        Counters.CountFlush();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing && _ownsDevice)
        {
            _device.Dispose();
        }
    }

    private void ReadDevice(long offsetBytes, Span<byte> destination)
    {
        _device.Read(offsetBytes, destination);
        Counters.CountRead(destination.Length);
    }
}
