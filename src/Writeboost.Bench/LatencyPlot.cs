using System.Globalization;
using System.Text;

namespace Writeboost.Bench;

/// <summary>
/// Draws latency distributions as an SVG: the cumulative share of operations (y) that completed within a
/// latency (x, log scale). One curve per series; no dependencies, readable in any browser.
/// </summary>
public static class LatencyPlot
{
    public static string CdfSvg(string title, IReadOnlyList<(string Name, string Color, IReadOnlyList<long> LatenciesNs)> series)
    {
        ArgumentNullException.ThrowIfNull(series);
        const int width = 760, height = 420, left = 70, right = 20, top = 40, bottom = 60;
        double plotW = width - left - right, plotH = height - top - bottom;
        long min = Math.Max(1, series.SelectMany(s => s.LatenciesNs).DefaultIfEmpty(1).Min());
        long max = Math.Max(min * 10, series.SelectMany(s => s.LatenciesNs).DefaultIfEmpty(10).Max());
        double logMin = Math.Floor(Math.Log10(min / 1000.0));
        double logMax = Math.Ceiling(Math.Log10(max / 1000.0));
        double X(double us) => left + (Math.Log10(us) - logMin) / (logMax - logMin) * plotW;
        double Y(double fraction) => top + (1 - fraction) * plotH;
        StringBuilder svg = new();
        CultureInfo c = CultureInfo.InvariantCulture;
        svg.Append(c, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.Append(c, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n");
        svg.Append(c, $"<text x=\"{width / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{Escape(title)}</text>\n");
        for (double decade = logMin; decade <= logMax; decade++)
        {
            double x = X(Math.Pow(10, decade));
            svg.Append(c, $"<line x1=\"{x:F1}\" y1=\"{top}\" x2=\"{x:F1}\" y2=\"{top + plotH}\" stroke=\"#ddd\"/>\n");
            svg.Append(c, $"<text x=\"{x:F1}\" y=\"{top + plotH + 18}\" text-anchor=\"middle\">{FormatUs(Math.Pow(10, decade))}</text>\n");
        }
        foreach (double f in new[] { 0.0, 0.25, 0.5, 0.75, 0.9, 1.0 })
        {
            double y = Y(f);
            svg.Append(c, $"<line x1=\"{left}\" y1=\"{y:F1}\" x2=\"{left + plotW}\" y2=\"{y:F1}\" stroke=\"#ddd\"/>\n");
            svg.Append(c, $"<text x=\"{left - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">{f * 100:0.#}%</text>\n");
        }
        svg.Append(c, $"<text x=\"{left + plotW / 2}\" y=\"{height - 18}\" text-anchor=\"middle\">latency of a 4 KiB FUA write (log scale)</text>\n");
        svg.Append(c, $"<text x=\"16\" y=\"{top + plotH / 2}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {top + plotH / 2})\">writes completed within</text>\n");
        int legendY = top + 16;
        foreach ((string name, string color, IReadOnlyList<long> latencies) in series)
        {
            long[] sorted = [.. latencies];
            Array.Sort(sorted);
            StringBuilder points = new();
            int steps = Math.Min(400, sorted.Length);
            for (int i = 0; i <= steps && sorted.Length > 0; i++)
            {
                int index = (int)Math.Min(sorted.Length - 1, (long)i * (sorted.Length - 1) / Math.Max(1, steps));
                points.Append(c, $"{X(Math.Max(sorted[index], 1) / 1000.0):F1},{Y((index + 1) / (double)sorted.Length):F1} ");
            }
            svg.Append(c, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{points.ToString().Trim()}\"/>\n");
            svg.Append(c, $"<rect x=\"{left + 12}\" y=\"{legendY - 10}\" width=\"14\" height=\"4\" fill=\"{color}\"/>\n");
            svg.Append(c, $"<text x=\"{left + 32}\" y=\"{legendY - 4}\">{Escape(name)}</text>\n");
            legendY += 18;
        }
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static string FormatUs(double us) => us >= 1000 ? $"{us / 1000:0.#} ms" : us >= 1 ? $"{us:0.#} µs" : $"{us * 1000:0} ns";

    private static string Escape(string text) => text.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal);
}
