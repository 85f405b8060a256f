using System.Globalization;
using Writeboost.Cache.PmemBuffer;
using Writeboost.Cache.Table;
using Writeboost.Pmem;

namespace Writeboost.CrashTest.Configs;

/// <summary>
/// One device configuration a campaign runs: the table keys (segment size order and tunables), the RAM buffer
/// pool, how mode 1's pmem is mapped (dax: cache lines, fences; block: read-modify-write over a block device),
/// and how many writer threads the workload runs. Sizes of the in-memory devices follow from it and the workload.
/// </summary>
/// <param name="Keys">Table keys; <c>segment_size_order</c> is always present.</param>
public sealed record CrashConfig(IReadOnlyDictionary<string, long> Keys, int PoolSize, PmemBackend PmemBackend, int Writers)
{
    /// <summary>The configuration every campaign had before configurations were sampled: 16 KiB segments of 3 blocks, a pool of 2, default tunables, dax pmem, one writer.</summary>
    public static CrashConfig Default { get; } = new(new Dictionary<string, long> { [TunableSpecs.SegmentSizeOrder] = 5 }, 2, PmemBackend.Dax, 1);

    public int SegmentSizeOrder => (int)Keys[TunableSpecs.SegmentSizeOrder];

    /// <summary>
    /// Each life of the device (each round of a campaign) reopens it with another table, as users reload a cache
    /// with other tunables: <see cref="ForLife"/>. Only what the contract allows between opens changes.
    /// </summary>
    public bool ChangesBetweenLives { get; init; }

    /// <summary>
    /// The table life <paramref name="life"/> opens with: life 1 this one; later ones (when
    /// <see cref="ChangesBetweenLives"/>) switch <c>write_around_mode</c> on in even lives and off in odd ones, and
    /// draw, seeded, every online tunable and the read cache's keys. The segment size, the pool and the pmem backend
    /// never change: a cache refuses another segment size. The mode changes once, from 0 to 1 (<see cref="ModeForLife"/>),
    /// never back: a mode-1 cache that crashed refuses mode 0 (its pmem buffer holds acknowledged writes), a switch
    /// refused with a clear error, not judged here.
    /// </summary>
    public CrashConfig ForLife(int life, int seed)
    {
        if (!ChangesBetweenLives || life <= 1)
        {
            return this;
        }
        Random random = new(States.StateSeed.Of(seed, life, 0x71FE));
        T Pick<T>(params T[] choices) => choices[random.Next(choices.Length)];
        Dictionary<string, long> keys = new(StringComparer.OrdinalIgnoreCase)
        {
            [TunableSpecs.SegmentSizeOrder] = SegmentSizeOrder,
            [TunableSpecs.WriteAroundMode] = life % 2 == 0 ? 1 : 0,
            [TunableSpecs.BarrierDeadlineMs] = Pick(0, 1, 3),
            [TunableSpecs.WritebackThreshold] = Pick(0, 30, 100),
            [TunableSpecs.NrMaxBatchedWriteback] = Pick(1, 4, 32),
            [TunableSpecs.ReadCacheThreshold] = Pick(0, 4, 127),
            [TunableSpecs.NrReadCacheCells] = Pick(1, 8, 2048),
            [TunableSpecs.UpdateSbRecordInterval] = Pick(0, 1),
            [TunableSpecs.SyncDataInterval] = Pick(0, 1),
        };
        return this with { Keys = keys };
    }

    /// <summary>
    /// The mode life <paramref name="life"/> opens in. A mode-0 cache whose table changes between lives is opened in
    /// mode 1, with a pmem region it never had, from life 3 on. Lives 1 and 2 stay mode 0, so a mode-0 life still
    /// recovers a mode-0 crash. Life 3 first recovers a crash of the write-around mode-0 life 2, as an operator who
    /// adds a pmem device to a crashed cache does.
    /// </summary>
    public CacheMode ModeForLife(CacheMode mode, int life) => GainsPmem(mode) && life >= 3 ? CacheMode.Persistent : mode;

    /// <summary>A mode-0 cache of this configuration is given a pmem region in a later life (<see cref="ModeForLife"/>).</summary>
    public bool GainsPmem(CacheMode mode) => mode == CacheMode.Volatile && ChangesBetweenLives;

