using System.Diagnostics;

namespace Writeboost.Cli.Mishaps;

/// <summary>What one run of the wb program did.</summary>
internal sealed record WbRun(IReadOnlyList<string> Arguments, int ExitCode, string Stdout, string Stderr)
{
    public string CommandLine => "wb " + string.Join(' ', Arguments);

    /// <summary>A .NET stack trace in what it printed ("   at Type.Method(...)").</summary>
    public bool PrintedStackTrace => (Stdout + Stderr).Split('\n').Any(l => l.StartsWith("   at ", StringComparison.Ordinal));

    /// <summary>The first line it printed on stderr (where a refusal is).</summary>
    public string FirstErrorLine => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(l => l.StartsWith("wb", StringComparison.Ordinal)) ?? Stderr.Split('\n').FirstOrDefault() ?? "";
}

/// <summary>
/// Runs the wb program as a user would: a process of its own, with its own locks, signals and exit code. By
/// default this very program; another build can be judged instead (its apphost, or its wb.dll run by dotnet).
/// </summary>
internal sealed class WbRunner(string? program)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    /// <summary>The program and the arguments before the verb: ["/path/wb"] or ["dotnet", "/path/wb.dll"].</summary>
    private readonly string[] _command = Resolve(program);

    private static string[] Resolve(string? program)
    {
        if (program is not null)
        {
            string full = Path.GetFullPath(program);
            if (!File.Exists(full))
            {
                throw new UsageException($"--wb {program}: no such file (give a wb apphost or its wb.dll)");
            }
            return full.EndsWith(".dll", StringComparison.Ordinal) ? ["dotnet", full] : [full];
        }
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which program this is");
        return Path.GetFileNameWithoutExtension(self) == "dotnet"
            ? ["dotnet", Path.Combine(AppContext.BaseDirectory, "wb.dll")]
            : [self];
    }

    public WbRun Run(params string[] arguments)
    {
        using Process process = Process.Start(Prepare(arguments))!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(Timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return new WbRun(arguments, -1, stdout.Result, stderr.Result + $"\n(hung: killed after {Timeout.TotalSeconds:F0} s)");
        }
        return new WbRun(arguments, process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Starts a long-running verb (serve) and returns once it printed a line with "ready" — or null, with what it printed, if it exited first.</summary>
    public (Process? Process, WbRun? Failed) Start(params string[] arguments)
    {
        Process process = Process.Start(Prepare(arguments))!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        List<string> lines = [];
        Task<bool> ready = Task.Run(() =>
        {
            while (process.StandardOutput.ReadLine() is { } line)
            {
                lines.Add(line);
                if (line.Contains("ready", StringComparison.Ordinal))
                {
                    return true;
                }
            }
            return false;
        });
        if (ready.Wait(Timeout) && ready.Result)
        {
            // Drain the rest of its output so it never blocks on a full pipe.
            _ = Task.Run(() => process.StandardOutput.ReadToEnd());
            return (process, null);
        }
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }
        process.WaitForExit();
        WbRun failed = new(arguments, process.ExitCode, string.Join('\n', lines), stderr.Result);
        process.Dispose();
        return (null, failed);
    }

    private ProcessStartInfo Prepare(string[] arguments)
    {
        ProcessStartInfo start = new(_command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string word in _command.Skip(1).Concat(arguments))
        {
            start.ArgumentList.Add(word);
        }
        // Mode 1's pmem is a /dev/shm file on the dax backend: cache-line write-back as on real pmem.
        start.Environment["PMEM_IS_PMEM_FORCE"] = "1";
        return start;
    }
}
