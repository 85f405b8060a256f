using Writeboost.CrashTest;
using Writeboost.CrashTest.Targets;
using Writeboost.Devices;
using Writeboost.Samples.PmemWal;

namespace Writeboost.TestDesigns;

/// <summary>
/// The sample WAL with a careless error path: a write whose log append fails with an I/O error is acknowledged
/// anyway (the error swallowed). What `wb faults --target` must catch: a fault that fired and was never reported.
/// </summary>
public sealed class WalSwallowingErrors : ICrashTarget
{
    private readonly PmemWalTarget _wal = new();

    public string Name => "wal-swallowing-errors";

    public TargetGeometry GeometryFor(Workload workload) => _wal.GeometryFor(workload);

    public ICrashTargetDevice Open(TargetDevices devices, TargetOpen options) => new Swallowing(_wal.Open(devices, options));

    private sealed class Swallowing(ICrashTargetDevice inner) : ICrashTargetDevice
    {
        public string Name => inner.Name;

        public int SectorSizeBytes => inner.SectorSizeBytes;

        public long SizeBytes => inner.SizeBytes;

        public int RecoveryWork => inner.RecoveryWork;

        public string? RecoveryStory => inner.RecoveryStory;

        public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
        {
            try
            {
                inner.Write(offsetBytes, source, options);
            }
            catch (IOException)
            {
                // the flaw: acknowledged as if it had been written
            }
        }

        public void Read(long offsetBytes, Span<byte> destination) => inner.Read(offsetBytes, destination);

        public void Flush() => inner.Flush();

        public void Crash() => inner.Crash();

        public void Dispose() => inner.Dispose();
    }
}
