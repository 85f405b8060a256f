using System.Text.Json;
using Writeboost.Bench;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Cli;

/// <summary>
/// Figures one can publish (#25): a benchmark repeats its rounds, reports each figure as the median with the range
/// the rounds gave, warns when they disagree, and measures its physical floor in the same run.
/// </summary>
[TestClass]
public sealed class BenchRoundsTests
{
    [TestMethod]
    public void A_spread_is_the_median_of_its_rounds_with_their_range()
    {
        Spread odd = Spread.Of([3.0, 1.0, 2.0]);
        Assert.AreEqual(new Spread(2.0, 1.0, 3.0, 3), odd);
        Assert.AreEqual(2.5, Spread.Of([4.0, 1.0, 2.0, 3.0]).Median, "an even count: the mean of the middle two");
        Assert.AreEqual("2.0x (1.0–3.0x)", odd.Format("F1", "x"));
        Assert.AreEqual("5", Spread.Of([5.0]).Format("F0"), "one round has no range to show");
    }

    [TestMethod]
    public void Rounds_that_disagree_by_more_than_a_quarter_are_wide()
    {
        Assert.IsFalse(Spread.Of([100.0, 110.0, 125.0]).IsWide);
        Assert.IsTrue(Spread.Of([100.0, 110.0, 126.0]).IsWide);
        Assert.AreEqual(0.26, Spread.Of([100.0, 126.0]).Width, 1e-9);
    }

    [TestMethod]
    public void Fua_in_both_modes_reports_its_rounds_their_spreads_and_the_floor()
    {
        WbResult result = WbProcess.Run(new Dictionary<string, string> { ["PMEM_IS_PMEM_FORCE"] = "1" },
            "bench", "fua", "--mode", "both", "--ops", "300", "--rounds", "2", "--json");
        Assert.AreEqual(0, result.ExitCode, result.Stderr);
        using JsonDocument document = JsonDocument.Parse(result.Stdout);
        JsonElement root = document.RootElement;

        Assert.AreEqual(2, root.GetProperty("rounds").GetInt32());
        double ratio = root.GetProperty("iops_ratio").GetDouble();
        Assert.AreEqual(root.GetProperty("mode1").GetProperty("iops").GetDouble() / root.GetProperty("mode0").GetProperty("iops").GetDouble(), ratio, 1e-9,
            "the figures a single run reported are one round's, whole: the median round's");
        JsonElement spread = root.GetProperty("iops_ratio_spread");
        Assert.AreEqual(2, spread.GetProperty("rounds").GetInt32());
        Assert.IsTrue(spread.GetProperty("min").GetDouble() <= ratio && ratio <= spread.GetProperty("max").GetDouble(), spread.ToString());

        JsonElement floor = root.GetProperty("floor");
        Assert.AreEqual(4096, floor.GetProperty("block_bytes").GetInt32(), "the floor is one bare 4 KiB write+persist");
        Assert.AreEqual("dax", floor.GetProperty("backend").GetString(), "of the same kind of region as mode 1's buffer");
        Assert.IsGreaterThan(0L, floor.GetProperty("p50_ns").GetInt64());
        double overFloor = root.GetProperty("mode1_p50_over_floor").GetProperty("median").GetDouble();
        Assert.IsGreaterThan(1.0, overFloor, "a mode-1 FUA write persists at least one 4 KiB block: it cannot beat its floor");
        Assert.AreEqual(JsonValueKind.Array, root.GetProperty("warnings").ValueKind);
    }

    [TestMethod]
    public void The_latency_plot_is_written_as_svg_and_as_a_png_that_shows_both_modes()
    {
        using TempDirectory dir = new();
        string svg = dir.File("latency.svg");
        string png = dir.File("latency.png");
        WbResult result = WbProcess.Run(new Dictionary<string, string> { ["PMEM_IS_PMEM_FORCE"] = "1" },
            "bench", "fua", "--mode", "both", "--ops", "300", "--rounds", "1", "--work-dir", dir.Path, "--latency-svg", svg, "--latency-png", png);
        Assert.AreEqual(0, result.ExitCode, result.Stderr);

        StringAssert.Contains(File.ReadAllText(svg), "share of operations slower (log scale)", "the tail on a log axis, labelled");
        PngImage image = PngImage.Load(png);
        Assert.AreEqual((900, 440), (image.Width, image.Height));
        int red = 0, blue = 0, ink = 0;
        for (int y = 0; y < image.Height; y++)
        {
            for (int x = 0; x < image.Width; x++)
            {
                int rgb = image.Rgb(x, y);
                red += rgb == 0xd62728 ? 1 : 0;
                blue += rgb == 0x1f77b4 ? 1 : 0;
                ink += rgb != 0xffffff ? 1 : 0;
            }
        }
        Assert.IsGreaterThan(200, red, "mode 0's curve and legend are drawn");
        Assert.IsGreaterThan(200, blue, "mode 1's curve and legend are drawn");
        Assert.IsGreaterThan(image.Width * image.Height / 100, ink, "not blank: axes, grid, labels and curves");
        // The legend stands beside the plot: right of its frame (x = 80 + 520) there is colour only in the legend's rows.
        int legendColumnsWithCurveColours = Enumerable.Range(620, 20).Count(x => Enumerable.Range(0, image.Height).Any(y => image.Rgb(x, y) is 0xd62728 or 0x1f77b4));
        Assert.IsGreaterThan(0, legendColumnsWithCurveColours, "the legend's swatches are outside the plot");
    }

