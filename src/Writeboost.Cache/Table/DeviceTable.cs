using System.Globalization;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.Cache.Table;

/// <summary>A table that cannot be: the message says which word and why (the CLI exits 2).</summary>
public sealed class TableException(string message) : ArgumentException(message);

/// <summary>Volatile RAM buffer (0) or persistent-memory buffer (1).</summary>
public enum CacheMode
{
    Volatile = 0,
    Persistent = 1,
}

/// <summary>
/// The kernel-style table: <c>&lt;mode&gt; &lt;backing&gt; &lt;cache&gt; [&lt;pmem&gt;] [&lt;#opts&gt;] [&lt;key&gt; &lt;value&gt;]...</c>.
/// When the first word is not a number the mode is 0 and the table starts at the backing device, as the
/// kernel's <c>writeboost &lt;backing&gt; &lt;cache&gt; ...</c>. The optional count before the pairs, as in dmsetup
/// tables, must equal the number of words that follow it.
/// </summary>
public sealed record DeviceTable(
    CacheMode Mode,
    string BackingPath,
    string CachePath,
    string? PmemPath,
    IReadOnlyDictionary<string, long> Keys,
    PmemBackend PmemBackend)
{
    public Tunables CreateTunables() => new(Keys);

    public static DeviceTable Parse(IReadOnlyList<string> words)
    {
        ArgumentNullException.ThrowIfNull(words);
        int at = 0;
        CacheMode mode = CacheMode.Volatile;
        if (words.Count > 0 && long.TryParse(words[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out long modeNumber))
        {
            mode = modeNumber switch
            {
                0 => CacheMode.Volatile,
                1 => CacheMode.Persistent,
                _ => throw new TableException($"mode {words[0]}: expected 0 (volatile buffer) or 1 (pmem buffer)"),
            };
            at = 1;
        }
        string Next(string what)
        {
            if (at >= words.Count)
            {
                throw new TableException($"the table is missing <{what}> (expected: <mode> <backing> <cache> [<pmem>] [<#opts>] [<key> <value>]...)");
            }
            return words[at++];
        }
        string backing = Next("backing");
        string cache = Next("cache");
        string? pmem = mode == CacheMode.Persistent ? Next("pmem") : null;

        List<string> rest = words.Skip(at).ToList();
        if (rest.Count > 0 && long.TryParse(rest[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out long count))
        {
            if (count != rest.Count - 1)
            {
                throw new TableException($"the table says {count} optional arguments but {rest.Count - 1} follow");
            }
            rest.RemoveAt(0);
        }
        if (rest.Count % 2 != 0)
        {
            throw new TableException($"key {rest[^1]} has no value");
        }
        Dictionary<string, long> keys = new(StringComparer.OrdinalIgnoreCase);
        PmemBackend backend = PmemBackend.Auto;
        for (int i = 0; i < rest.Count; i += 2)
        {
            string key = rest[i];
            string value = rest[i + 1];
            if (string.Equals(key, TunableSpecs.PmemBackend, StringComparison.OrdinalIgnoreCase))
            {
                backend = value.ToLowerInvariant() switch
                {
                    "block" => PmemBackend.Block,
                    "dax" => PmemBackend.Dax,
                    "auto" => PmemBackend.Auto,
                    _ => throw new TableException($"pmem_backend {value}: expected block, dax or auto"),
                };
                if (mode != CacheMode.Persistent)
                {
                    throw new TableException("pmem_backend is for mode 1 (a pmem buffer); this table is mode 0");
                }
                continue;
            }
            TunableSpec spec = TunableSpecs.Find(key)
                ?? throw new TableException($"unknown key {key} (known: {string.Join(", ", TunableSpecs.All.Select(s => s.Key))}, {TunableSpecs.PmemBackend})");
            if (!keys.TryAdd(spec.Key, TunableSpecs.Parse(spec, value)))
            {
                throw new TableException($"key {spec.Key} is given twice");
            }
        }
        CheckDistinct(backing, cache, pmem);
        return new DeviceTable(mode, backing, cache, pmem, keys, backend);
    }

    /// <summary>The table as words, in canonical form (mode first, explicit count).</summary>
    public IReadOnlyList<string> ToWords()
    {
        List<string> words = [((int)Mode).ToString(CultureInfo.InvariantCulture), BackingPath, CachePath];
        if (PmemPath is not null)
        {
            words.Add(PmemPath);
        }
        List<string> pairs = [];
        foreach ((string key, long value) in Keys)
        {
            pairs.Add(key);
            pairs.Add(value.ToString(CultureInfo.InvariantCulture));
        }
        if (PmemBackend != PmemBackend.Auto)
        {
            pairs.Add(TunableSpecs.PmemBackend);
            pairs.Add(PmemBackend.ToString().ToLowerInvariant());
        }
        if (pairs.Count > 0)
        {
            words.Add(pairs.Count.ToString(CultureInfo.InvariantCulture));
            words.AddRange(pairs);
        }
        return words;
    }

    private static void CheckDistinct(string backing, string cache, string? pmem)
    {
        static string Canonical(string path) => Path.GetFullPath(path);
        static bool Same(string a, string b) => Canonical(a) == Canonical(b) || FileBlockDevice.SameFile(a, b);
        if (Canonical(backing) == Canonical(cache))
        {
            throw new TableException($"the backing and cache devices are the same path ({backing})");
        }
        if (Same(backing, cache))
        {
            throw new TableException($"the backing device {backing} and the cache device {cache} are the same file or device (a link, or two names of one disk)");
        }
        if (pmem is not null && (Same(pmem, backing) || Same(pmem, cache)))
        {
            throw new TableException($"the pmem device {pmem} is also the backing or cache device");
        }
    }
}
