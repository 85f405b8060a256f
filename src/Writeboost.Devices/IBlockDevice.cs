namespace Writeboost.Devices;

/// <summary>Per-write flags, as the block layer has them.</summary>
[Flags]
public enum WriteOptions
{
    /// <summary>An ordinary write: durable after a later <see cref="IBlockDevice.Flush"/>.</summary>
    None = 0,
    /// <summary>REQ_FUA: the write is durable when it completes, without waiting for a later flush.</summary>
    Fua = 1,
}

/// <summary>
/// A sector-addressed block device: a file, a real block device, or memory.
/// <para>Contract, for every implementation and decorator:</para>
/// <list type="bullet">
/// <item>Offsets and lengths are in bytes and must be multiples of <see cref="SectorSizeBytes"/>; the range must
/// lie inside <see cref="SizeBytes"/>. A call that breaks this throws before touching the media.</item>
/// <item><see cref="Write"/> always completes the whole range or throws; <see cref="Read"/> fills the whole span
/// or throws.</item>
/// <item>Durability (the crash model): a completed write is durable after a later <see cref="Flush"/> completes,
/// or at once when written with <see cref="WriteOptions.Fua"/>. Until then it may be lost, kept or torn per sector.</item>
/// <item>Calls may come from several threads at once; each call is positional (no shared file position).</item>
/// </list>
/// </summary>
public interface IBlockDevice : IDisposable
{
    /// <summary>The path (or a label for memory devices), used in every error message.</summary>
    string Name { get; }

    /// <summary>The unit of addressing and of atomicity: 512 for files, BLKSSZGET for block devices.</summary>
    int SectorSizeBytes { get; }

    /// <summary>The size of the device in bytes, a multiple of <see cref="SectorSizeBytes"/>.</summary>
    long SizeBytes { get; }

    /// <summary>Fills <paramref name="destination"/> from <paramref name="offsetBytes"/>: the newest completed write of each sector.</summary>
    void Read(long offsetBytes, Span<byte> destination);

    /// <summary>Writes <paramref name="source"/> at <paramref name="offsetBytes"/>; with <see cref="WriteOptions.Fua"/> it is durable when this returns.</summary>
    void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None);

    /// <summary>REQ_PREFLUSH: every write completed before this call is durable when it returns.</summary>
    void Flush();

    /// <summary>
    /// What the 4 KiB page at <paramref name="offsetBytes"/> (4 KiB aligned) holds now, as a token: a reader that kept
    /// what it read of the page under one token may take it as still read while this device, or any other, gives the
    /// same token. Null, the default: the device cannot tell, and the reader reads. Only in-memory images that share
    /// unchanged pages between devices tell (the crash harness's crash states).
    /// </summary>
    PageVersion? VersionOf(long offsetBytes) => null;

    /// <summary>
    /// Writes <paramref name="lengthBytes"/> of zeros at <paramref name="offsetBytes"/> (REQ_OP_WRITE_ZEROES): the same
    /// as one <see cref="Write"/> of that many zero bytes, durability included. A device that holds zeros cheaply
    /// (an in-memory image) overrides it; the default makes that one write.
    /// </summary>
    void WriteZeroes(long offsetBytes, long lengthBytes, WriteOptions options = WriteOptions.None) =>
        Write(offsetBytes, ZeroBytes.Of(lengthBytes), options);

    /// <summary>
    /// True when <see cref="Flush"/> and FUA writes wait on no device I/O, because every write is already durable
    /// when it returns (a write buffer in persistent memory): a server may run them on the thread that reads
    /// requests instead of handing them to another. A hint about cost only; the durability contract is the same.
    /// </summary>
    bool DurabilityIsCheap => false;
}

/// <summary>Zeros to write from, shared and never written: up to 1 MiB without allocating.</summary>
internal static class ZeroBytes
{
    private static readonly byte[] Shared = new byte[1 << 20];

    public static ReadOnlySpan<byte> Of(long lengthBytes) =>
        lengthBytes <= Shared.Length ? Shared.AsSpan(0, (int)lengthBytes) : new byte[checked((int)lengthBytes)];
}
