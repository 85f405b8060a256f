using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Writeboost.Cli;

/// <summary>JSON the way scripts read it: snake_case field names, one document per command.</summary>
internal static class Output
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    internal static void Json<T>(T value) => Console.WriteLine(JsonSerializer.Serialize(value, Options));

    /// <summary>Prints "key  value" lines with the keys padded to one width.</summary>
    internal static void KeyValues(IReadOnlyList<(string Key, string Value)> pairs)
    {
        int width = pairs.Max(p => p.Key.Length);
        foreach ((string key, string value) in pairs)
        {
            Console.WriteLine($"{key.PadRight(width)}  {value}");
        }
    }

    /// <summary>Prints rows as an aligned table (first row is the header; first column left, the rest right-aligned).</summary>
    internal static void Table(IReadOnlyList<string[]> rows)
    {
        int columns = rows.Max(r => r.Length);
        int[] widths = new int[columns];
        foreach (string[] row in rows)
        {
            for (int c = 0; c < row.Length; c++)
            {
                widths[c] = Math.Max(widths[c], row[c].Length);
            }
        }
        foreach (string[] row in rows)
        {
            Console.WriteLine(string.Join("  ", row.Select((cell, c) => c == 0 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))).TrimEnd());
        }
    }
}
