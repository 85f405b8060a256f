using System.Globalization;

namespace Writeboost.Cache.Table;

/// <summary>One table key: its range, its default, and whether a message may change it on a live device.</summary>
public sealed record TunableSpec(string Key, long Min, long Max, long Default, bool Online, string Meaning);

/// <summary>
/// The table keys, with dm-writeboost's names, ranges and defaults where it has them. Stated once, here; the
/// parser, the message handler and the status line all read this list.
/// </summary>
public static class TunableSpecs
{
    public const string SegmentSizeOrder = "segment_size_order";
    public const string BarrierDeadlineMs = "barrier_deadline_ms";
    public const string WritebackThreshold = "writeback_threshold";
    public const string NrMaxBatchedWriteback = "nr_max_batched_writeback";
    public const string UpdateSbRecordInterval = "update_sb_record_interval";
    public const string SyncDataInterval = "sync_data_interval";
    public const string ReadCacheThreshold = "read_cache_threshold";
    public const string NrReadCacheCells = "nr_read_cache_cells";
    public const string WriteAroundMode = "write_around_mode";
    /// <summary>Not numeric: <c>block</c> or <c>dax</c>; handled by the parser apart from the others.</summary>
    public const string PmemBackend = "pmem_backend";

    public static readonly IReadOnlyList<TunableSpec> All =
    [
        new(SegmentSizeOrder, 4, 11, 10, false, "log2 of the segment size in sectors: 10 = 512 KiB (127 blocks), 11 = 1 MiB (255 blocks)"),
        new(BarrierDeadlineMs, 0, 60_000, 0, true, "ms a FUA/flush waits for the buffer to fill before a partial log is written (mode 0)"),
        new(WritebackThreshold, 0, 100, 0, true, "write back in the background while backing utilisation (%) is below this; 0 = only when the ring is full"),
        new(NrMaxBatchedWriteback, 1, 32, 32, true, "segments written back per batch"),
        new(UpdateSbRecordInterval, 0, 3600, 0, true, "seconds between periodic superblock record writes (it is also written after every writeback batch)"),
        new(SyncDataInterval, 0, 3600, 0, true, "seconds between forced flushes of the buffer and the cache device; 0 = never"),
        new(ReadCacheThreshold, 0, 127, 0, true, "sequential read runs longer than this many blocks are not cached; 0 = no read caching"),
        new(NrReadCacheCells, 1, 2048, 2048, false, "read misses staged before they are written into the cache"),
        new(WriteAroundMode, 0, 1, 0, false, "1 = writes go straight to the backing store; the cache serves reads only"),
    ];

    public static TunableSpec? Find(string key) =>
        All.FirstOrDefault(s => string.Equals(s.Key, key, StringComparison.OrdinalIgnoreCase));

    public static long Parse(TunableSpec spec, string value)
    {
        if (!long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out long parsed))
        {
            throw new TableException($"{spec.Key} {value}: not a whole number");
        }
        if (parsed < spec.Min || parsed > spec.Max)
        {
            throw new TableException($"{spec.Key} {value}: out of range {spec.Min}..{spec.Max}");
        }
        return parsed;
    }
}

/// <summary>The values of the table keys for one device. Online ones may be changed by a message.</summary>
public sealed class Tunables
{
    private readonly Dictionary<string, long> _values;

    private readonly HashSet<string> _given = new(StringComparer.OrdinalIgnoreCase);

    public Tunables(IReadOnlyDictionary<string, long>? given = null)
    {
        _values = TunableSpecs.All.ToDictionary(s => s.Key, s => s.Default, StringComparer.OrdinalIgnoreCase);
        foreach ((string key, long value) in given ?? new Dictionary<string, long>())
        {
            _values[key] = value;
            _given.Add(key);
        }
    }

    /// <summary>Whether the table gave <paramref name="key"/> (a value equal to the default included), rather than the default filling it in.</summary>
    public bool IsGiven(string key) => _given.Contains(key);

    public long this[string key]
    {
        get { lock (_values) { return _values[key]; } }
    }

    public int SegmentSizeOrder => (int)this[TunableSpecs.SegmentSizeOrder];
    public int BarrierDeadlineMs => (int)this[TunableSpecs.BarrierDeadlineMs];
    public int WritebackThreshold => (int)this[TunableSpecs.WritebackThreshold];
    public int NrMaxBatchedWriteback => (int)this[TunableSpecs.NrMaxBatchedWriteback];
    public int UpdateSbRecordInterval => (int)this[TunableSpecs.UpdateSbRecordInterval];
    public int SyncDataInterval => (int)this[TunableSpecs.SyncDataInterval];
    public int ReadCacheThreshold => (int)this[TunableSpecs.ReadCacheThreshold];
    public int NrReadCacheCells => (int)this[TunableSpecs.NrReadCacheCells];
    public bool WriteAroundMode => this[TunableSpecs.WriteAroundMode] != 0;

    /// <summary>Sets an online tunable, as the message <c>&lt;key&gt; &lt;value&gt;</c> does.</summary>
    /// <exception cref="TableException">unknown key, a static key, or a value out of range.</exception>
    public void SetOnline(string key, string value)
    {
        TunableSpec spec = TunableSpecs.Find(key) ?? throw new TableException($"unknown tunable {key}");
        if (!spec.Online)
        {
            throw new TableException($"{spec.Key} can only be set when the device is created");
        }
        long parsed = TunableSpecs.Parse(spec, value);
        lock (_values)
        {
            _values[spec.Key] = parsed;
        }
    }

    public IReadOnlyDictionary<string, long> Snapshot()
    {
        lock (_values)
        {
            return new Dictionary<string, long>(_values, StringComparer.OrdinalIgnoreCase);
        }
    }
}
