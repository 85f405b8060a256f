using Writeboost.CrashTest;
using Writeboost.CrashTest.Targets;
using Writeboost.Pmem;
using Writeboost.Samples.PmemWal;

namespace Writeboost.TestDesigns;

/// <summary>
/// The sample WAL with its log on the pmem block backend (a block device under read-modify-write, durable after
/// the device's flush) instead of dax: what a prototyper with an emulated pmem file runs.
/// </summary>
public sealed class WalOnBlockPmem(WalFlaw flaw = WalFlaw.None) : ICrashTarget
{
    private readonly PmemWalTarget _wal = new(flaw);

    public string Name => $"{_wal.Name} on block pmem";

    public bool OpensConcurrently => _wal.OpensConcurrently;

    public TargetGeometry GeometryFor(Workload workload) => _wal.GeometryFor(workload) with { PmemBackend = PmemBackend.Block };

    public ICrashTargetDevice Open(TargetDevices devices, TargetOpen options) => _wal.Open(devices, options);

    public IReadOnlyList<MetadataRegion> MetadataRegions(TargetDevices media) => _wal.MetadataRegions(media);
}
