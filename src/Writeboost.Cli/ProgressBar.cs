namespace Writeboost.Cli;

/// <summary>
/// A one-line progress bar on stderr for work longer than a moment; silent when stderr is not a terminal (CI,
/// pipes) or when JSON is asked for, so scripts see only their output.
/// </summary>
internal sealed class ProgressBar(string label, bool enabled)
{
    private const int Width = 30;
    private long _lastDrawMs;
    private bool _drawn;

    public static ProgressBar For(string label, bool json) => new(label, !json && !Console.IsErrorRedirected);

    /// <summary>Draws the bar at <paramref name="fraction"/> (0..1), at most five times a second.</summary>
    public void Report(double fraction, string detail = "")
    {
        if (!enabled || Environment.TickCount64 - _lastDrawMs < 200)
        {
            return;
        }
        _lastDrawMs = Environment.TickCount64;
        fraction = Math.Clamp(fraction, 0, 1);
        int filled = (int)(fraction * Width);
        Console.Error.Write($"\r{label} [{new string('#', filled)}{new string('.', Width - filled)}] {fraction,4:P0} {detail}".PadRight(78));
        _drawn = true;
    }

    public void Done()
    {
        if (_drawn)
        {
            Console.Error.Write("\r" + new string(' ', 78) + "\r");
        }
    }
}
