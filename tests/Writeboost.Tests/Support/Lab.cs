using System.Diagnostics;

namespace Writeboost.Tests.Support;

/// <summary>One boot of the lab: the devices it gets, the command it runs, how it ends.</summary>
internal sealed record LabRun(string WorkDirectory, string Command)
{
    /// <summary>Virtio disks as "NAME:SIZE" (files in the work directory, /dev/vda, /dev/vdb, ... in order).</summary>
    public IReadOnlyList<string> Disks { get; init; } = [];

    /// <summary>Emulated NVDIMMs as "NAME:SIZE" (files in the work directory; region0, region1, ...).</summary>
    public IReadOnlyList<string> Nvdimms { get; init; } = [];

    /// <summary>End with a power cut (QEMU killed the moment the command returns) instead of a clean shutdown.</summary>
    public bool PowerCut { get; init; }

    public int TimeoutSeconds { get; init; } = 600;
}

/// <summary>
/// What a lab boot printed: the command's output (stdout and stderr, in order), the lab's own messages, and the
/// exit code. The guest scripts print sections, "== NAME" then "key value" lines; <see cref="Section"/> reads one.
/// </summary>
internal sealed record LabResult(int ExitCode, string Output, string LabMessages)
{
    /// <summary>The "key value" lines of section <paramref name="name"/> (the last value of a repeated key).</summary>
    public IReadOnlyDictionary<string, string> Section(string name)
    {
        Dictionary<string, string> values = [];
        bool inside = false;
        foreach (string line in Output.Split('\n'))
        {
            if (line.StartsWith("== ", StringComparison.Ordinal))
            {
                inside = line[3..].Trim() == name;
                continue;
            }
            if (inside && line.Length > 0)
            {
                int space = line.IndexOf(' ', StringComparison.Ordinal);
                values[space < 0 ? line : line[..space]] = space < 0 ? "" : line[(space + 1)..].Trim();
            }
        }
        if (values.Count == 0)
        {
            Assert.Fail($"the lab's output has no section '{name}':\n{this}");
        }
        return values;
    }

    /// <summary>Seconds from QEMU's start to the guest's stage 2, as lab.sh measured it.</summary>
    public int BootSeconds => int.TryParse(Between(LabMessages, "lab: boot ", " s"), out int seconds) ? seconds : -1;

    public override string ToString() => $"exit {ExitCode}\n--- output\n{Output}\n--- lab\n{LabMessages}";

    private static string Between(string text, string before, string after)
    {
        int start = text.IndexOf(before, StringComparison.Ordinal);
        if (start < 0)
        {
            return "";
        }
        start += before.Length;
        int end = text.IndexOf(after, start, StringComparison.Ordinal);
        return end < 0 ? "" : text[start..end];
    }
}

/// <summary>
/// Drives pmem-emu/lab.sh, the VM with a real kernel under the toolkit. <see cref="Require"/> sets the lab up once
/// per test run (installs what is missing, builds the initramfs, publishes wb ReadyToRun); the lab tests skip,
/// saying why, only when QEMU cannot be installed, or when the run's first boot cannot boot the guest. Lab tests must not run
/// at the same time (one VM of 2 vCPUs at a time): every lab test class is [DoNotParallelize].
/// </summary>
internal static class Lab
{
    private static readonly Lazy<string?> s_unavailable = new(Prepare, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The repository's root (the folder with Writeboost.sln), found from the test assembly's folder.</summary>
    internal static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>A script of tests/Writeboost.Tests/Lab/guest, by its path as the guest sees it (the same as here).</summary>
    internal static string GuestScript(string name) => Path.Combine(RepositoryRoot, "tests", "Writeboost.Tests", "Lab", "guest", name);

    // Set once a boot worked: from then on a boot that fails is a failure, not a reason to skip.
    private static volatile bool s_booted;
    private static volatile string? s_cannotBoot;

    /// <summary>Marks the test inconclusive when QEMU cannot be installed or booted here; fails when the set-up broke otherwise.</summary>
    internal static void Require()
    {
        if (s_unavailable.Value is { } reason)
        {
            Assert.Inconclusive($"skipped: the lab cannot run here: {reason}");
        }
    }

    /// <summary>Boots the lab for one command and returns what it printed; fails the test if the lab itself failed.</summary>
    internal static LabResult Run(LabRun run)
    {
        if (s_cannotBoot is { } why)
        {
            Assert.Inconclusive(why);
        }
        List<string> arguments = ["run", run.PowerCut ? "--power-cut" : "--shutdown", "--work", run.WorkDirectory, "--timeout", run.TimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)];
        foreach (string disk in run.Disks)
        {
            arguments.AddRange(["--disk", disk]);
        }
        foreach (string nvdimm in run.Nvdimms)
        {
            arguments.AddRange(["--nvdimm", nvdimm]);
        }
        arguments.AddRange(["--", run.Command]);
        (int code, string output, string messages) = Script(arguments, TimeSpan.FromSeconds(run.TimeoutSeconds + 420));
        LabResult result = new(code, output, messages);
        if (code == 125 && !s_booted)
        {
            // The first boot of the run is the test of whether QEMU can boot the lab here at all.
            s_cannotBoot = $"skipped: QEMU cannot boot the lab's kernel here: {Tail(messages, 30)}";
            Assert.Inconclusive(s_cannotBoot);
        }
        s_booted |= code != 125;
        if (code is 124 or 125)
        {
            Assert.Fail($"the lab failed ({(code == 124 ? "the command timed out" : "the guest did not boot or stopped")}):\n{result}");
        }
        return result;
    }

