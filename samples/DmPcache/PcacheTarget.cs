using Writeboost.CrashTest;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.Targets;
using Writeboost.Pmem;

namespace Writeboost.Samples.DmPcache;

/// <summary>
/// dm-pcache as a crash-test target: the workload's backing device, no cache device, a dax pmem region of
/// <paramref name="Segments"/> segments of <paramref name="SegmentBytes"/> (scaled down from 16 MiB, so the log
/// wraps, writeback and gc run within a few requests).
/// </summary>
/// <param name="Bug">A bug fixed after its merge, or none.</param>
public sealed record PcacheTarget(PcacheBug Bug = PcacheBug.None, int Segments = 8, int SegmentBytes = 32 * 1024) : ICrashTarget
{
    public int Segments { get; } = Segments >= 6 ? Segments : throw new ArgumentOutOfRangeException(nameof(Segments), Segments,
        "at least 6: with fewer, a recovered cache whose keys pin every segment has none free, and this synchronous model has no worker to wait for");

    public int SegmentBytes { get; } = SegmentBytes >= 32 * 1024 && SegmentBytes % 4096 == 0 ? SegmentBytes
        : throw new ArgumentOutOfRangeException(nameof(SegmentBytes), SegmentBytes, "whole 4 KiB pages, at least 32 KiB (12 KiB of metadata and 20 KiB of data)");

    public string Name => "dm-pcache" + (Bug == PcacheBug.None ? "" : $" ({Bug})");

    /// <summary>Each open keeps its state in its own device: crash states may be checked on every core.</summary>
    public bool OpensConcurrently => true;

    public TargetGeometry GeometryFor(Workload workload) =>
        new(workload switch { Workload.Wrap => 128 * 1024, Workload.Nbd => 1 << 20, _ => 64 * 1024 }, 0, PcacheDevice.SegmentsOffset + (long)Segments * SegmentBytes, PmemBackend.Dax);

    public ICrashTargetDevice Open(TargetDevices devices, TargetOpen options)
    {
        ArgumentNullException.ThrowIfNull(devices);
        return new Opened(new PcacheDevice(devices.Backing, devices.Pmem ?? throw new ArgumentException("dm-pcache needs its pmem region"), SegmentBytes, Bug));
    }

    /// <summary>
    /// The superblock, both copies of cache_info, the two tail positions and each segment's info and generation:
    /// what the corruption sweep damages bit by bit. The key sets move with the log, inside the segments: the
    /// sweep's random flips find them.
    /// </summary>
    public IReadOnlyList<MetadataRegion> MetadataRegions(TargetDevices media) => [.. PcacheDevice.MetadataOf(Segments, SegmentBytes).Select(m => new MetadataRegion(m.Name, DeviceId.Pmem, m.OffsetBytes, m.LengthBytes))];

    /// <summary>No threads of its own: a crash is just the end of its life.</summary>
    private sealed class Opened(PcacheDevice cache) : ICrashTargetDevice
    {
        private bool _crashed;

        public string Name => cache.Name;
        public int SectorSizeBytes => cache.SectorSizeBytes;
        public long SizeBytes => cache.SizeBytes;
        public bool DurabilityIsCheap => true;
        public IReadOnlyCollection<string> RecoveryDebris => cache.Debris;

        public int RecoveryWork => cache.Started.Ksets + cache.Started.Stale * 4 + (cache.Started.NewCache ? 1000 : 0);

        public string? RecoveryStory => cache.Started.NewCache
            ? "start: no valid cache_info: a new cache, formatted"
            : $"start: replayed {cache.Started.Ksets} key set(s), {cache.Started.Keys} key(s), {cache.Started.Stale} stale (their segment's generation moved on)";

        public void Read(long offsetBytes, Span<byte> destination) => cache.Read(offsetBytes, destination);

        public void Write(long offsetBytes, ReadOnlySpan<byte> source, Writeboost.Devices.WriteOptions options = Writeboost.Devices.WriteOptions.None) =>
            cache.Write(offsetBytes, source, options);

        public void Flush() => cache.Flush();

        public void Crash() => _crashed = true;

        /// <summary>A clean close closes the open key set (as a suspend does); a crashed one writes nothing more.</summary>
        public void Dispose()
        {
            if (!_crashed)
            {
                cache.Dispose();
            }
        }
    }
}
