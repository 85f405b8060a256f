using Writeboost.Cache.Core;
using Writeboost.Cache.Table;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Tests.Support;

/// <summary>A backing store, a cache device and a reference copy of what the writeboost device must read back.</summary>
internal sealed class CacheRig : IDisposable
{
    public CacheRig(long backingBytes, int segmentSizeOrder, int segments, IReadOnlyDictionary<string, long>? keys = null, PmemRegion? pmem = null)
    {
        Pmem = pmem;
        Backing = new MemoryBlockDevice(backingBytes, name: "backing");
        long segmentBytes = 512L << segmentSizeOrder;
        Cache = new MemoryBlockDevice((1 << 20) + segments * segmentBytes, name: "cache");
        Dictionary<string, long> all = new(keys ?? new Dictionary<string, long>()) { ["segment_size_order"] = segmentSizeOrder };
        Keys = all;
        Reference = new byte[backingBytes];
        Device = Open();
    }

    public MemoryBlockDevice Backing { get; }
    public MemoryBlockDevice Cache { get; }
    public IReadOnlyDictionary<string, long> Keys { get; }
    public byte[] Reference { get; }
    public WriteboostDevice Device { get; private set; }

    /// <summary>Mode 1's pmem buffer (null: mode 0). The rig owns it.</summary>
    public PmemRegion? Pmem { get; }

    public WriteboostDevice Open() => WriteboostDevice.Open(Backing, Cache, new Tunables(Keys), pmem: Pmem);

    /// <summary>Clean close (seal + flush) and open again: recovery from the logs.</summary>
    public void Reopen()
    {
        Device.Dispose();
        Device = Open();
    }

    /// <summary>Unclean close: the RAM buffer is lost, workers stop mid-flight; then recovery.</summary>
    public void Crash()
    {
        Device.Abandon();
        Device = Open();
    }

    public void Write(long offsetBytes, byte[] data, WriteOptions options = WriteOptions.None)
    {
        Device.Write(offsetBytes, data, options);
        data.CopyTo(Reference, offsetBytes);
    }

    /// <summary>Writes 1..12 sectors of random data at a random sector (so across block boundaries); the options are drawn after the data.</summary>
    public void WriteRandomSectors(Random random, Func<WriteOptions>? options = null)
    {
        int length = random.Next(1, 13);
        int sector = random.Next(0, Reference.Length / 512 - length + 1);
        byte[] data = new byte[length * 512];
        random.NextBytes(data);
        Write(sector * 512L, data, options?.Invoke() ?? WriteOptions.None);
    }

    public void AssertReadsBack(long offsetBytes, int lengthBytes, string because)
    {
        byte[] back = new byte[lengthBytes];
        Device.Read(offsetBytes, back);
        if (!back.AsSpan().SequenceEqual(Reference.AsSpan((int)offsetBytes, lengthBytes)))
        {
            int first = Enumerable.Range(0, lengthBytes).First(i => back[i] != Reference[offsetBytes + i]);
            Assert.Fail($"{because}: byte {offsetBytes + first} (sector {(offsetBytes + first) / 512}) reads {back[first]}, expected {Reference[offsetBytes + first]}");
        }
    }

    public void AssertWholeDeviceReadsBack(string because) => AssertReadsBack(0, Reference.Length, because);

    public void Dispose()
    {
        Device.Dispose();
        Backing.Dispose();
        Cache.Dispose();
        Pmem?.Dispose();
    }
}
