using System.Text.Json;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Cli;

/// <summary>
/// Output that goes to a file or a pipe is plain text for scripts: no escape codes (colours, cursor moves, a
/// progress bar), columns two spaces apart with no trailing blanks, whatever draws it on a terminal.
/// </summary>
[TestClass]
public sealed class PlainOutputTests
{
    private const char Escape = '\u001b';

    [TestMethod]
    public void A_redirected_table_and_progress_verb_prints_no_escape_codes_and_keeps_its_columns()
    {
        // bench fua draws a progress bar while it runs and prints a table at the end (one round: the table alone;
        // more print their spread after it, BenchRoundsTests).
        WbResult result = WbProcess.Run(null, "bench", "fua", "--ops", "200", "--rounds", "1");
        Assert.AreEqual(0, result.ExitCode, result.Stderr);
        Assert.IsFalse(result.Stdout.Contains(Escape, StringComparison.Ordinal), result.Stdout);
        Assert.IsFalse(result.Stderr.Contains(Escape, StringComparison.Ordinal), result.Stderr);

        string[] lines = result.Stdout.TrimEnd('\n').Split('\n');
        Assert.AreEqual(2, lines.Length, result.Stdout);
        CollectionAssert.AreEqual(
            new[] { "mode", "writers", "ops", "IOPS", "p50 us", "p99 us", "full segs", "partial segs", "cache B/user B", "cache flushes" },
            lines[0].Split("  ", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        string[] row = lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.AreEqual(10, row.Length, lines[1]);
        Assert.AreEqual("0", row[0]);
        Assert.AreEqual("1", row[1]);
        Assert.AreEqual("200", row[2]);
        // The first column is left-aligned, the rest right-aligned: every line ends in the last column's edge.
        Assert.IsTrue(lines.All(l => l.Length == lines[0].Length && l == l.TrimEnd()), result.Stdout);
        Assert.IsTrue(lines[1].StartsWith("0 ", StringComparison.Ordinal), lines[1]);
    }

    [TestMethod]
    public void A_redirected_crash_campaign_prints_its_table_and_totals_plainly_and_its_json_is_unchanged()
    {
        WbResult text = WbProcess.Run(null, "crashtest", "--mode", "0", "--states", "60");
        Assert.AreEqual(0, text.ExitCode, text.Stderr);
        Assert.IsFalse(text.Stdout.Contains(Escape, StringComparison.Ordinal), text.Stdout);
        Assert.IsFalse(text.Stderr.Contains(Escape, StringComparison.Ordinal), text.Stderr);
        string[] lines = text.Stdout.TrimEnd('\n').Split('\n');
        StringAssert.StartsWith(lines[0], "mode   workload");
        StringAssert.EndsWith(lines[0], "violations  states/s");
        Assert.IsTrue(lines.Any(l => l.StartsWith("states checked: ", StringComparison.Ordinal)), text.Stdout);
        Assert.IsTrue(lines.All(l => l == l.TrimEnd()), text.Stdout);

        WbResult json = WbProcess.Run(null, "crashtest", "--mode", "0", "--states", "60", "--json");
        Assert.AreEqual(0, json.ExitCode, json.Stderr);
        Assert.IsFalse(json.Stdout.Contains(Escape, StringComparison.Ordinal), json.Stdout);
        using JsonDocument document = JsonDocument.Parse(json.Stdout);
        Assert.IsTrue(document.RootElement.GetProperty("states_checked").GetInt64() > 0);
        Assert.AreEqual(0, document.RootElement.GetProperty("violations").GetInt64());
    }

    [TestMethod]
    public void Redirected_key_values_are_padded_to_one_width()
    {
        using TempDirectory dir = new();
        string path = dir.File("pmem.img");
        Writeboost.Devices.FileBlockDevice.CreateFile(path, 1 << 20);
        WbResult result = WbProcess.Run(null, "pmem", "info", path);
        Assert.AreEqual(0, result.ExitCode, result.Stderr);
        Assert.IsFalse(result.Stdout.Contains(Escape, StringComparison.Ordinal), result.Stdout);
        string[] lines = result.Stdout.TrimEnd('\n').Split('\n');
        Assert.AreEqual($"path                {path}", lines[0]);
        Assert.AreEqual("backend             block", lines[1]);
    }
}