    [TestMethod]
    public void Randwrite_repeats_its_reference_and_its_writes_in_rounds()
    {
        WbResult result = WbProcess.Run(null, "bench", "randwrite", "--ops", "2000", "--rounds", "2", "--json");
        Assert.AreEqual(0, result.ExitCode, result.Stderr);
        using JsonDocument document = JsonDocument.Parse(result.Stdout);
        JsonElement root = document.RootElement;
        Assert.AreEqual(2, root.GetProperty("rounds").GetInt32());
        double ratio = root.GetProperty("ratio_to_cache_sequential").GetDouble();
        Assert.AreEqual(root.GetProperty("bytes_per_second").GetDouble() / root.GetProperty("cache_sequential_bytes_per_second").GetDouble(), ratio, 1e-9,
            "the fields a single run reported are one round's, whole");
        JsonElement spread = root.GetProperty("ratio_spread");
        Assert.IsTrue(spread.GetProperty("min").GetDouble() <= ratio && ratio <= spread.GetProperty("max").GetDouble(), spread.ToString());
        Assert.AreEqual(2, root.GetProperty("iops_spread").GetProperty("rounds").GetInt32());
        Assert.AreEqual(JsonValueKind.Array, root.GetProperty("warnings").ValueKind);
    }

    [TestMethod]
    public void A_png_without_its_svg_is_refused()
    {
        WbResult result = WbProcess.Run(null, "bench", "fua", "--mode", "both", "--ops", "10", "--latency-png", "/tmp/never.png");
        Assert.AreEqual(2, result.ExitCode);
        StringAssert.Contains(result.Stderr, "give --latency-svg too");
        Assert.IsFalse(File.Exists("/tmp/never.png"));
    }

    [TestMethod]
    public void The_FUA_bench_measures_a_design_of_ones_own_against_the_same_floor()
    {
        using TempDirectory dir = new();
        string design = typeof(Writeboost.Samples.PmemWal.PmemWalTarget).Assembly.Location;
        WbResult result = WbProcess.Run(null, "bench", "fua", "--target", design, "--target-arg", "LogBytes=1048576", "--ops", "300", "--rounds", "2", "--work-dir", dir.Path, "--json");
        Assert.AreEqual(0, result.ExitCode, result.Stderr);
        using JsonDocument json = JsonDocument.Parse(result.Stdout);
        JsonElement root = json.RootElement;
        Assert.AreEqual("pmem-wal", root.GetProperty("target").GetString());
        Assert.AreEqual(-1, root.GetProperty("mode").GetInt32(), "no writeboost mode");
        Assert.AreEqual(2, root.GetProperty("rounds").GetInt32());
        Assert.IsGreaterThan(0.0, root.GetProperty("floor_p50_us").GetDouble());
        Assert.AreEqual(2, root.GetProperty("p50_over_floor_spread").GetProperty("rounds").GetInt32(), "the floor in every round");
        Assert.IsEmpty(Directory.GetFileSystemEntries(dir.Path), "its files are gone");

        WbResult misplaced = WbProcess.Run(null, "bench", "pmem", "--target", design);
        Assert.AreEqual(2, misplaced.ExitCode);
        StringAssert.Contains(misplaced.Stderr, "wb bench fua and randwrite measure a design of one's own, not pmem");
    }

    [TestMethod]
    public void The_random_write_bench_measures_a_design_of_ones_own_against_the_device_it_logs_to()
    {
        using TempDirectory dir = new();
        string design = typeof(Writeboost.Samples.PmemWal.PmemWalTarget).Assembly.Location;
        WbResult result = WbProcess.Run(null, "bench", "randwrite", "--target", design, "--ops", "500", "--rounds", "2", "--work-dir", dir.Path, "--json");
        Assert.AreEqual(0, result.ExitCode, result.Stderr);
        using JsonDocument json = JsonDocument.Parse(result.Stdout);
        JsonElement root = json.RootElement;
        Assert.AreEqual("pmem-wal", root.GetProperty("target").GetString());
        Assert.AreEqual("backing", root.GetProperty("reference_device").GetString(), "the WAL has no cache device: its log is replayed onto the backing one");
        Assert.AreEqual(-1, root.GetProperty("mode").GetInt32());
        Assert.AreEqual(2, root.GetProperty("ratio_spread").GetProperty("rounds").GetInt32(), "the reference in every round");
        Assert.AreEqual(root.GetProperty("bytes_per_second").GetDouble() / root.GetProperty("cache_sequential_bytes_per_second").GetDouble(), root.GetProperty("ratio_to_cache_sequential").GetDouble(), 1e-9);
        Assert.IsEmpty(Directory.GetFileSystemEntries(dir.Path), "its files are gone");
    }

    [TestMethod]
    public void One_mode_of_the_FUA_bench_is_repeated_in_rounds_with_the_spread_of_each_figure()
    {
        using TempDirectory dir = new();
        WbResult result = WbProcess.Run(null, "bench", "fua", "--mode", "0", "--ops", "200", "--rounds", "3", "--work-dir", dir.Path, "--json");
        Assert.AreEqual(0, result.ExitCode, result.Stderr);
        using JsonDocument json = JsonDocument.Parse(result.Stdout);
        JsonElement root = json.RootElement;
        Assert.AreEqual(3, root.GetProperty("rounds").GetInt32());
        JsonElement iops = root.GetProperty("iops_spread");
        Assert.AreEqual(3, iops.GetProperty("rounds").GetInt32());
        Assert.IsLessThanOrEqualTo(iops.GetProperty("median").GetDouble(), iops.GetProperty("min").GetDouble());
        Assert.IsGreaterThanOrEqualTo(iops.GetProperty("median").GetDouble(), iops.GetProperty("max").GetDouble());
        Assert.AreEqual(root.GetProperty("iops").GetDouble(), iops.GetProperty("median").GetDouble(), "the row is the median round's");
        Assert.IsTrue(root.TryGetProperty("p50_spread", out _) && root.TryGetProperty("warnings", out _));
    }
}
