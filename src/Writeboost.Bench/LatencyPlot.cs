using System.Globalization;
using System.Text;

namespace Writeboost.Bench;

/// <summary>
/// Draws latency distributions as an SVG: for each latency (x, log scale) the share of operations slower than it
/// (y, log scale: a complementary CDF), so the tail — the part that matters for FUA — takes as much room as the
/// median: each decade of y is one more nine (90 %, 99 %, 99.9 % ...). One curve per series, the legend beside the
/// plot, never over it. No dependencies, readable in any browser; <see cref="RenderPng"/> makes a PNG of it.
/// </summary>
public static class LatencyPlot
{
    private const int Width = 900, Height = 440, Left = 80, PlotWidth = 520, Top = 44, PlotHeight = 320;

    public static string CcdfSvg(string title, string operation, IReadOnlyList<(string Name, string Color, IReadOnlyList<long> LatenciesNs)> series)
    {
        ArgumentNullException.ThrowIfNull(series);
        long min = Math.Max(1, series.SelectMany(s => s.LatenciesNs).DefaultIfEmpty(1).Min());
        long max = Math.Max(min * 10, series.SelectMany(s => s.LatenciesNs).DefaultIfEmpty(10).Max());
        int count = Math.Max(1, series.Select(s => s.LatenciesNs.Count).DefaultIfEmpty(1).Max());
        double logMin = Math.Floor(Math.Log10(min / 1000.0));
        double logMax = Math.Ceiling(Math.Log10(max / 1000.0));
        // y from 100 % down to one operation in the largest series, by decades.
        int nines = Math.Max(1, (int)Math.Ceiling(Math.Log10(count)));
        double X(double us) => Left + (Math.Log10(us) - logMin) / (logMax - logMin) * PlotWidth;
        double Y(double share) => Top + -Math.Log10(share) / nines * PlotHeight;
        StringBuilder svg = new();
        CultureInfo c = CultureInfo.InvariantCulture;
        svg.Append(c, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.Append(c, $"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>\n");
        svg.Append(c, $"<text x=\"{Width / 2}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{Escape(title)}</text>\n");
        for (double decade = logMin; decade <= logMax; decade++)
        {
            double x = X(Math.Pow(10, decade));
            svg.Append(c, $"<line x1=\"{x:F1}\" y1=\"{Top}\" x2=\"{x:F1}\" y2=\"{Top + PlotHeight}\" stroke=\"#ddd\"/>\n");
            svg.Append(c, $"<text x=\"{x:F1}\" y=\"{Top + PlotHeight + 18}\" text-anchor=\"middle\">{FormatUs(Math.Pow(10, decade))}</text>\n");
        }
        for (int decade = 0; decade <= nines; decade++)
        {
            double y = Y(Math.Pow(10, -decade));
            svg.Append(c, $"<line x1=\"{Left}\" y1=\"{y:F1}\" x2=\"{Left + PlotWidth}\" y2=\"{y:F1}\" stroke=\"#ddd\"/>\n");
            svg.Append(c, $"<text x=\"{Left - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">{FormatShare(decade)}</text>\n");
        }
        svg.Append(c, $"<rect x=\"{Left}\" y=\"{Top}\" width=\"{PlotWidth}\" height=\"{PlotHeight}\" fill=\"none\" stroke=\"#888\"/>\n");
        svg.Append(c, $"<text x=\"{Left + PlotWidth / 2}\" y=\"{Top + PlotHeight + 44}\" text-anchor=\"middle\">latency of {Escape(operation)} (log scale)</text>\n");
        svg.Append(c, $"<text x=\"18\" y=\"{Top + PlotHeight / 2}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {Top + PlotHeight / 2})\">share of operations slower (log scale)</text>\n");
        int legendX = Left + PlotWidth + 24;
        int legendY = Top + 10;
        foreach ((string name, string color, IReadOnlyList<long> latencies) in series)
        {
            svg.Append(c, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{Points(latencies, X, Y)}\"/>\n");
            svg.Append(c, $"<rect x=\"{legendX}\" y=\"{legendY - 6}\" width=\"18\" height=\"4\" fill=\"{color}\"/>\n");
            svg.Append(c, $"<text x=\"{legendX + 24}\" y=\"{legendY}\">{Escape(name)}</text>\n");
            legendY += 22;
        }
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    /// <summary>
    /// Renders <paramref name="svgPath"/> as a PNG at <paramref name="pngPath"/> with rsvg-convert (Debian's
    /// librsvg2-bin, installed by pmem-emu/install-deps.sh).
    /// </summary>
    /// <exception cref="InvalidOperationException">rsvg-convert is missing or failed (the message says which, and the fix).</exception>
    public static void RenderPng(string svgPath, string pngPath) =>
        ExternalTool.Run("rsvg-convert", ["--format", "png", "--background-color", "white", "--output", pngPath, svgPath], "apt-get install -y librsvg2-bin");

    /// <summary>The curve: each sorted latency at the share of operations slower than it, thinned to a few hundred points per decade of share.</summary>
    private static string Points(IReadOnlyList<long> latencies, Func<double, double> x, Func<double, double> y)
    {
        long[] sorted = [.. latencies];
        Array.Sort(sorted);
        StringBuilder points = new();
        CultureInfo c = CultureInfo.InvariantCulture;
        double lastY = double.NaN;
        for (int i = 0; i < sorted.Length; i++)
        {
            // Share slower than the i-th fastest: (n - i - 1) / n; the slowest is drawn at one operation's share.
            double share = Math.Max(sorted.Length - i - 1, 1) / (double)sorted.Length;
            double py = y(share);
            if (i != 0 && i != sorted.Length - 1 && Math.Abs(py - lastY) < 0.5 && i % 64 != 0)
            {
                continue; // no visible step: the tail keeps every point, the bulk a sample
            }
            points.Append(c, $"{x(Math.Max(sorted[i], 1) / 1000.0):F1},{py:F1} ");
            lastY = py;
        }
        return points.ToString().Trim();
    }

    private static string FormatShare(int decade) => decade switch
    {
        0 => "100%",
        1 => "10%",
        2 => "1%",
        _ => $"{Math.Pow(10, 2 - decade).ToString("0.#########", CultureInfo.InvariantCulture)}%",
    };

    private static string FormatUs(double us) => us >= 1000 ? $"{us / 1000:0.#} ms" : us >= 1 ? $"{us:0.#} µs" : $"{us * 1000:0} ns";

    private static string Escape(string text) => text.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal);
}
