using Writeboost.CrashTest;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.Targets;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Samples.PmemWal;

/// <summary>The WAL as a crash-test target: the backing store the harness's workloads use, a 64 KiB log on dax pmem, no cache device.</summary>
public sealed record PmemWalTarget(WalFlaw Flaw = WalFlaw.None, long LogBytes = 64 * 1024) : ICrashTarget
{
    /// <summary>The log's pmem region: whole cache lines, room for its header and at least one 4 KiB write's record.</summary>
    public long LogBytes { get; } = LogBytes >= 8192 && LogBytes % 64 == 0 ? LogBytes
        : throw new ArgumentOutOfRangeException(nameof(LogBytes), LogBytes, "the log needs at least 8192 bytes, in whole 64-byte cache lines");

    public string Name => Flaw == WalFlaw.None ? "pmem-wal" : $"pmem-wal ({Flaw})";

    /// <summary>Each open keeps its state in its own device: crash states may be checked on every core.</summary>
    public bool OpensConcurrently => true;

    public TargetGeometry GeometryFor(Workload workload) =>
        new(workload switch { Workload.Wrap => 128 * 1024, Workload.Nbd => 1 << 20, _ => 64 * 1024 }, 0, LogBytes, PmemBackend.Dax);

    public ICrashTargetDevice Open(TargetDevices devices, TargetOpen options)
    {
        ArgumentNullException.ThrowIfNull(devices);
        return new Opened(new PmemWalDevice(devices.Backing, devices.Pmem ?? throw new ArgumentException("the WAL needs its pmem region"), Flaw));
    }

    /// <summary>The log's header and its current records' headers: what the corruption sweep damages bit by bit.</summary>
    public IReadOnlyList<MetadataRegion> MetadataRegions(TargetDevices media)
    {
        ArgumentNullException.ThrowIfNull(media);
        return media.Pmem is null ? []
            : [.. PmemWalDevice.Metadata(media.Pmem, media.Backing.SizeBytes, Flaw).Select(m => new MetadataRegion(m.OffsetBytes == 0 ? "log header" : "record headers", DeviceId.Pmem, m.OffsetBytes, m.LengthBytes))];
    }

    /// <summary>No threads of its own: a crash is just the end of its life.</summary>
    private sealed class Opened(PmemWalDevice wal) : ICrashTargetDevice
    {
        public string Name => wal.Name;
        public int SectorSizeBytes => wal.SectorSizeBytes;
        public long SizeBytes => wal.SizeBytes;
        public bool DurabilityIsCheap => true;
        public int RecoveryWork => wal.RecordsReplayed;
        public string? RecoveryStory => $"recovery replayed {wal.RecordsReplayed} log record(s) into the backing store and began a new epoch";

        public void Read(long offsetBytes, Span<byte> destination) => wal.Read(offsetBytes, destination);

        public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None) => wal.Write(offsetBytes, source, options);

        public void Flush() => wal.Flush();

        public void Crash()
        {
        }

        public void Dispose() => wal.Dispose();
    }
}
