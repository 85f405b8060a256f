// A consumer of the Writeboost packages: persistent memory through Pmem.Alloc, and a crash campaign against a
// design of its own (two tiny block devices, one honest, one that acknowledges FUA writes it only buffers).
using System.Runtime.Versioning;
using System.Text;
using Writeboost.Cache.Table;
using Writeboost.CrashTest;
using Writeboost.CrashTest.Targets;
using Writeboost.Devices;
using Writeboost.Pmem;

[assembly: SupportedOSPlatform("linux")]

string directory = args.Length > 0 ? args[0] : Path.GetTempPath();
string path = Path.Combine(directory, "consumer-pmem.img");
File.WriteAllBytes(path, new byte[1 << 20]);
using (PmemRegion region = Pmem.Alloc(path, startBytes: 0, lengthBytes: 1 << 20))
{
    byte[] message = Encoding.ASCII.GetBytes("hello pmem");
    region.Write(4096, message);
    region.Persist(4096, message.Length);
    byte[] back = new byte[message.Length];
    region.Read(4096, back);
    Console.WriteLine($"pmem {region.Backend}: read back '{Encoding.ASCII.GetString(back)}'");
}
using (PmemRegion reopened = Pmem.Alloc(path, 0, 1 << 20))
{
    byte[] back = new byte[10];
    reopened.Read(4096, back);
    Console.WriteLine($"pmem reopened: '{Encoding.ASCII.GetString(back)}'");
}

// The honest design must pass and the flawed one must be caught: exit 0 only when the harness judged both right.
int wrong = 0;
foreach (ICrashTarget target in new ICrashTarget[] { new WriteThroughTarget(LiesAboutFua: false), new WriteThroughTarget(LiesAboutFua: true) })
{
    CampaignSpec spec = new(CacheMode.Volatile, Workload.Random, Seed: 1, Ops: 80, MaxStates: 400) { Target = target, Rounds = 1 };
    CampaignResult result = Campaign.Run(spec, stopAtFirst: true);
    string verdict = result.Violations == 0 ? "no violations" : $"violation: {result.FirstViolation}";
    Console.WriteLine($"crash campaign {target.Name}: {result.StatesChecked} states checked, {verdict}");
    wrong += (result.Violations == 0) == ((WriteThroughTarget)target).LiesAboutFua ? 1 : 0;
}
Console.WriteLine(wrong == 0 ? "verdict: the harness passed the honest design and caught the flawed one" : "verdict: WRONG");
return wrong;

/// <summary>
/// A design under test: writes go straight to the backing device. The flawed variant keeps every write in memory
/// until the next flush, FUA or not: an acknowledged FUA write is lost by a crash before that flush.
/// </summary>
internal sealed record WriteThroughTarget(bool LiesAboutFua) : ICrashTarget
{
    public string Name => LiesAboutFua ? "buffers-fua" : "write-through";

    public TargetGeometry GeometryFor(Workload workload) => new(BackingBytes: 256 * 1024, CacheBytes: 0, PmemBytes: 0);

    public ICrashTargetDevice Open(TargetDevices devices, TargetOpen options) => new Opened(devices.Backing, LiesAboutFua);

    private sealed class Opened(IBlockDevice disk, bool liesAboutFua) : ICrashTargetDevice
    {
        private readonly Dictionary<long, byte[]> _pending = [];
        private readonly Lock _lock = new();

        public string Name => "consumer-device";
        public int SectorSizeBytes => disk.SectorSizeBytes;
        public long SizeBytes => disk.SizeBytes;
        public int RecoveryWork => 0;
        public string? RecoveryStory => null;

        public void Read(long offsetBytes, Span<byte> destination)
        {
            lock (_lock)
            {
                disk.Read(offsetBytes, destination);
                for (int at = 0; at < destination.Length; at += SectorSizeBytes)
                {
                    if (_pending.TryGetValue(offsetBytes + at, out byte[]? sector))
                    {
                        sector.CopyTo(destination[at..]);
                    }
                }
            }
        }

        public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
        {
            lock (_lock)
            {
                if (!liesAboutFua)
                {
                    disk.Write(offsetBytes, source, options);
                    return;
                }
                for (int at = 0; at < source.Length; at += SectorSizeBytes)
                {
                    _pending[offsetBytes + at] = source.Slice(at, SectorSizeBytes).ToArray();
                }
            }
        }

        public void Flush()
        {
            lock (_lock)
            {
                foreach ((long offsetBytes, byte[] sector) in _pending)
                {
                    disk.Write(offsetBytes, sector);
                }
                _pending.Clear();
                disk.Flush();
            }
        }

        public void Crash()
        {
        }

        public void Dispose()
        {
        }
    }
}
