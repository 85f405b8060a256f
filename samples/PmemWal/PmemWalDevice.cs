using System.Buffers.Binary;
using Writeboost.Cache.Format;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Samples.PmemWal;

/// <summary>Deliberate mistakes, for the harness to find (docs/prototyping.md).</summary>
public enum WalFlaw
{
    None,
    /// <summary>A write is acknowledged once its record is copied into pmem and its lines written back, without the fence.</summary>
    AckBeforeFence,
    /// <summary>Recovery starts a new log (a new epoch) before the replayed records are durable on the backing store.</summary>
    NewEpochBeforeBackingFlush,
    /// <summary>
    /// A record's CRC covers its data but not its header: a damaged header (its sector, its length) replays its data
    /// somewhere else. A crash never makes such a header (a torn record fails the CRC of its data); damaged media do.
    /// </summary>
    ChecksumOmitsHeader,
}

/// <summary>
/// A deliberately simple persistent-memory write-ahead log in front of a block device — the example design of
/// docs/prototyping.md, not part of the toolkit. Every write is appended to the log as one record (header + data,
/// cache-line aligned), persisted (write-back + fence), and only then acknowledged; reads see the newest logged
/// sectors over the backing store. When the log is full, the logged sectors are written to the backing store,
/// which is flushed, and the log starts over in a new epoch (one atomic 8-byte store of the epoch and its
/// complement: a damaged epoch is refused, not guessed). Recovery replays the
/// current epoch's records in order while they check out, writes them to the backing store, flushes it, and
/// starts a new epoch — so a record a crash left behind the tail can never be replayed later.
/// <code>
///  log: [magic u64][epoch u32][~epoch u32] ··· records from byte 64: [epoch u64][offset u64][length u32][crc u32][16 zero] data ···
/// </code>
/// The record's CRC-32C covers its first 20 bytes and its data.
/// </summary>
public sealed class PmemWalDevice : IBlockDevice
{
    private const ulong Magic = 0x314C415750424557; // "WBPWAL1"
    private const int HeaderBytes = 64;
    private const int RecordHeaderBytes = 32;
    private const int SectorBytes = 512;

    private readonly IBlockDevice _backing;
    private readonly PmemRegion _log;
    private readonly WalFlaw _flaw;
    private readonly Lock _lock = new();
    private readonly SortedDictionary<long, byte[]> _logged = []; // sector → newest logged content
    private ulong _epoch;
    private long _tailBytes = HeaderBytes;

    /// <summary>Opens the log on <paramref name="log"/> in front of <paramref name="backing"/>: formats a blank log, recovers any other.</summary>
    public PmemWalDevice(IBlockDevice backing, PmemRegion log, WalFlaw flaw = WalFlaw.None)
    {
        ArgumentNullException.ThrowIfNull(backing);
        ArgumentNullException.ThrowIfNull(log);
        _backing = backing;
        _log = log;
        _flaw = flaw;
        SizeBytes = backing.SizeBytes / SectorBytes * SectorBytes;
        Span<byte> header = stackalloc byte[16];
        log.Read(0, header);
        if (BinaryPrimitives.ReadUInt64LittleEndian(header) != Magic)
        {
            // Blank, or a format a crash interrupted (the epoch stored, the magic not yet): anything else holds
            // records or someone's data, and formatting over it would lose them without a word.
            if (!IsBlankBeyondEpoch(log))
            {
                throw new InvalidDataException($"{log.Name}: no pmem-wal magic, yet not blank (a damaged header, or not a log): refusing to format over it");
            }
            Format();
        }
        else
        {
            _epoch = EpochOf(BinaryPrimitives.ReadUInt64LittleEndian(header[8..]))
                ?? throw new InvalidDataException($"{log.Name}: the log's epoch fails its check (damaged media): which records are current cannot be told");
            Recover();
        }
    }

    public string Name => $"pmem-wal({_backing.Name}, {_log.Name})";
    public int SectorSizeBytes => SectorBytes;
    public long SizeBytes { get; }
    /// <summary>Records recovery replayed at open.</summary>
    public int RecordsReplayed { get; private set; }
    public bool DurabilityIsCheap => true;

