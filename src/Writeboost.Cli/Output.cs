using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Writeboost.Cli;

/// <summary>
/// What the verbs print: JSON the way scripts read it (snake_case field names, one document per command), and
/// aligned text through Spectre.Console. On a terminal the table header is bold; when stdout is redirected the
/// text is plain (no escape codes). Either way it has the same shape as always: columns two spaces apart, the
/// first left-aligned, the rest right-aligned, no trailing blanks, never cropped to the terminal's width.
/// </summary>
internal static class Output
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>Wider than any table of ours: Spectre lays it out at its natural width and never crops a cell.</summary>
    private const int WideColumns = 4096;

    internal static void Json<T>(T value, TextWriter? to = null) => (to ?? Console.Out).WriteLine(JsonSerializer.Serialize(value, Options));

    /// <summary>One line of compact JSON (the control channel's messages), same naming as <see cref="Json"/>.</summary>
    internal static string JsonLine<T>(T value) => JsonSerializer.Serialize(value, CompactOptions);

    internal static T? FromJsonLine<T>(string line) => JsonSerializer.Deserialize<T>(line, CompactOptions);

    private static readonly JsonSerializerOptions CompactOptions = new(Options) { WriteIndented = false };

    /// <summary>Prints "key  value" lines with the keys padded to one width.</summary>
    internal static void KeyValues(IReadOnlyList<(string Key, string Value)> pairs)
    {
        Grid grid = new();
        grid.AddColumn(new GridColumn().NoWrap().PadLeft(0).PadRight(2));
        grid.AddColumn(new GridColumn().PadLeft(0).PadRight(0));
        foreach ((string key, string value) in pairs)
        {
            grid.AddRow(new Text(key), new Text(value));
        }
        Write(grid);
    }

    /// <summary>Prints rows as an aligned table (first row is the header; first column left, the rest right-aligned).</summary>
    internal static void Table(IReadOnlyList<string[]> rows)
    {
        int columns = rows.Max(r => r.Length);
        Table table = new Table().Border(TableBorder.None);
        table.ShowHeaders = false;
        for (int c = 0; c < columns; c++)
        {
            TableColumn column = new TableColumn(string.Empty).NoWrap().PadLeft(0).PadRight(c == columns - 1 ? 0 : 2);
            table.AddColumn(c == 0 ? column.LeftAligned() : column.RightAligned());
        }
        for (int r = 0; r < rows.Count; r++)
        {
            Style style = r == 0 ? new Style(decoration: Decoration.Bold) : Style.Plain;
            table.AddRow(Enumerable.Range(0, columns).Select(c => (IRenderable)new Text(c < rows[r].Length ? rows[r][c] : string.Empty, style)));
        }
        Write(table);
    }

    /// <summary>
    /// Renders to stdout, through text: the width is never the terminal's (Spectre would squeeze and crop cells to
    /// fit; a long line should wrap in the terminal whole, as plain text does), and each line loses the blanks that
    /// padding leaves at its end (scripts split on them, and on a terminal they would wrap as empty lines). Escape
    /// codes (the bold header) only when stdout is a terminal.
    /// </summary>
    private static void Write(IRenderable renderable)
    {
        bool terminal = !Console.IsOutputRedirected;
        using StringWriter text = new();
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = terminal ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(text),
        });
        console.Profile.Width = WideColumns;
        console.Write(renderable);
        foreach (string line in text.ToString().TrimEnd('\n').Split('\n'))
        {
            Console.WriteLine(line.TrimEnd());
        }
    }
}
