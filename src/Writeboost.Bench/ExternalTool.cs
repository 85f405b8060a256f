using System.Diagnostics;

namespace Writeboost.Bench;

/// <summary>A program the benchmarks run beside themselves (fio, rsvg-convert): started, waited for, its failure one clear line.</summary>
internal static class ExternalTool
{
    /// <summary>Runs <paramref name="tool"/> and returns what it printed on stdout.</summary>
    /// <param name="install">How to install it, for the error when it is missing (e.g. "apt-get install -y fio").</param>
    /// <exception cref="InvalidOperationException">The tool is missing or exited with an error (its stderr in the message).</exception>
    public static string Run(string tool, IEnumerable<string> arguments, string install, IReadOnlyDictionary<string, string>? environment = null)
    {
        ProcessStartInfo start = new(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"{tool} did not start");
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new InvalidOperationException($"{tool} is not installed: run '{install}'");
        }
        using (process)
        {
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{tool} failed (exit {process.ExitCode}): {stderr.Result.Trim()}");
            }
            return output;
        }
    }
}