    private static bool IsBlankBeyondEpoch(PmemRegion log)
    {
        byte[] bytes = new byte[log.LengthBytes];
        log.Read(0, bytes);
        ulong epoch = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8));
        return (epoch == 0 || epoch == Checked(1)) && !bytes.AsSpan(0, 8).ContainsAnyExcept((byte)0) && !bytes.AsSpan(16).ContainsAnyExcept((byte)0);
    }

    private void Format()
    {
        _log.Store64(8, Checked(_epoch = 1));
        _log.Persist(8, 8);
        Span<byte> magic = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(magic, Magic);
        _log.WritePersist(0, magic); // last: a log without its magic is formatted again
    }

    /// <summary>
    /// 1. walk the records of the current epoch from byte 64 while each has this epoch, a sane length and a good
    /// CRC; 2. write their sectors to the backing store, in order, and flush it; 3. start a new epoch (records of
    /// the old one are dead from then on).
    /// </summary>
    private void Recover()
    {
        foreach ((long _, long offset, byte[] data) in ValidRecords(_log, _epoch, SizeBytes, _flaw))
        {
            _backing.Write(offset, data);
            RecordsReplayed++;
        }
        if (_flaw == WalFlaw.NewEpochBeforeBackingFlush)
        {
            NewEpoch();
            _backing.Flush();
            return;
        }
        _backing.Flush();
        NewEpoch();
    }

    /// <summary>
    /// The records of <paramref name="epoch"/> from byte 64 on, in order, while each has this epoch, a sane length
    /// and a good CRC (the first that does not is the end: a torn record was never acknowledged): where each starts,
    /// the sector offset it was written at, and its data.
    /// </summary>
    private static IEnumerable<(long At, long OffsetBytes, byte[] Data)> ValidRecords(PmemRegion log, ulong epoch, long sizeBytes, WalFlaw flaw)
    {
        byte[] header = new byte[RecordHeaderBytes];
        long at = HeaderBytes;
        while (at + RecordHeaderBytes <= log.LengthBytes)
        {
            log.Read(at, header);
            long offset = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(8));
            int length = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(16));
            if (BinaryPrimitives.ReadUInt64LittleEndian(header) != epoch || length <= 0 || length % SectorBytes != 0 || offset < 0 || offset % SectorBytes != 0
                || offset + length > sizeBytes || at + RecordBytes(length) > log.LengthBytes)
            {
                yield break;
            }
            byte[] data = new byte[length];
            log.Read(at + RecordHeaderBytes, data);
            if (Checksum(header, data, flaw) != BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(20)))
            {
                yield break;
            }
            yield return (at, offset, data);
            at += RecordBytes(length);
        }
    }

    /// <summary>
    /// Where a log's metadata is (for the corruption sweep): its header, and the header of each record of its current
    /// epoch (epoch, sector, length and CRC: the 24 bytes of it in use). Empty for a log without its magic.
    /// </summary>
    public static IReadOnlyList<(long OffsetBytes, int LengthBytes)> Metadata(PmemRegion log, long backingBytes, WalFlaw flaw = WalFlaw.None)
    {
        ArgumentNullException.ThrowIfNull(log);
        Span<byte> header = stackalloc byte[16];
        log.Read(0, header);
        if (BinaryPrimitives.ReadUInt64LittleEndian(header) != Magic)
        {
            return [];
        }
        return EpochOf(BinaryPrimitives.ReadUInt64LittleEndian(header[8..])) is not { } epoch ? [(0, 16)]
            : [(0, 16), .. ValidRecords(log, epoch, backingBytes / SectorBytes * SectorBytes, flaw).Select(r => (r.At, 24))];
    }

    private void NewEpoch()
    {
        _log.Store64(8, Checked(++_epoch));
        _log.Persist(8, 8);
        _tailBytes = HeaderBytes;
    }

    /// <summary>
    /// The epoch as the header holds it: 32 bits and their complement, in one atomic 8-byte store. Unchecked, a
    /// damaged epoch made recovery skip the current records and then start the epoch they belong to: the next
    /// recovery replayed them over newer data (found by the corruption sweep, docs/prototyping.md).
    /// </summary>
    private static ulong Checked(ulong epoch) => (uint)epoch | ((ulong)~(uint)epoch << 32);

    /// <summary>The epoch of a header's word, or null when it fails its check.</summary>
    private static ulong? EpochOf(ulong word) => (uint)(word >> 32) == ~(uint)word ? (uint)word : null;

    private static long RecordBytes(int length) => (RecordHeaderBytes + length + PmemRegion.CacheLineBytes - 1) / PmemRegion.CacheLineBytes * PmemRegion.CacheLineBytes;

    private static uint Checksum(ReadOnlySpan<byte> header, ReadOnlySpan<byte> data, WalFlaw flaw) =>
        ~Crc32C.Append(Crc32C.Append(~0u, flaw == WalFlaw.ChecksumOmitsHeader ? [] : header[..20]), data);

    /// <summary>Appends the write to the log and persists it; acknowledged (returns) once it is durable. FUA changes nothing.</summary>
    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        DeviceRange.CheckAligned(this, offsetBytes, source.Length, "write");
        if (RecordBytes(source.Length) > _log.LengthBytes - HeaderBytes)
        {
            throw new ArgumentException($"{Name}: a {source.Length}-byte write does not fit in the log");
        }
        lock (_lock)
        {
            if (_tailBytes + RecordBytes(source.Length) > _log.LengthBytes)
            {
                Checkpoint();
            }
            byte[] header = new byte[RecordHeaderBytes];
            BinaryPrimitives.WriteUInt64LittleEndian(header, _epoch);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(8), offsetBytes);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(16), source.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(20), Checksum(header, source, _flaw));
            _log.Write(_tailBytes + RecordHeaderBytes, source);
            _log.Write(_tailBytes, header);
            _log.Flush(_tailBytes, RecordBytes(source.Length));
            if (_flaw != WalFlaw.AckBeforeFence)
            {
                _log.Drain();
            }
            _tailBytes += RecordBytes(source.Length);
            for (int s = 0; s < source.Length / SectorBytes; s++)
            {
                _logged[offsetBytes / SectorBytes + s] = source.Slice(s * SectorBytes, SectorBytes).ToArray();
            }
        }
    }

    /// <summary>The log is full: its sectors go to the backing store, which is flushed, and a new epoch begins.</summary>
    private void Checkpoint()
    {
        foreach ((long sector, byte[] data) in _logged)
        {
            _backing.Write(sector * SectorBytes, data);
        }
        _backing.Flush();
        _logged.Clear();
        NewEpoch();
    }

    public void Read(long offsetBytes, Span<byte> destination)
    {
        DeviceRange.CheckAligned(this, offsetBytes, destination.Length, "read");
        lock (_lock)
        {
            _backing.Read(offsetBytes, destination);
            for (int s = 0; s < destination.Length / SectorBytes; s++)
            {
                if (_logged.TryGetValue(offsetBytes / SectorBytes + s, out byte[]? data))
                {
                    data.CopyTo(destination[(s * SectorBytes)..]);
                }
            }
        }
    }

    /// <summary>Nothing to do: every write was durable when it was acknowledged.</summary>
    public void Flush()
    {
    }

    public void Dispose()
    {
    }
}
