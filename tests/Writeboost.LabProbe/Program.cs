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
//   probe ledger-write  DEVICE LEDGER COUNT BLOCKS [SECONDS]     4 KiB FUA writes, each logged once acknowledged
//   probe ledger-verify DEVICE LEDGER                            every acknowledged write reads back
//   probe batch "NAME VERB ARGS..." ...                          several steps in one process (a .NET start
//                                                                costs seconds under TCG): "== NAME", the
//                                                                step's lines, "exit N" for each
if (args.Length >= 1 && args[0] == "batch")
{
    int worst = 0;
    foreach (string step in args.Skip(1))
    {
        string[] words = step.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Console.WriteLine($"== {words[0]}");
        int code = Probe.Step(words[1..]);
        Console.WriteLine($"exit {code}");
        worst = Math.Max(worst, code);
    }
    return worst;
}
return Probe.Step(args);

/// <summary>The probe's steps, and how it describes a region.</summary>
internal static class Probe
{
    internal static int Step(string[] args)
    {
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
                case "ledger-write":
                    return Ledger.Write(path, args[2], int.Parse(args[3], invariant), int.Parse(args[4], invariant),
                        args.Length > 5 ? double.Parse(args[5], invariant) : double.PositiveInfinity);
                case "ledger-verify":
                    return Ledger.Verify(path, args[2]);
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
    }

    internal static void Describe(string path, PmemRegion region)
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

    internal static string YesNo(bool value) => value ? "yes" : "no";

    internal static void Count(string name, BlockPmemRegion region, Action action)
    {
        IoCountersSnapshot before = region.Counters.Snapshot();
        action();
        IoCountersSnapshot delta = region.Counters.Snapshot() - before;
        Console.WriteLine($"{name} reads {delta.Reads} writes {delta.Writes} flushes {delta.Flushes}");
    }
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

/// <summary>
/// An acknowledged-write ledger over a block device, for power-cut tests. Write i (1, 2, ...) puts version i
/// into block (i * 7919) % blocks, so blocks are overwritten, as one 4 KiB O_DIRECT write with FUA
/// (pwritev2 RWF_DSYNC: REQ_FUA in the kernel). The ledger, a file on the host share, gets "start i b" before
/// and "done i b" once the write returned, each line written through at once. After a cut every block must hold
/// its last acknowledged version, or a version started after it (in flight at the cut).
/// </summary>
internal static class Ledger
{
    private const int BlockBytes = 4096;

    internal static int Write(string device, string ledgerPath, int count, int blocks, double seconds)
    {
        using FileBlockDevice target = FileBlockDevice.Open(device, new FileBlockDeviceOptions { Direct = true });
        using FileStream ledger = new(ledgerPath, FileMode.Append, FileAccess.Write, FileShare.Read, 1);
        System.Diagnostics.Stopwatch clock = System.Diagnostics.Stopwatch.StartNew();
        byte[] block = new byte[BlockBytes];
        int written = 0;
        for (int i = 1; i <= count && clock.Elapsed.TotalSeconds < seconds; i++)
        {
            int index = (int)((long)i * 7919 % blocks);
            Append(ledger, $"start {i} {index}\n");
            Fill(block, index, i);
            target.Write((long)index * BlockBytes, block, WriteOptions.Fua);
            Append(ledger, $"done {i} {index}\n");
            written = i;
        }
        Console.WriteLine($"acknowledged_writes {written}");
        Console.WriteLine($"writes_per_second {(written / clock.Elapsed.TotalSeconds).ToString("F0", CultureInfo.InvariantCulture)}");
        return 0;
    }

    internal static int Verify(string device, string ledgerPath)
    {
        Dictionary<int, int> acknowledged = [];
        Dictionary<int, List<int>> started = [];
        int acknowledgedWrites = 0;
        foreach (string line in File.ReadLines(ledgerPath))
        {
            string[] words = line.Split(' ');
            if (words.Length != 3)
            {
                continue; // a line torn by the cut
            }
            int version = int.Parse(words[1], CultureInfo.InvariantCulture);
            int index = int.Parse(words[2], CultureInfo.InvariantCulture);
            if (words[0] == "done")
            {
                acknowledged[index] = version;
                acknowledgedWrites++;
            }
            else
            {
                (started.TryGetValue(index, out List<int>? list) ? list : started[index] = []).Add(version);
            }
        }
        using FileBlockDevice target = FileBlockDevice.Open(device, new FileBlockDeviceOptions { Direct = true, ReadOnly = true });
        byte[] found = new byte[BlockBytes];
        byte[] expected = new byte[BlockBytes];
        int lost = 0;
        foreach ((int index, int version) in acknowledged.OrderBy(pair => pair.Key))
        {
            target.Read((long)index * BlockBytes, found);
            IEnumerable<int> candidates = new[] { version }.Concat(started.GetValueOrDefault(index, []).Where(v => v > version));
            bool ok = candidates.Any(candidate =>
            {
                Fill(expected, index, candidate);
                return found.AsSpan().SequenceEqual(expected);
            });
            if (!ok)
            {
                lost++;
                string seen = new(System.Text.Encoding.ASCII.GetString(found, 0, 64).Select(c => char.IsControl(c) ? '.' : c).ToArray());
                Console.WriteLine($"LOST block {index}: acknowledged version {version}, found \"{seen.TrimEnd()}\"");
            }
        }
        Console.WriteLine($"acknowledged_writes {acknowledgedWrites}");
        Console.WriteLine($"verified_blocks {acknowledged.Count}");
        Console.WriteLine($"lost_blocks {lost}");
        return acknowledged.Count > 0 && lost == 0 ? 0 : 1;
    }

    /// <summary>Version v of block b: a 64-byte line naming both, repeated.</summary>
    private static void Fill(byte[] block, int index, int version)
    {
        byte[] line = System.Text.Encoding.ASCII.GetBytes($"wb-lab block {index} version {version}".PadRight(63) + "\n");
        for (int offset = 0; offset < block.Length; offset += line.Length)
        {
            line.CopyTo(block, offset);
        }
    }

    private static void Append(FileStream ledger, string line)
    {
        byte[] bytes = System.Text.Encoding.ASCII.GetBytes(line);
        ledger.Write(bytes);
        ledger.Flush();
    }
}
