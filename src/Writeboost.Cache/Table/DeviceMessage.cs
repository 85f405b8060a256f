using System.Globalization;
using Writeboost.Cache.Format;

namespace Writeboost.Cache.Table;

/// <summary>dmsetup's messages to a writeboost device: <c>clear_stat</c>, <c>drop_caches</c>, <c>clear_poison [sector]</c>, <c>&lt;tunable&gt; &lt;value&gt;</c>.</summary>
public static class DeviceMessage
{
    /// <summary>
    /// Checks a message without a device, so a tool can refuse a bad one before it opens (and so writes to) anything:
    /// the forms <see cref="Core.WriteboostDevice.Message"/> takes, a tunable's name, whether it may change online, its range, and a
    /// clear_poison sector inside a device of <paramref name="sizeBytes"/>.
    /// </summary>
    /// <exception cref="TableException">what is wrong with it.</exception>
    public static void Check(IReadOnlyList<string> words, long sizeBytes)
    {
        ArgumentNullException.ThrowIfNull(words);
        long sectors = sizeBytes / Units.BlockBytes * Units.BlockBytes / Units.SectorBytes;
        switch (words.Count)
        {
            case 0:
                throw new TableException("an empty message (expected clear_stat, drop_caches, clear_poison [sector], or <tunable> <value>)");
            case 1 when words[0] is "clear_stat" or "drop_caches" or "clear_poison":
                return;
            case 2 when words[0] == "clear_poison":
                if (!long.TryParse(words[1], NumberStyles.None, CultureInfo.InvariantCulture, out long sector) || sector >= sectors)
                {
                    throw new TableException($"clear_poison {words[1]}: expected a sector of the device (0..{sectors - 1})");
                }
                return;
            case 2:
                TunableSpec spec = TunableSpecs.Find(words[0])
                    ?? throw new TableException($"unknown message '{string.Join(' ', words)}' (expected clear_stat, drop_caches, clear_poison [sector], or <tunable> <value>; tunables: {string.Join(", ", TunableSpecs.All.Where(t => t.Online).Select(t => t.Key))})");
                if (!spec.Online)
                {
                    throw new TableException($"{spec.Key} can only be set when the device is created");
                }
                TunableSpecs.Parse(spec, words[1]);
                return;
            default:
                throw new TableException($"unknown message '{string.Join(' ', words)}' (expected clear_stat, drop_caches, clear_poison [sector], or <tunable> <value>)");
        }
    }
}
