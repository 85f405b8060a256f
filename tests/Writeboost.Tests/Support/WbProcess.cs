using System.Diagnostics;

namespace Writeboost.Tests.Support;

/// <summary>What a run of the wb program printed and returned.</summary>
internal sealed record WbResult(int ExitCode, string Stdout, string Stderr);

/// <summary>Runs the real wb program (built beside the tests) as a child process, with its own environment.</summary>
internal static class WbProcess
{
    /// <summary>Starts wb (e.g. serve) and returns once it printed a line containing <paramref name="readyText"/>.</summary>
    internal static Process StartUntil(string readyText, IReadOnlyDictionary<string, string>? environment, params string[] arguments) =>
        StartUntil(readyText, environment, out _, arguments);

    /// <summary>As above; <paramref name="stderr"/> completes with everything it printed on stderr once it exits.</summary>
    internal static Process StartUntil(string readyText, IReadOnlyDictionary<string, string>? environment, out Task<string> stderr, params string[] arguments)
    {
        ProcessStartInfo start = Prepare(environment, arguments);
        Process process = Process.Start(start)!;
        stderr = process.StandardError.ReadToEndAsync();
        while (process.StandardOutput.ReadLine() is { } line)
        {
            if (line.Contains(readyText, StringComparison.Ordinal))
            {
                return process;
            }
        }
        process.WaitForExit();
        throw new InvalidOperationException($"wb {string.Join(' ', arguments)} exited ({process.ExitCode}) before '{readyText}': {stderr.Result}");
    }

    /// <summary>Starts wb with its output redirected and returns at once (the caller reads stdout and waits).</summary>
    internal static Process Start(IReadOnlyDictionary<string, string>? environment, params string[] arguments) =>
        Process.Start(Prepare(environment, arguments))!;

    /// <summary><c>wb create TABLE</c>, which must succeed: only create formats, so a test serving a fresh device runs it first.</summary>
    internal static void Create(IReadOnlyDictionary<string, string>? environment, IReadOnlyList<string> table)
    {
        WbResult created = Run(environment, ["create", .. table]);
        if (created.ExitCode != 0)
        {
            throw new InvalidOperationException($"wb create {string.Join(' ', table)} failed ({created.ExitCode}): {created.Stderr}");
        }
    }

    internal static WbResult Run(IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        using Process process = Process.Start(Prepare(environment, arguments))!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(120_000))
        {
            // A wb that never ends (a server that should have refused, a hang) fails the test instead of stalling the run.
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"wb {string.Join(' ', arguments)} did not finish in 120 s");
        }
        return new WbResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    private static ProcessStartInfo Prepare(IReadOnlyDictionary<string, string>? environment, string[] arguments)
    {
        ProcessStartInfo start = new("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // WB_UNDER_TEST: another build's wb.dll, to show a test fails on it (an older commit) and passes on this one.
        start.ArgumentList.Add(Environment.GetEnvironmentVariable("WB_UNDER_TEST") is { Length: > 0 } other ? other : Path.Combine(AppContext.BaseDirectory, "wb.dll"));
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
        return start;
    }
}
