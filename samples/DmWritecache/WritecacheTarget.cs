using Writeboost.CrashTest;
using Writeboost.CrashTest.Recording;
using Writeboost.CrashTest.Targets;
using Writeboost.Pmem;

namespace Writeboost.Samples.DmWritecache;

/// <summary>
/// dm-writecache's pmem mode as a crash-test target: the workload's origin, no cache device, a 16 KiB dax pmem
/// region (30 blocks of 512 bytes: small, so writeback and a full cache come within a few requests).
/// </summary>
/// <param name="Bug">A bug from its fix history, or none.</param>
/// <param name="PmemBytes">The pmem region.</param>
/// <param name="WritebackFua">Writeback with FUA (the default) or plain writes and one origin flush (<c>nofua</c>).</param>
/// <param name="LockReleaseFences">x86's lock semantics the kernel relies on (<see cref="WritecacheSettings.LockReleaseFences"/>); false: the pmem API's rule alone.</param>
public sealed record WritecacheTarget(WritecacheBug Bug = WritecacheBug.None, long PmemBytes = 16 * 1024, bool WritebackFua = true, bool LockReleaseFences = true) : ICrashTarget
{
    public long PmemBytes { get; } = PmemBytes >= 4096 && PmemBytes % 4096 == 0 ? PmemBytes
        : throw new ArgumentOutOfRangeException(nameof(PmemBytes), PmemBytes, "whole 4 KiB pages, at least one");

    public string Name => "dm-writecache" + (WritebackFua ? "" : " nofua") + (LockReleaseFences ? "" : " (lock releases do not fence)") + (Bug == WritecacheBug.None ? "" : $" ({Bug})");

    /// <summary>Each open keeps its state in its own device: crash states may be checked on every core.</summary>
    public bool OpensConcurrently => true;

    public TargetGeometry GeometryFor(Workload workload) =>
        new(workload switch { Workload.Wrap => 128 * 1024, Workload.Nbd => 1 << 20, _ => 64 * 1024 }, 0, PmemBytes, PmemBackend.Dax);

    public ICrashTargetDevice Open(TargetDevices devices, TargetOpen options)
    {
        ArgumentNullException.ThrowIfNull(devices);
        return new Opened(new WritecacheDevice(devices.Backing, devices.Pmem ?? throw new ArgumentException("dm-writecache needs its pmem region"),
            new WritecacheSettings(WritebackFua: WritebackFua, LockReleaseFences: LockReleaseFences), Bug));
    }

    /// <summary>
    /// The superblock and the entries: what the corruption sweep damages bit by bit. Like the kernel's, they carry no
    /// checksum (dm-writecache leaves media errors on pmem to the hardware's poison reporting), and the data no
    /// checksum either: the sweep shows what that costs (docs/prototyping.md).
    /// </summary>
    public IReadOnlyList<MetadataRegion> MetadataRegions(TargetDevices media)
    {
        ((long sbAt, int sbBytes), (long entriesAt, long entriesBytes)) = WritecacheDevice.MetadataOf(PmemBytes);
        return [new("superblock", DeviceId.Pmem, sbAt, sbBytes), new("entries", DeviceId.Pmem, entriesAt, entriesBytes)];
    }

    /// <summary>No threads of its own: a crash is just the end of its life.</summary>
    private sealed class Opened(WritecacheDevice cache) : ICrashTargetDevice
    {
        public string Name => cache.Name;
        public int SectorSizeBytes => cache.SectorSizeBytes;
        public long SizeBytes => cache.SizeBytes;
        public bool DurabilityIsCheap => true;
        public int RecoveryWork => cache.Recovered.Discarded + cache.Recovered.Duplicates;

        public string? RecoveryStory =>
            $"resume at epoch {cache.SeqCount}: {cache.Recovered.Kept} committed block(s) kept, {cache.Recovered.Discarded} uncommitted discarded, {cache.Recovered.Duplicates} older duplicate(s) freed";

        public void Read(long offsetBytes, Span<byte> destination) => cache.Read(offsetBytes, destination);

        public void Write(long offsetBytes, ReadOnlySpan<byte> source, Writeboost.Devices.WriteOptions options = Writeboost.Devices.WriteOptions.None) =>
            cache.Write(offsetBytes, source, options);

        public void Flush() => cache.Flush();

        private bool _crashed;

        public void Crash() => _crashed = true;

        /// <summary>A clean close commits (as a suspend does); a crashed one writes nothing more.</summary>
        public void Dispose()
        {
            if (!_crashed)
            {
                cache.Dispose();
            }
        }
    }
}
