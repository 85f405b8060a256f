using Writeboost.Devices;

namespace Writeboost.Pmem;

/// <summary>How a region's bytes are reached.</summary>
public enum PmemBackend
{
    /// <summary>Chosen from what the path is (see <see cref="Pmem.ChooseBackend"/>).</summary>
    Auto,
    /// <summary>Byte addressing by read-modify-write of whole sectors of a block device or file.</summary>
    Block,
    /// <summary>A memory mapping; persistence by cache-line write-back + fence (libpmem), or msync where not pmem.</summary>
    Dax,
}

/// <summary>What it takes for a store to become durable (libpmem2's PMEM2_GRANULARITY_* names).</summary>
public enum PmemGranularity
{
    /// <summary>Stores are durable once visible (eADR: CPU caches are in the persistence domain).</summary>
    Byte,
    /// <summary>A cache-line write-back (clwb/clflushopt) + fence is needed (ADR).</summary>
    CacheLine,
    /// <summary>A page-level sync is needed (msync, or a block device flush).</summary>
    Page,
}

/// <summary>
/// A byte-addressed range of persistent memory: the RFC's Alloc / Write / Read / Persist / Free.
/// <para>Durability contract (the crash model of pmem): a byte written by <see cref="Write"/> is durable after a
/// <see cref="Flush"/> of a range covering it followed by a <see cref="Drain"/> (together: <see cref="Persist"/>).
/// Before that it may or may not have reached the media, per 64-byte line, in the order it was stored.
/// <see cref="Store64"/> is an 8-byte atomic store: after a crash the word holds the old or the new value,
/// never a mix.</para>
/// <para>Every offset is relative to the start of the region. A call outside the region throws before any byte
/// is touched. Writes to overlapping ranges from several threads at once are the caller's to order.</para>
/// </summary>
public abstract class PmemRegion : IDisposable
{
    /// <summary>The CPU cache line: the unit in which stores reach pmem under ADR.</summary>
    public const int CacheLineBytes = 64;

    private int _disposed;

    /// <summary>Sets the region's <paramref name="name"/> (for messages) and length.</summary>
    protected PmemRegion(string name, long lengthBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(lengthBytes);
        Name = name;
        LengthBytes = lengthBytes;
    }

    /// <summary>The path the region lives on (with the start offset), for messages.</summary>
    public string Name { get; }
    /// <summary>The length of the region in bytes; offsets run from 0 to this.</summary>
    public long LengthBytes { get; }
    /// <summary>How the region's bytes are reached.</summary>
    public abstract PmemBackend Backend { get; }
    /// <summary>What it takes for a store to become durable on this region.</summary>
    public abstract PmemGranularity Granularity { get; }
    /// <summary>True when persistence uses cache-line flushes (the mapping is pmem, or forced by PMEM_IS_PMEM_FORCE=1).</summary>
    public abstract bool IsPmem { get; }

    /// <summary>Stores <paramref name="source"/> at <paramref name="offsetBytes"/>: visible at once, durable only after <see cref="Persist"/> (or a Flush and a Drain) of a range covering it.</summary>
    public void Write(long offsetBytes, ReadOnlySpan<byte> source)
    {
        Check(offsetBytes, source.Length, "write");
        WriteCore(offsetBytes, source);
    }

    /// <summary>Copies the region's bytes from <paramref name="offsetBytes"/> into <paramref name="destination"/>.</summary>
    public void Read(long offsetBytes, Span<byte> destination)
    {
        Check(offsetBytes, destination.Length, "read");
        ReadCore(offsetBytes, destination);
    }

    /// <summary>Starts the write-back of the lines covering the range (pmem_flush); durable only after <see cref="Drain"/>.</summary>
    public void Flush(long offsetBytes, long lengthBytes)
    {
        Check(offsetBytes, lengthBytes, "flush");
        FlushCore(offsetBytes, lengthBytes);
    }

