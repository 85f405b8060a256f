using BenchmarkDotNet.Attributes;
using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Table;
using Writeboost.Devices;

namespace Writeboost.Microbenchmarks;

/// <summary>CRC-32C, the checksum of every metablock, segment and pmem record, and the combination that spares a second pass.</summary>
[MemoryDiagnoser]
public class Checksums
{
    private readonly byte[] _block = new byte[Units.BlockBytes];
    private readonly byte[] _segment = new byte[512 << 10];
    private uint _state = 0x12345678u;
    private uint _blockCrc = 0x9abcdef0u;

    [GlobalSetup]
    public void Fill()
    {
        new Random(1).NextBytes(_block);
        new Random(2).NextBytes(_segment);
    }

    [Benchmark(Description = "CRC-32C of a 4 KiB block")]
    public uint Block() => Crc32C.Append(0, _block);

    [Benchmark(Description = "CRC-32C of a 512 KiB segment")]
    public uint Segment() => Crc32C.Append(0, _segment);

    [Benchmark(Description = "CRC-32C combine (state, 4 KiB block's CRC)")]
    public uint Combine() => _state = Crc32C.Concat(_state, _blockCrc, Units.BlockBytes); // chained: not folded away
}

/// <summary>
/// A mode-1 write's copy into its RAM-buffer slot and the CRC its record needs: the slot is a fresh 4 KiB of a 64 MiB
/// arena each time (as a segment's slots are), the source the same hot block (as a writer's request is).
/// </summary>
[MemoryDiagnoser]
public class CopyIntoSlot
{
    private readonly byte[] _block = new byte[Units.BlockBytes];
    private readonly byte[] _arena = new byte[64 << 20];
    private int _slot;

    [GlobalSetup]
    public void Fill() => new Random(4).NextBytes(_block);

    [Benchmark(Description = "copy into a slot, then CRC-32C of the slot")]
    public uint CopyThenCrc()
    {
        Span<byte> slot = NextSlot();
        _block.CopyTo(slot);
        return Crc32C.Append(0, slot);
    }

    [Benchmark(Description = "copy into a slot with the CRC-32C in the same pass")]
    public uint CopyAndCrc() => Crc32C.CopyAndAppend(0, _block, NextSlot());

    private Span<byte> NextSlot()
    {
        _slot = (_slot + 1) % (_arena.Length / Units.BlockBytes);
        return _arena.AsSpan(_slot * Units.BlockBytes, Units.BlockBytes);
    }
}

/// <summary>The pmem record a mode-1 write persists beside its block, and the segment checksum a sealed segment gets.</summary>
[MemoryDiagnoser]
public class Records
{
    private readonly byte[] _record = new byte[PmemLayout.RecordBytes];
    private readonly byte[] _image = new byte[512 << 10];
    private uint _dataCrc;

    [GlobalSetup]
    public void Fill()
    {
        new Random(3).NextBytes(_image);
        _dataCrc = Crc32C.Append(0, _image.AsSpan(0, Units.BlockBytes));
    }

    [Benchmark(Description = "pmem record of one slot (CRC of the block known)")]
    public void PmemRecordWrite() => new PmemRecord(42, 1234, 0xFF, 7, 6).WriteTo(_record, _dataCrc);

    [Benchmark(Description = "segment checksum, order 10 (127 blocks, wide metablocks, their CRCs computed)")]
    public void SegmentChecksum() => SegmentImage.Finish(_image, 42, 127, MetablockOnDisk.WideSizeBytes);
}

/// <summary>A 4 KiB write placed into the open RAM buffer of a mode-0 device on memory devices (no FUA): the lock, the index, the copy.</summary>
[MemoryDiagnoser]
public class Placement
{
    private WriteboostDevice? _device;
    private readonly byte[] _data = new byte[Units.BlockBytes];
    private long _blocks;
    private long _next;

    [GlobalSetup]
    public void Open()
    {
        _device = WriteboostDevice.Open(new MemoryBlockDevice(256L << 20), new MemoryBlockDevice(64L << 20), new Tunables());
        _blocks = _device.SizeBytes / Units.BlockBytes;
    }

    [GlobalCleanup]
    public void Close() => _device?.Dispose();

    [Benchmark(Description = "4 KiB write placed into the RAM buffer (mode 0, no FUA)")]
    public void Place()
    {
        _next = (_next * 6364136223846793005L + 1442695040888963407L) & long.MaxValue;
        _device!.Write(_next % _blocks * Units.BlockBytes, _data);
    }
}
