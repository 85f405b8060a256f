namespace Writeboost.Cli.Mishaps;

/// <summary>
/// An operator's action staged on a scene: the wb commands to run as the user types them, the files around the
/// device that nothing may change (another cache's, another disk, a filesystem), and how to undo the action's own
/// change to the environment (a wiped pmem file put back) before the data is checked after a refusal.
/// </summary>
internal sealed record Staged(IReadOnlyList<string[]> Commands, IReadOnlyList<string> Bystanders, Action? Undo = null)
{
    /// <summary>Other scenes the action made (another cache): disposed with the scenario.</summary>
    public IReadOnlyList<Scene> Others { get; init; } = [];

    /// <summary>A command whose outcome this action judges its own way (null: refused or handled, both fine when nothing is lost).</summary>
    public Func<WbRun, string?>? JudgeRun { get; init; }
}

/// <summary>One operator action the sweep tries: its name, what it is, in which modes and at which moments.</summary>
internal sealed record Mishap(string Name, string What, int[] Modes, When[] Whens, Func<Scene, WbRunner, int, Staged?> Stage)
{
    private static readonly When[] AtRest = [When.AfterClose, When.AfterCrash];
    private static readonly When[] Serving = [When.WhileServing];

    /// <summary>Every action of the sweep (docs/reliability.md, "Operator faults").</summary>
    internal static IReadOnlyList<Mishap> All { get; } =
    [
        new("blank-pmem", "the pmem file wiped and recreated (a reboot of /dev/shm), then the same wb serve", [1], AtRest, (scene, _, _) =>
        {
            string saved = scene.Pmem + ".saved";
            File.Move(scene.Pmem!, saved);
            scene.ShmFile(Path.GetFileName(scene.Pmem!), Scene.PmemBytes);
            return new Staged([ServeAt(scene)], [], () => { File.Delete(scene.Pmem!); File.Move(saved, scene.Pmem!); });
        }),
        new("foreign-pmem", "another cache's pmem buffer given in the table", [1], AtRest, (scene, wb, seed) =>
        {
            Scene other = OtherCache(scene, wb, seed, When.AfterCrash);
            return new Staged([ServeAt(scene, scene.TableWith(scene.Backing, scene.Cache, other.Pmem))], [other.Backing, other.Cache, other.Pmem!]) { Others = [other] };
        }),
        new("swapped-pmem", "two caches' pmem buffers swapped in their tables", [1], AtRest, (scene, wb, seed) =>
        {
            Scene other = OtherCache(scene, wb, seed, When.AfterCrash);
            return new Staged(
                [ServeAt(scene, scene.TableWith(scene.Backing, scene.Cache, other.Pmem)), ServeAt(scene, other.TableWith(other.Backing, other.Cache, scene.Pmem))],
                [other.Backing, other.Cache, other.Pmem!]) { Others = [other] };
        }),
        new("other-backing", "another disk of the same size given as the backing device, then drop_caches", [0, 1], AtRest, (scene, _, _) =>
        {
            string other = scene.File("other-backing.img", Scene.BackingBytes);
            return new Staged([["message", .. scene.TableWith(other, scene.Cache, scene.Pmem), "-m", "drop_caches"]], [other]);
        }),
        new("bench-on-pmem", "wb bench pmem on the device's own pmem file", [1], [.. AtRest, When.WhileServing], (scene, _, _) =>
            new Staged([["bench", "pmem", scene.Pmem!, "--ops", "2000"]], [])),
        new("bench-on-cache", "wb bench fua on the device's own table", [0, 1], [.. AtRest, When.WhileServing], (scene, _, _) =>
            new Staged([["bench", "fua", .. scene.Table, "--ops", "200"]], [])),
        new("failing-command-on-a-filesystem", "commands that fail (a typo in the message, a pmem too small) or would format, given a path holding ext4", [0, 1], [When.AfterClose], (scene, _, _) =>
        {
            string filesystem = scene.File("ext4.img", Scene.CacheBytes);
            if (!MakeExt4(filesystem))
            {
                return null;
            }
            string tinyPmem = scene.ShmFile("tiny.pmem", 1 << 20);
            List<string[]> commands = scene.Mode == 0
                ?
                [
                    ["message", "0", scene.Backing, filesystem, "-m", "bogus"],
                    ["message", "0", scene.Backing, filesystem, "-m", "drop_caches"],
                    ["create", "0", scene.Backing, filesystem],
                    ServeAt(scene, ["0", scene.Backing, filesystem]),
                    ["bench", "fua", "0", scene.Backing, filesystem, "--ops", "100"],
                ]
                :
                [
                    ["create", "1", scene.Backing, filesystem, tinyPmem, "pmem_backend", "dax"],
                    ["create", "1", scene.Backing, scene.Cache, filesystem, "pmem_backend", "block"],
                    ServeAt(scene, ["1", scene.Backing, scene.Cache, filesystem, "pmem_backend", "block"]),
                ];
            return new Staged(commands, [filesystem]);
        }),
        new("second-server", "a second wb serve, of another device, on the live server's socket", [0, 1], Serving, (scene, wb, seed) =>
        {
            Scene other = OtherCache(scene, wb, seed, When.AfterClose);
            return new Staged([["serve", .. other.Table, "--socket", scene.Socket]], [other.Backing, other.Cache]) { Others = [other] };
        }),
        new("check-while-serving", "wb check of the cache (and its pmem) while it is served", [0, 1], Serving, (scene, _, _) =>
            new Staged([scene.Pmem is null ? ["check", scene.Cache] : ["check", scene.Cache, "--pmem", scene.Pmem]], [])
            {
                // Refused (in use) or clean; a report of damage a running writer explains is a lie.
                JudgeRun = run => run.ExitCode == 0 || run.Stderr.Contains("in use", StringComparison.Ordinal) ? null
                    : $"reported damage that is not there: {run.Stdout.Split('\n').FirstOrDefault()}",
            }),
        new("reformat-while-serving", "wb create --reformat of the table while it is served", [0, 1], Serving, (scene, _, _) =>
            new Staged([["create", .. scene.Table, "--reformat"]], [])),
        new("message-while-serving", "wb message drop_caches while it is served (acts on the live device)", [0, 1], Serving, (scene, _, _) =>
            new Staged([["message", .. scene.Table, "-m", "drop_caches"]], [])),
        new("status-while-serving", "wb status while it is served (the live device's status)", [0, 1], Serving, (scene, _, _) =>
            new Staged([["status", .. scene.Table]], [])),
        new("backing-truncated", "the backing file truncated by a quarter (above the data), then wb serve", [0, 1], AtRest, (scene, _, _) =>
        {
            Resize(scene.Backing, Scene.BackingBytes * 3 / 4);
            return new Staged([ServeAt(scene)], [], () => Resize(scene.Backing, Scene.BackingBytes));
        }),
        new("backing-grown", "the backing file grown by a quarter, then wb serve", [0, 1], AtRest, (scene, _, _) =>
        {
            Resize(scene.Backing, Scene.BackingBytes * 5 / 4);
            return new Staged([ServeAt(scene)], [], () => Resize(scene.Backing, Scene.BackingBytes));
        }),
    ];

    /// <summary>A wb serve on a socket of the action's own (the scene's may be live).</summary>
    private static string[] ServeAt(Scene scene, string[]? table = null) => ["serve", .. table ?? scene.Table, "--socket", scene.PathOf("mishap.sock")];

    /// <summary>Another cache with data of its own, left as <paramref name="when"/> says.</summary>
    private static Scene OtherCache(Scene scene, WbRunner wb, int seed, When when)
    {
        Scene other = new(wb, scene.Mode, "other");
        string? problem = other.Prepare(when, seed + 1000);
        if (problem is not null)
        {
            other.Dispose();
            throw new InvalidOperationException($"the other cache: {problem}");
        }
        return other;
    }

    private static void Resize(string path, long bytes)
    {
        using FileStream file = new(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        file.SetLength(bytes);
    }

    private static readonly string[] Mkfs = ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"];

    private static bool MakeExt4(string path)
    {
        string? mkfs = Mkfs.FirstOrDefault(File.Exists);
        if (mkfs is null)
        {
            return false;
        }
        using System.Diagnostics.Process process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(mkfs, ["-q", "-F", path]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        process.WaitForExit();
        return process.ExitCode == 0;
    }
}