    /// <summary>The fence (pmem_drain): every range flushed before is durable when this returns.</summary>
    public void Drain()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        DrainCore();
    }

    /// <summary>Flush + Drain of one range (pmem_persist).</summary>
    public void Persist(long offsetBytes, long lengthBytes)
    {
        Check(offsetBytes, lengthBytes, "persist");
        PersistCore(offsetBytes, lengthBytes);
    }

    /// <summary>
    /// Write and start its write-back in one call, durable after <see cref="Drain"/>: the same as <see cref="Write"/>
    /// then <see cref="Flush"/> of the range (pmem_memcpy_nodrain on the dax backend, whose non-temporal stores
    /// skip the cache and so the write-back of each line, several times cheaper for a 4 KiB block than stores then clwb).
    /// </summary>
    public void WriteFlush(long offsetBytes, ReadOnlySpan<byte> source)
    {
        Check(offsetBytes, source.Length, "write+flush");
        WriteFlushCore(offsetBytes, source);
    }

    /// <summary>Write and persist in one call (pmem_memcpy_persist on the dax backend).</summary>
    public void WritePersist(long offsetBytes, ReadOnlySpan<byte> source)
    {
        Check(offsetBytes, source.Length, "write+persist");
        WritePersistCore(offsetBytes, source);
    }

    /// <summary>An aligned, atomic 8-byte store (not yet durable): the commit word of a record.</summary>
    public void Store64(long offsetBytes, ulong value)
    {
        Check(offsetBytes, sizeof(ulong), "store64");
        if (offsetBytes % sizeof(ulong) != 0)
        {
            throw new ArgumentException($"store64 {Name} at offset {offsetBytes}: an atomic 8-byte store must be 8-byte aligned");
        }
        Store64Core(offsetBytes, value);
    }

    /// <summary>
    /// What the 4 KiB page at <paramref name="offsetBytes"/> (4 KiB aligned) holds now, as a token: a reader that kept
    /// what it read of the page under one token may take it as still read while this region, or any other, gives the
    /// same token. Null, the default: the region cannot tell (a mapping or a device changes under any store), and
    /// the reader reads. Only in-memory images that share unchanged pages between regions tell (the crash harness's:
    /// thousands of crash states over one base, each recovered in turn).
    /// </summary>
    public PageVersion? VersionOf(long offsetBytes)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        PageVersion.CheckPage(Name, LengthBytes, offsetBytes);
        return VersionOfCore(offsetBytes);
    }

    /// <summary>Releases the region (the RFC's Free). Nothing is persisted by freeing: persist first.</summary>
    public void Free() => Dispose();

    /// <summary>Releases the region, as <see cref="Free"/>.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Dispose(disposing: true);
            GC.SuppressFinalize(this);
        }
    }

    /// <summary>The backend's store, after the range was checked.</summary>
    protected abstract void WriteCore(long offsetBytes, ReadOnlySpan<byte> source);
    /// <summary>The backend's copy out, after the range was checked.</summary>
    protected abstract void ReadCore(long offsetBytes, Span<byte> destination);
    /// <summary>Starts writing back the lines (or sectors) of the range; durable after <see cref="DrainCore"/>.</summary>
    protected abstract void FlushCore(long offsetBytes, long lengthBytes);
    /// <summary>Waits for every write-back started before it (the fence).</summary>
    protected abstract void DrainCore();

    /// <summary>Flush then drain; a backend with a cheaper combined path overrides it.</summary>
    protected virtual void PersistCore(long offsetBytes, long lengthBytes)
    {
        FlushCore(offsetBytes, lengthBytes);
        DrainCore();
    }

    /// <summary>Store then flush; a backend with a non-temporal copy overrides it.</summary>
    protected virtual void WriteFlushCore(long offsetBytes, ReadOnlySpan<byte> source)
    {
        WriteCore(offsetBytes, source);
        FlushCore(offsetBytes, source.Length);
    }

    /// <summary>Store then persist; a backend with a non-temporal copy overrides it.</summary>
    protected virtual void WritePersistCore(long offsetBytes, ReadOnlySpan<byte> source)
    {
        WriteCore(offsetBytes, source);
        PersistCore(offsetBytes, source.Length);
    }

    /// <summary>An 8-byte store; a backend that can store the word atomically overrides it.</summary>
    protected virtual void Store64Core(long offsetBytes, ulong value)
    {
        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        WriteCore(offsetBytes, bytes);
    }

    /// <summary>The page's token, after the offset was checked; null unless the backend can tell (see <see cref="VersionOf"/>).</summary>
    protected virtual PageVersion? VersionOfCore(long offsetBytes) => null;

    /// <summary>Releases what the backend holds (the mapping, the device when owned).</summary>
    protected abstract void Dispose(bool disposing);

    private void Check(long offsetBytes, long lengthBytes, string operation)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        DeviceRange.CheckInside(Name, LengthBytes, offsetBytes, lengthBytes, operation);
    }
}
