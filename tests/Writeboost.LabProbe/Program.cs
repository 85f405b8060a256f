using System.Globalization;
using Writeboost.Devices;
using Writeboost.Pmem;
using PmemApi = Writeboost.Pmem.Pmem;

// The lab's Pmem API probe, run inside the VM on real drivers. Prints "key value" lines; exit 0 when the probe
// ran (the lab tests judge the values), 1 when a check it makes itself failed, 2 on bad arguments.
//   probe write  PATH block|dax START LENGTH SEED [--direct]   writes a seeded pattern with WritePersist
//   probe verify PATH block|dax START LENGTH SEED              reads it back and compares
//   probe rmw    PATH                                           block backend's read-modify-write I/O counts
//   probe map    PATH START LENGTH                              maps a dax region, or prints the error it got
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: probe write|verify|rmw|map PATH ...");
    return 2;
}
CultureInfo invariant = CultureInfo.InvariantCulture;
string verb = args[0];
string path = args[1];
try
{
    switch (verb)
    {
        case "write":
        case "verify":
        {
            PmemBackend backend = args[2] == "dax" ? PmemBackend.Dax : PmemBackend.Block;
            long start = long.Parse(args[3], invariant);
            int length = int.Parse(args[4], invariant);
            int seed = int.Parse(args[5], invariant);
            bool direct = args.Contains("--direct");
            using PmemRegion region = PmemApi.Alloc(path, start, length, backend, direct);
            Describe(path, region);
            (byte[] expected, bool[] written, int writes) = Pattern.Build(length, seed);
            if (verb == "write")
            {
                Pattern.Write(region, length, seed);
                Console.WriteLine($"writes {writes}");
                Console.WriteLine("written yes");
                return 0;
            }
            byte[] actual = new byte[length];
            region.Read(0, actual);
            int wrong = 0;
            int firstWrong = -1;
            for (int i = 0; i < length; i++)
            {
                if (written[i] && actual[i] != expected[i])
                {
                    wrong++;
                    firstWrong = firstWrong < 0 ? i : firstWrong;
                }
            }
            Console.WriteLine($"checked_bytes {written.Count(w => w)}");
            Console.WriteLine($"wrong_bytes {wrong}");
            Console.WriteLine($"first_wrong {firstWrong}");
            return wrong == 0 ? 0 : 1;
        }
        case "rmw":
        {
            using PmemRegion region = PmemApi.Alloc(path, 0, -1, PmemBackend.Block, direct: true);
            BlockPmemRegion block = (BlockPmemRegion)region;
            Describe(path, region);
            int sector = block.Device.SectorSizeBytes;
            Count("rmw_inside_one_sector", block, () => region.Write(sector + 10, new byte[100]));
            Count("rmw_partial_head_and_tail", block, () => region.Write(sector + 10, new byte[3 * sector]));
            Count("rmw_aligned", block, () => region.Write(8 * sector, new byte[8 * sector]));
            Count("rmw_persist", block, () => region.Persist(0, sector));
            return 0;
        }
        case "map":
        {
            long start = long.Parse(args[2], invariant);
            long length = long.Parse(args[3], invariant);
            try
            {
                using PmemRegion region = PmemApi.Alloc(path, start, length, PmemBackend.Dax);
                Describe(path, region);
                byte[] data = [1, 2, 3, 4, 5, 6, 7, 8];
                region.WritePersist(region.LengthBytes - data.Length, data);
                byte[] back = new byte[data.Length];
                region.Read(region.LengthBytes - data.Length, back);
                Console.WriteLine($"map ok");
                Console.WriteLine($"last_bytes_read_back {(back.SequenceEqual(data) ? "yes" : "no")}");
            }
            catch (Exception error) when (error is ArgumentException or IOException)
            {
                Console.WriteLine($"map refused");
                Console.WriteLine($"error {error.GetType().Name}: {error.Message}");
            }
            return 0;
        }
        default:
            Console.Error.WriteLine($"probe: unknown verb {verb}");
            return 2;
    }
}
catch (Exception error) when (error is IOException or ArgumentException or UnauthorizedAccessException or DllNotFoundException)
{
    Console.WriteLine($"error {error.GetType().Name}: {error.Message}");
    return 1;
}

static void Describe(string path, PmemRegion region)
{
    DaxPmemRegion? dax = region as DaxPmemRegion;
    BlockPmemRegion? block = region as BlockPmemRegion;
    Console.WriteLine($"backend {region.Backend.ToString().ToLowerInvariant()}");
    Console.WriteLine($"size_bytes {PmemApi.SizeOf(path)}");
    Console.WriteLine($"length_bytes {region.LengthBytes}");
    Console.WriteLine($"is_pmem {YesNo(region.IsPmem)}");
    Console.WriteLine($"granularity {region.Granularity.ToString().ToLowerInvariant()}");
    if (dax is not null)
    {
        Console.WriteLine($"map_sync {YesNo(dax.IsMapSync)}");
        Console.WriteLine($"device_dax {YesNo(dax.IsDeviceDax)}");
    }
    if (block?.Device is FileBlockDevice file)
    {
        Console.WriteLine($"block_device {YesNo(file.IsBlockDevice)}");
        Console.WriteLine($"o_direct {YesNo(file.IsDirect)}");
        Console.WriteLine($"sector_bytes {file.SectorSizeBytes}");
        Console.WriteLine($"device_size_bytes {file.SizeBytes}");
    }
}

static string YesNo(bool value) => value ? "yes" : "no";

static void Count(string name, BlockPmemRegion region, Action action)
{
    IoCountersSnapshot before = region.Counters.Snapshot();
    action();
    IoCountersSnapshot delta = region.Counters.Snapshot() - before;
    Console.WriteLine($"{name} reads {delta.Reads} writes {delta.Writes} flushes {delta.Flushes}");
}

/// <summary>A seeded sequence of writes at every alignment (1 byte to 9000, any offset), each persisted.</summary>
internal static class Pattern
{
    private const int Writes = 400;

    internal static (byte[] Expected, bool[] Written, int Writes) Build(int length, int seed)
    {
        byte[] expected = new byte[length];
        bool[] written = new bool[length];
        foreach ((int offset, byte[] data) in Sequence(length, seed))
        {
            data.CopyTo(expected, offset);
            Array.Fill(written, true, offset, data.Length);
        }
        return (expected, written, Writes);
    }

    internal static void Write(PmemRegion region, int length, int seed)
    {
        foreach ((int offset, byte[] data) in Sequence(length, seed))
        {
            region.WritePersist(offset, data);
        }
    }

    private static IEnumerable<(int Offset, byte[] Data)> Sequence(int length, int seed)
    {
#pragma warning disable CA5394 // a reproducible test pattern, not security
        Random random = new(seed);
        for (int i = 0; i < Writes; i++)
        {
            int size = random.Next(0, 3) switch { 0 => random.Next(1, 9), 1 => random.Next(1, 200), _ => random.Next(1, 9000) };
            size = Math.Min(size, length);
            int offset = random.Next(0, length - size + 1);
            byte[] data = new byte[size];
            random.NextBytes(data);
            yield return (offset, data);
        }
#pragma warning restore CA5394
    }
}
