using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Writeboost.Cli.Mishaps;

/// <summary>How one scenario (an action, a mode, a moment) ended.</summary>
/// <param name="Outcome">"refused" (every command said no with a clear line), "handled" (a command did it), "mixed", or "skipped".</param>
/// <param name="Violation">What was lost, destroyed or lied about; null when nothing was.</param>
/// <param name="Said">The first line the commands printed on stderr (the refusal an operator reads).</param>
internal sealed record MishapResult(string Action, int Mode, When When, string Outcome, string? Violation, string Said, IReadOnlyList<string> Commands, double Seconds);

/// <summary>
/// The operator-fault sweep (<c>wb mishaps</c>): for each action an operator can take around the device — a wiped,
/// foreign or swapped pmem, another backing disk, a benchmark on the device's own paths, a failing command on a
/// filesystem, a second server, a check or a reformat of a served device, a backing file truncated or grown — in
/// each mode, after a clean close, after a crash and while serving, it builds a device with acknowledged data, takes
/// the action as a user would (real wb processes), and judges with the ledger: the action must be refused with a
/// clear line and lose nothing, or be handled and lose nothing. Lost or changed data, another device's data
/// changed, a stack trace, a hang, or a refusal that leaves the cache unable to open with its own devices is a
/// violation.
/// </summary>
internal static class MishapSweep
{
    internal static IReadOnlyList<MishapResult> Run(WbRunner wb, IReadOnlyList<int> modes, IReadOnlyList<Mishap> mishaps, int seed, int jobs, Action<int, int>? progress, CancellationToken cancel)
    {
        List<(Mishap Mishap, int Mode, When When)> scenarios = [.. from m in mishaps from mode in m.Modes where modes.Contains(mode) from when in m.Whens select (m, mode, when)];
        ConcurrentDictionary<int, MishapResult> results = [];
        int done = 0;
        Parallel.ForEach(Enumerable.Range(0, scenarios.Count), new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, jobs) }, index =>
        {
            if (cancel.IsCancellationRequested)
            {
                return;
            }
            (Mishap mishap, int mode, When when) = scenarios[index];
            results[index] = RunOne(wb, mishap, mode, when, seed + index);
            progress?.Invoke(Interlocked.Increment(ref done), scenarios.Count);
        });
        return [.. results.OrderBy(r => r.Key).Select(r => r.Value)];
    }

    private static MishapResult RunOne(WbRunner wb, Mishap mishap, int mode, When when, int seed)
    {
        DateTime start = DateTime.UtcNow;
        using Scene scene = new(wb, mode, mishap.Name);
        MishapResult Result(string outcome, string? violation, string said, IReadOnlyList<string> commands) =>
            new(mishap.Name, mode, when, outcome, violation, said, commands, (DateTime.UtcNow - start).TotalSeconds);
        if (scene.Prepare(when, seed) is { } setupProblem)
        {
            return Result("set-up failed", setupProblem, "", []);
        }
        Staged? staged;
        try
        {
            staged = mishap.Stage(scene, wb, seed);
        }
        catch (InvalidOperationException error)
        {
            return Result("set-up failed", error.Message, "", []);
        }
        if (staged is null)
        {
            return Result("skipped", null, "a tool it needs is missing (mkfs.ext4)", []);
        }
        try
        {
            return Judge(wb, scene, when, staged, Result);
        }
        finally
        {
            foreach (Scene other in staged.Others)
            {
                other.Dispose();
            }
        }
    }

    private static MishapResult Judge(WbRunner wb, Scene scene, When when, Staged staged, Func<string, string?, string, IReadOnlyList<string>, MishapResult> result)
    {
        string[] tableFiles = [.. new[] { scene.Backing, scene.Cache, scene.Pmem }.OfType<string>()];
        Dictionary<string, byte[]> before = Hashes([.. tableFiles, .. staged.Bystanders]);
        List<string> violations = [];
        List<WbRun> runs = [];
        if (when == When.WhileServing)
        {
            scene.StartTraffic();
        }
        foreach (string[] command in staged.Commands)
        {
            WbRun run = command[0] == "serve" ? Serve(wb, command) : wb.Run(command);
            runs.Add(run);
            if (run.PrintedStackTrace)
            {
                violations.Add($"{run.CommandLine}: printed a stack trace");
            }
            else if (run.ExitCode is -1 or 134 or 139)
            {
                violations.Add($"{run.CommandLine}: {(run.ExitCode == -1 ? "hung" : $"crashed (exit {run.ExitCode})")}");
            }
            else if (run.ExitCode != 0 && !run.Stderr.Split('\n').Any(l => l.StartsWith("wb", StringComparison.Ordinal)))
            {
                violations.Add($"{run.CommandLine}: exit {run.ExitCode} without a line saying why");
            }
            if (staged.JudgeRun?.Invoke(run) is { } lie)
            {
                violations.Add($"{run.CommandLine}: {lie}");
            }
        }
        bool anyHandled = runs.Any(r => r.ExitCode == 0);
        bool allRefused = runs.All(r => r.ExitCode != 0);
        string outcome = allRefused ? "refused" : runs.All(r => r.ExitCode == 0) ? "handled" : "mixed";

        foreach (string bystander in staged.Bystanders.Where(b => Hash(b) is var now && !now.AsSpan().SequenceEqual(before[b])))
        {
            violations.Add($"{Path.GetFileName(bystander)}, which is not this device's, was changed");
        }
        if (when == When.WhileServing)
        {
            scene.StopTraffic();
            if (scene.VerifyLive() is { } live)
            {
                violations.Add($"clients of the running server: {live}");
            }
            if (!scene.Serving)
            {
                violations.Add("the running server died");
            }
            else if (scene.StopServer() is { } stop)
            {
                violations.Add(stop);
            }
        }
        else if (allRefused)
        {
            // A refusal writes nothing: the device's own files are as they were when the command ran.
            foreach (string file in tableFiles.Where(f => !Hash(f).AsSpan().SequenceEqual(before[f])))
            {
                violations.Add($"refused, but {Path.GetFileName(file)} was changed");
            }
            staged.Undo?.Invoke();
        }
        else if (anyHandled)
        {
            // Handled: the device as the action left it must hold everything (undo only afterwards, for the at-rest check below).
        }
        if (scene.VerifyAtRest() is { } atRest)
        {
            violations.Add(atRest);
        }
        string said = runs.Select(r => r.ExitCode == 0 ? $"ok ({r.Arguments[0]})" : r.FirstErrorLine).FirstOrDefault() ?? "";
        return result(outcome, violations.Count == 0 ? null : string.Join("; ", violations), said, [.. runs.Select(r => $"{r.CommandLine} → {r.ExitCode}")]);
    }

    /// <summary>wb serve as the action's command: refused (it exits with its line), or serving — then stopped cleanly, as a user would.</summary>
    private static WbRun Serve(WbRunner wb, string[] command)
    {
        (System.Diagnostics.Process? server, WbRun? failed) = wb.Start(command);
        if (failed is not null)
        {
            return failed;
        }
        Native.Signals.Terminate(server!.Id);
        bool exited = server.WaitForExit(60_000);
        if (!exited)
        {
            server.Kill();
            server.WaitForExit();
        }
        WbRun run = new(command, exited ? server.ExitCode : -1, "ready", "");
        server.Dispose();
        return run;
    }

    private static Dictionary<string, byte[]> Hashes(IEnumerable<string> files) => files.Distinct().ToDictionary(f => f, Hash);

    /// <summary>The file's SHA-256, read without a lock (a FileStream would take .NET's own flock, which a running server's refuses).</summary>
    private static byte[] Hash(string file)
    {
        using Devices.FileBlockDevice device = Devices.FileBlockDevice.Open(file, new Devices.FileBlockDeviceOptions { ReadOnly = true });
        using IncrementalHash hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] chunk = new byte[1 << 20];
        for (long offset = 0; offset < device.SizeBytes; offset += chunk.Length)
        {
            int length = (int)Math.Min(chunk.Length, device.SizeBytes - offset);
            device.Read(offset, chunk.AsSpan(0, length));
            hash.AppendData(chunk, 0, length);
        }
        return hash.GetHashAndReset();
    }
}