    private static string? Prepare()
    {
        (int setup, string setupOutput, string setupMessages) = Script(["setup"], TimeSpan.FromMinutes(40));
        if (setup != 0)
        {
            // Only a QEMU that cannot be had is a reason to skip; any other broken step is a failure.
            string reason = $"lab.sh setup exited {setup}: {Tail(setupOutput + setupMessages, 15)}";
            if (!OnPath("qemu-system-x86_64"))
            {
                return $"QEMU cannot be installed ({reason})";
            }
            throw new InvalidOperationException(reason);
        }
        return null;
    }

    /// <summary>Runs lab.sh; a run past <paramref name="limit"/> is killed with its whole tree (QEMU included).</summary>
    private static (int Code, string Output, string Messages) Script(IReadOnlyList<string> arguments, TimeSpan limit)
    {
        ProcessStartInfo start = new("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = RepositoryRoot,
        };
        start.ArgumentList.Add(Path.Combine(RepositoryRoot, "pmem-emu", "lab.sh"));
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(start)!;
        process.StandardInput.Close();
        Task<string> messages = process.StandardError.ReadToEndAsync();
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Assert.Fail($"lab.sh {string.Join(' ', arguments)} did not finish in {limit.TotalSeconds} s; killed. {Tail(output.Result + messages.Result, 30)}");
        }
        process.WaitForExit();
        return (process.ExitCode, output.Result, messages.Result);
    }

    private static string Tail(string text, int lines)
    {
        string[] all = text.TrimEnd().Split('\n');
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }

    private static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(dir => dir.Length > 0 && File.Exists(Path.Combine(dir, program)));

    private static string FindRepositoryRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Writeboost.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no Writeboost.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>
/// A lab scenario of two boots on the same devices: the first ends with a power cut (or as asked), the second
/// boots what the first left and verifies it. Run once, lazily, by the first test of a class that asks for it;
/// the class's tests then judge parts of its output. The work directory (disks, NVDIMMs, ledgers) is removed
/// by <see cref="Dispose"/>.
/// </summary>
internal sealed class LabScenario : IDisposable
{
    private readonly TempDirectory _work = new();

    internal LabScenario(string script, string[] writeArguments, IReadOnlyList<string> disks, IReadOnlyList<string> nvdimms)
    {
        Stopwatch clock = Stopwatch.StartNew();
        try
        {
            Write = Lab.Run(new LabRun(_work.Path, $"{Lab.GuestScript(script)} write {string.Join(' ', writeArguments)}")
            {
                Disks = disks,
                Nvdimms = nvdimms,
                PowerCut = true,
            });
            if (Write.ExitCode != 0)
            {
                throw new InvalidOperationException($"the first boot of {script} failed:\n{Write}");
            }
            Verify = Lab.Run(new LabRun(_work.Path, $"{Lab.GuestScript(script)} verify") { Disks = disks, Nvdimms = nvdimms });
        }
        catch
        {
            // A scenario that failed is never handed out, so nothing else would remove its disk images.
            _work.Dispose();
            throw;
        }
        Seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"lab scenario {script}: {Seconds:F0} s for two boots (boot {Write.BootSeconds} s and {Verify.BootSeconds} s)");
    }

    /// <summary>The first boot, ended by a power cut.</summary>
    public LabResult Write { get; }

    /// <summary>The second boot on what the first left, ended by a clean shutdown.</summary>
    public LabResult Verify { get; }

    public double Seconds { get; }

    public string WorkFile(string name) => _work.File(name);

    public void Dispose() => _work.Dispose();
}

/// <summary>
/// The one scenario a lab test class's tests read: booted on the first read (once the lab is known to run here,
/// else the test is skipped with the reason), its disk images removed at the class's cleanup.
/// </summary>
internal sealed class SharedLabScenario(Func<LabScenario> boot) : IDisposable
{
    private readonly Lazy<LabScenario> _scenario = new(boot);

    public LabScenario Value
    {
        get
        {
            Lab.Require();
            return _scenario.Value;
        }
    }

    public void Dispose()
    {
        if (_scenario.IsValueCreated)
        {
            _scenario.Value.Dispose();
        }
    }
}