    /// <summary>
    /// A seeded configuration: segment orders 5, 10 and 11 (the RFC's 1 MiB segment, with 8-byte metablocks),
    /// pools of 1 to 4 buffers, a barrier deadline with several writers, background writeback, periodic record
    /// updates and data syncs, read caching, write-around, and the pmem block backend.
    /// </summary>
    public static CrashConfig Random(int seed)
    {
        Random random = new(seed);
        T Pick<T>(params T[] choices) => choices[random.Next(choices.Length)];
        Dictionary<string, long> keys = new(StringComparer.OrdinalIgnoreCase)
        {
            [TunableSpecs.SegmentSizeOrder] = Pick(5, 5, 10, 11),
        };
        int writers = Pick(1, 1, 2, 3);
        if (random.Next(3) == 0)
        {
            keys[TunableSpecs.BarrierDeadlineMs] = Pick(1, 2, 3);
        }
        if (random.Next(2) == 0)
        {
            keys[TunableSpecs.WritebackThreshold] = Pick(30, 60, 100);
            keys[TunableSpecs.NrMaxBatchedWriteback] = Pick(1, 2, 4);
        }
        if (random.Next(3) == 0)
        {
            keys[TunableSpecs.UpdateSbRecordInterval] = 1;
        }
        if (random.Next(3) == 0)
        {
            keys[TunableSpecs.SyncDataInterval] = 1;
        }
        if (random.Next(2) == 0)
        {
            keys[TunableSpecs.ReadCacheThreshold] = Pick(1, 4, 127);
            keys[TunableSpecs.NrReadCacheCells] = Pick(1, 8, 64);
        }
        if (random.Next(8) == 0)
        {
            keys[TunableSpecs.WriteAroundMode] = 1;
        }
        return new CrashConfig(keys, Pick(1, 2, 2, 3, 4), Pick(PmemBackend.Dax, PmemBackend.Dax, PmemBackend.Block), writers);
    }

    /// <summary>
    /// The configurations a default campaign covers: the default one, then seeded ones that take turns to pin
    /// every key of the table and both pmem backends, so a bug that lives under one tunable is met with every seed
    /// (the values are seeded, the keys are not):
    /// <list type="number">
    /// <item>order 10, several writers, the pmem block backend, a barrier deadline, read caching, background writeback in batches;</item>
    /// <item>order 11 (the 8-byte metablocks), dax, periodic superblock records and data syncs, read caching;</item>
    /// <item>write-around with read caching and two writers (reads racing writes on their way to the backing store);</item>
    /// </list>
    /// and beyond those, free samples.
    /// </summary>
    public static IReadOnlyList<CrashConfig> Spread(int seed, int count)
    {
        List<CrashConfig> configs = [Default];
        for (int i = 1; i < count; i++)
        {
            int sampleSeed = States.StateSeed.Of(seed, i, 0xC0F);
            CrashConfig sampled = Random(sampleSeed);
            Random random = new(sampleSeed ^ 0x7E5);
            T Pick<T>(params T[] choices) => choices[random.Next(choices.Length)];
            Dictionary<string, long> keys = new(sampled.Keys, StringComparer.OrdinalIgnoreCase);
            keys.Remove(TunableSpecs.WriteAroundMode); // write-around caches no writes: only the config that pins it has it
            configs.Add((i <= 3 ? i : 0) switch
            {
                1 => sampled with
                {
                    Keys = With(keys, 10, (TunableSpecs.BarrierDeadlineMs, Pick(1, 2, 3)), (TunableSpecs.ReadCacheThreshold, Pick(1, 4, 127)),
                        (TunableSpecs.NrReadCacheCells, Pick(1, 8)), (TunableSpecs.WritebackThreshold, Pick(30, 60, 100)), (TunableSpecs.NrMaxBatchedWriteback, Pick(1, 2, 4))),
                    Writers = Math.Max(2, sampled.Writers),
                    PmemBackend = PmemBackend.Block,
                },
                2 => sampled with
                {
                    // Read caching that stages (a cell count a workload's misses fill): in mode 1, staged slots among
                    // placed ones in a dax buffer, the hole records a later record vouches for.
                    Keys = With(keys, 11, (TunableSpecs.UpdateSbRecordInterval, 1), (TunableSpecs.SyncDataInterval, 1),
                        (TunableSpecs.ReadCacheThreshold, Pick(4, 127)), (TunableSpecs.NrReadCacheCells, Pick(1, 8))),
                    PmemBackend = PmemBackend.Dax,
                    ChangesBetweenLives = true,
                },
                3 => sampled with
                {
                    // One cell: a read miss is staged at once, so a read racing a write-around write is cached at once.
                    Keys = With(new Dictionary<string, long>(StringComparer.OrdinalIgnoreCase), 5, (TunableSpecs.WriteAroundMode, 1),
                        (TunableSpecs.ReadCacheThreshold, 127), (TunableSpecs.NrReadCacheCells, 1)),
                    Writers = 2,
                },
                _ => sampled,
            });
        }
        return configs;

        static Dictionary<string, long> With(Dictionary<string, long> keys, int order, params (string Key, long Value)[] pinned)
        {
            keys[TunableSpecs.SegmentSizeOrder] = order;
            foreach ((string key, long value) in pinned)
            {
                keys[key] = value;
            }
            return keys;
        }
    }

