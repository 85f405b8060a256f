using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text.Json;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Packaging;

/// <summary>
/// Installed the way .NET people install things: the solution's packable projects pack into a folder feed, a
/// project of someone else's (tests/PackageConsumer) restores the libraries from it and runs, and the wb tool
/// installs from it and runs. Each run packs a version of its own (0.1.0-test.*) and restores into a packages
/// folder of its own, so nothing of ours is left in the machine's NuGet cache; third-party packages (Mono.Unix)
/// come from that cache as a folder feed, with no network.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class PackageTests
{
    private static readonly string[] LibraryIds =
        ["Writeboost.Native", "Writeboost.Devices", "Writeboost.Pmem", "Writeboost.Cache", "Writeboost.Nbd", "Writeboost.CrashTest"];

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void The_packages_restore_into_a_consumer_and_the_tool_installs_and_runs()
    {
        string repository = RepositoryRoot();
        using TempDirectory dir = new();
        string feed = Path.Combine(dir.Path, "feed");
        string version = "0.1.0-test." + DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture) + "." + Environment.ProcessId;
        Dictionary<string, string> environment = new()
        {
            ["NUGET_PACKAGES"] = Path.Combine(dir.Path, "packages"),
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
            ["MSBUILDDISABLENODEREUSE"] = "1",
        };

        // The projects are built already (the tests reference them): pack what is there, under this run's version.
        Run(environment, repository, "dotnet", "pack", Path.Combine(repository, "Writeboost.sln"), "-c", Configuration, "--no-build",
            "-o", feed, "-p:VersionSuffix=" + version["0.1.0-".Length..], "--disable-build-servers");
        foreach (string id in LibraryIds)
        {
            using ZipArchive package = ZipFile.OpenRead(Path.Combine(feed, $"{id}.{version}.nupkg"));
            Assert.IsNotNull(package.GetEntry("README.md"), $"{id} has no README");
            Assert.IsNotNull(package.GetEntry($"lib/net10.0/{id}.xml"), $"{id} has no XML docs");
        }
        using (ZipArchive tool = ZipFile.OpenRead(Path.Combine(feed, $"Writeboost.Cli.{version}.nupkg")))
        {
            Assert.IsNotNull(tool.GetEntry("tools/net10.0/any/DotnetToolSettings.xml"), "Writeboost.Cli is not a tool package");
        }

        string config = Path.Combine(dir.Path, "NuGet.config");
        File.WriteAllText(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="writeboost" value="{feed}" />
                <add key="machine-cache" value="{MachinePackagesFolder()}" />
              </packageSources>
            </configuration>
            """);

        string consumer = Path.Combine(dir.Path, "consumer");
        Directory.CreateDirectory(consumer);
        foreach (string file in new[] { "PackageConsumer.csproj", "Program.cs" })
        {
            File.Copy(Path.Combine(repository, "tests", "PackageConsumer", file), Path.Combine(consumer, file));
        }
        Run(environment, consumer, "dotnet", "build", "-c", "Release", "-p:WriteboostVersion=" + version, "--disable-build-servers");
        string output = Run(environment, consumer, "dotnet", Path.Combine(consumer, "bin", "Release", "net10.0", "PackageConsumer.dll"), dir.Path);
        StringAssert.Contains(output, "read back 'hello pmem'");
        StringAssert.Contains(output, "pmem reopened: 'hello pmem'");
        StringAssert.Matches(output, new System.Text.RegularExpressions.Regex(@"crash campaign write-through: [1-9]\d* states checked, no violations"));
        StringAssert.Matches(output, new System.Text.RegularExpressions.Regex(@"crash campaign buffers-fua: \d+ states checked, violation: "));
        StringAssert.Contains(output, "verdict: the harness passed the honest design and caught the flawed one");

        string tools = Path.Combine(dir.Path, "tools");
        Run(environment, dir.Path, "dotnet", "tool", "install", "--tool-path", tools, "--configfile", config, "Writeboost.Cli", "--version", version);
        string wb = Path.Combine(tools, "wb");
        // The command-line parser prints the version on stderr.
        (string versionOut, string versionErr) = RunCapturing(environment, dir.Path, wb, "--version");
        StringAssert.Matches(versionOut + versionErr, new System.Text.RegularExpressions.Regex(@"^wb \d+\.\d+\.\d+"));
        using (JsonDocument campaign = JsonDocument.Parse(Run(environment, dir.Path, wb, "crashtest", "--states", "200", "--json")))
        {
            Assert.IsGreaterThanOrEqualTo(200L, campaign.RootElement.GetProperty("states_checked").GetInt64());
            Assert.AreEqual(0, campaign.RootElement.GetProperty("violations").GetInt64());
        }

        // Native libraries are found as from the repository's own build: libpmem from the system, Mono.Unix's shim from the package.
        string pmem = dir.File("pmem.img");
        Writeboost.Devices.FileBlockDevice.CreateFile(pmem, 1 << 20);
        using JsonDocument installed = JsonDocument.Parse(Run(environment, dir.Path, wb, "pmem", "info", pmem, "--json"));
        using JsonDocument built = JsonDocument.Parse(WbProcess.Run(null, "pmem", "info", pmem, "--json").Stdout);
        Assert.AreEqual(built.RootElement.GetProperty("libpmem").GetString(), installed.RootElement.GetProperty("libpmem").GetString());
    }

#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? at = new(AppContext.BaseDirectory); at is not null; at = at.Parent)
        {
            if (File.Exists(Path.Combine(at.FullName, "Writeboost.sln")))
            {
                return at.FullName;
            }
        }
        throw new InvalidOperationException($"no Writeboost.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>The machine's NuGet packages folder (where the repository's own restore put Mono.Unix), used as a read-only feed.</summary>
    private static string MachinePackagesFolder() =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } folder
            ? folder
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>Runs a command to completion and returns its stdout; a non-zero exit fails the test with everything it printed.</summary>
    private string Run(IReadOnlyDictionary<string, string> environment, string workingDirectory, string program, params string[] arguments) =>
        RunCapturing(environment, workingDirectory, program, arguments).Stdout;

    private (string Stdout, string Stderr) RunCapturing(IReadOnlyDictionary<string, string> environment, string workingDirectory, string program, params string[] arguments)
    {
        ProcessStartInfo start = new(program)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        // The test host runs under MSBuild-aware tooling; a child build must find its own SDK, not inherit that one's.
        foreach (string inherited in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || k == "MSBUILD_EXE_PATH").ToList())
        {
            start.Environment.Remove(inherited);
        }
        foreach ((string key, string value) in environment)
        {
            start.Environment[key] = value;
        }
        Stopwatch clock = Stopwatch.StartNew();
        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(300_000))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{program} {string.Join(' ', arguments)} did not finish in 300 s");
        }
        TestContext.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1} s  {Path.GetFileName(program)} {string.Join(' ', arguments)}");
        Assert.AreEqual(0, process.ExitCode, $"{program} {string.Join(' ', arguments)} exited {process.ExitCode}:\n{stdout}\n{stderr.Result}");
        return (stdout, stderr.Result);
    }
}
