using System.Diagnostics;

namespace Writeboost.Tests.Support;

/// <summary>What a run of the wb program printed and returned.</summary>
internal sealed record WbResult(int ExitCode, string Stdout, string Stderr);

/// <summary>Runs the real wb program (built beside the tests) as a child process, with its own environment.</summary>
internal static class WbProcess
{
    internal static WbResult Run(IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        ProcessStartInfo start = new("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "wb.dll"));
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        // Start from a clean slate for libpmem's variables: only what the test asks for.
        start.Environment.Remove("PMEM_IS_PMEM_FORCE");
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(120_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"wb {string.Join(' ', arguments)} did not finish in 120 s");
        }
        return new WbResult(process.ExitCode, stdout, stderr.Result);
    }
}