    /// <summary>
    /// A configuration from a kernel-style table (<c>&lt;mode&gt; &lt;backing&gt; &lt;cache&gt; [&lt;pmem&gt;] [&lt;key&gt; &lt;value&gt;]...</c>;
    /// the paths are ignored — the harness's devices are in memory) and the harness's own knobs.
    /// </summary>
    /// <exception cref="TableException">the table does not parse, or a value is out of range.</exception>
    public static (CacheMode Mode, CrashConfig Config) FromTable(string table, int poolSize = 2, int writers = 1)
    {
        ArgumentNullException.ThrowIfNull(table);
        DeviceTable parsed = DeviceTable.Parse(table.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Dictionary<string, long> keys = new(parsed.Keys, StringComparer.OrdinalIgnoreCase);
        keys.TryAdd(TunableSpecs.SegmentSizeOrder, Default.SegmentSizeOrder);
        if (poolSize is < 1 or > 64)
        {
            throw new TableException($"pool size {poolSize}: expected 1..64 buffers");
        }
        if (writers is < 1 or > 8)
        {
            throw new TableException($"writers {writers}: expected 1..8");
        }
        PmemBackend backend = parsed.PmemBackend == PmemBackend.Auto ? PmemBackend.Dax : parsed.PmemBackend;
        return (parsed.Mode, new CrashConfig(keys, poolSize, backend, writers));
    }

    /// <summary>Segment slots on the cache device for a workload: a tiny ring for wrap, so it laps.</summary>
    internal static int SegmentsFor(Workload workload) => workload switch { Workload.Wrap => 4, Workload.Nbd => 12, _ => 6 };

    internal static long BackingBytesFor(Workload workload) => workload switch { Workload.Wrap => 128 * 1024, Workload.Nbd => 1 << 20, _ => 64 * 1024 };

    internal long CacheBytesFor(Workload workload) => (1 << 20) + SegmentsFor(workload) * (512L << SegmentSizeOrder);

    internal int BlocksPerSegment => (int)((512L << SegmentSizeOrder) / 4096) - 1;

    /// <summary>The pmem region (mode 1), rounded up to whole 4 KiB blocks for the block backend's device.</summary>
    internal long PmemBytes => (new PmemLayout(SegmentSizeOrder, PoolSize, BlocksPerSegment).RegionBytes + 4095) / 4096 * 4096;

    /// <summary>The table this configuration is (with placeholder paths), as <c>--table</c> takes it.</summary>
    public string ToTable(CacheMode mode)
    {
        List<string> words = [((int)mode).ToString(CultureInfo.InvariantCulture), "backing", "cache"];
        if (mode == CacheMode.Persistent)
        {
            words.Add("pmem");
        }
        foreach ((string key, long value) in Keys.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            words.Add(key);
            words.Add(value.ToString(CultureInfo.InvariantCulture));
        }
        if (mode == CacheMode.Persistent && PmemBackend != PmemBackend.Dax)
        {
            words.Add(TunableSpecs.PmemBackend);
            words.Add("block");
        }
        return string.Join(' ', words);
    }

    /// <summary>A short name for tables: "order 11, pool 3, 2 writers, barrier 2 ms, pmem block, ...".</summary>
    public string Describe(CacheMode mode)
    {
        List<string> parts = [$"order {SegmentSizeOrder}", $"pool {PoolSize}", Writers == 1 ? "1 writer" : $"{Writers} writers"];
        foreach ((string key, long value) in Keys.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            if (key != TunableSpecs.SegmentSizeOrder)
            {
                parts.Add($"{key} {value}");
            }
        }
        if (mode == CacheMode.Persistent)
        {
            parts.Add(PmemBackend == PmemBackend.Block ? "pmem block" : "pmem dax");
        }
        if (ChangesBetweenLives)
        {
            parts.Add(GainsPmem(mode) ? "another table each life, mode 1 from life 3" : "another table each life");
        }
        return string.Join(", ", parts);
    }

    internal Tunables CreateTunables() => new(Keys);
}
