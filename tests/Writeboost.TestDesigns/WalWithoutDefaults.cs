using Writeboost.CrashTest;
using Writeboost.CrashTest.Targets;
using Writeboost.Samples.PmemWal;

namespace Writeboost.TestDesigns;

/// <summary>The sample WAL behind a constructor that cannot be called without its flaw: a design that is built only from its arguments.</summary>
public sealed class WalWithoutDefaults(WalFlaw flaw) : ICrashTarget
{
    private readonly PmemWalTarget _wal = new(flaw);

    public string Name => _wal.Name;

    public bool OpensConcurrently => _wal.OpensConcurrently;

    public TargetGeometry GeometryFor(Workload workload) => _wal.GeometryFor(workload);

    public ICrashTargetDevice Open(TargetDevices devices, TargetOpen options) => _wal.Open(devices, options);
}
