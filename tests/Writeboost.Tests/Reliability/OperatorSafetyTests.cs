using System.Diagnostics;
using System.Text.Json;
using Writeboost.Cache.Core;
using Writeboost.Cache.Table;
using Writeboost.Devices;
using Writeboost.Nbd;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Reliability;

/// <summary>
/// Nothing a user types loses acknowledged data (#21): each of the seven findings as the rule it broke, the
/// operator-fault sweep over every action, and every verb over bad input without a stack trace.
/// </summary>
[TestClass]
public sealed class OperatorSafetyTests
{
    private static readonly Dictionary<string, string> ForcePmem = new() { ["PMEM_IS_PMEM_FORCE"] = "1" };
    private const int BlockBytes = 4096;

    /// <summary>A device served and written over NBD: a FUA write, a flushed write, each with its own pattern.</summary>
    private sealed class Served : IDisposable
    {
        private readonly TempDirectory _dir = new();
        private readonly TempDirectory _shm = new("/dev/shm");

        public Served(int mode)
        {
            Backing = _dir.File("backing.img");
            Cache = _dir.File("cache.img");
            Socket = _dir.File("nbd.sock");
            FileBlockDevice.CreateFile(Backing, 16 << 20);
            FileBlockDevice.CreateFile(Cache, 16 << 20);
            Pmem = mode == 1 ? _shm.File("pmem") : null;
            if (Pmem is not null)
            {
                FileBlockDevice.CreateFile(Pmem, 16 << 20);
            }
            Table = Pmem is null ? ["0", Backing, Cache] : ["1", Backing, Cache, Pmem, "pmem_backend", "dax"];
            WbProcess.Create(ForcePmem, Table);
            Server = WbProcess.StartUntil("ready", ForcePmem, ["serve", .. Table, "--socket", Socket]);
            using NbdClient client = NbdClient.Connect(Socket);
            client.Write(0, Pattern(0x5a, 32), fua: false);
            client.Flush();
            client.Write(8 << 20, Pattern(0x6b, 16), fua: true);
        }

        public string Backing { get; }
        public string Cache { get; }
        public string? Pmem { get; }
        public string Socket { get; }
        public string[] Table { get; }
        public Process Server { get; }

        public string File(string name) => _dir.File(name);

        public void Crash()
        {
            Server.Kill();
            Server.WaitForExit();
        }

        public void Stop()
        {
            Native.Signals.Terminate(Server.Id);
            Assert.IsTrue(Server.WaitForExit(30_000));
            Assert.AreEqual(0, Server.ExitCode);
        }

        /// <summary>Writes everything back through the device's own table, then reads the backing file: both writes are there.</summary>
        public void AssertBothWritesReadBack()
        {
            WbResult drained = WbProcess.Run(ForcePmem, ["message", .. Table, "-m", "drop_caches"]);
            Assert.AreEqual(0, drained.ExitCode, drained.Stderr);
            byte[] backing = System.IO.File.ReadAllBytes(Backing);
            CollectionAssert.AreEqual(Pattern(0x5a, 32), backing[..(32 * BlockBytes)], "the flushed 128 KiB");
            CollectionAssert.AreEqual(Pattern(0x6b, 16), backing[(8 << 20)..((8 << 20) + 16 * BlockBytes)], "the FUA 64 KiB");
        }

        public void Dispose()
        {
            if (!Server.HasExited)
            {
                Server.Kill();
                Server.WaitForExit();
            }
            Server.Dispose();
            _dir.Dispose();
            _shm.Dispose();
        }
    }

    private static byte[] Pattern(byte fill, int blocks) => Enumerable.Repeat(fill, blocks * BlockBytes).ToArray();

    private static void AssertOneClearLine(WbResult result, string expected)
    {
        Assert.AreNotEqual(0, result.ExitCode, result.Stdout);
        StringAssert.Contains(result.Stderr, expected);
        Assert.IsFalse(result.Stderr.Contains("   at ", StringComparison.Ordinal), result.Stderr);
    }

    // ---- the seven findings ----

    [TestMethod]
    public void A_blank_pmem_in_place_of_a_crashed_caches_own_is_refused_and_its_own_brings_every_write_back()
    {
        using Served served = new(mode: 1);
        served.Crash();
        byte[] own = File.ReadAllBytes(served.Pmem!);
        File.Delete(served.Pmem!); // a reboot wiped /dev/shm; the user recreates the file as before
        FileBlockDevice.CreateFile(served.Pmem!, 16 << 20);

        WbResult result = WbProcess.Run(ForcePmem, ["serve", .. served.Table, "--socket", served.File("again.sock")]);

        AssertOneClearLine(result, "is blank, but cache");
        StringAssert.Contains(result.Stderr, "--discard-pmem");
        File.WriteAllBytes(served.Pmem!, own);
        served.AssertBothWritesReadBack();
    }

    [TestMethod]
    public void A_bench_refuses_a_writeboost_pmem_buffer_at_rest_and_in_use()
    {
        using Served served = new(mode: 1);
        WbResult inUse = WbProcess.Run(ForcePmem, "bench", "pmem", served.Pmem!, "--ops", "100", "--force");
        AssertOneClearLine(inUse, $"in use by process {served.Server.Id}");
        served.Crash();
        byte[] before = File.ReadAllBytes(served.Pmem!);

        WbResult atRest = WbProcess.Run(ForcePmem, "bench", "pmem", served.Pmem!, "--ops", "100");

        AssertOneClearLine(atRest, "holds a writeboost pmem buffer");
        CollectionAssert.AreEqual(before, File.ReadAllBytes(served.Pmem!), "the buffer is untouched");
        served.AssertBothWritesReadBack();
    }

    [TestMethod]
    public void A_command_that_fails_never_formats_the_device_first()
    {
        using TempDirectory dir = new();
        using TempDirectory shm = new("/dev/shm");
        string backing = dir.File("b.img");
        string filesystem = dir.File("fs.img");
        string cache = dir.File("c.img");
        string tinyPmem = shm.File("tiny.pmem");
        FileBlockDevice.CreateFile(backing, 16 << 20);
        FileBlockDevice.CreateFile(cache, 16 << 20);
        FileBlockDevice.CreateFile(tinyPmem, 1 << 20);
        FileBlockDevice.CreateFile(filesystem, 16 << 20);
        Assert.AreEqual(0, Process.Start("mkfs.ext4", ["-q", "-F", filesystem]).WaitForExitAndGetCode(), "mkfs.ext4");
        byte[] ext4 = File.ReadAllBytes(filesystem);
        byte[] blankCache = File.ReadAllBytes(cache);

        AssertOneClearLine(WbProcess.Run(null, "message", "0", backing, filesystem, "-m", "bogus"), "unknown message 'bogus'");
        AssertOneClearLine(WbProcess.Run(null, "message", "0", backing, filesystem, "-m", "drop_caches"), "not a writeboost cache");
        AssertOneClearLine(WbProcess.Run(null, "create", "0", backing, filesystem), "holds an ext4 filesystem");
        AssertOneClearLine(WbProcess.Run(ForcePmem, "create", "1", backing, cache, tinyPmem, "pmem_backend", "dax"), "need");
        AssertOneClearLine(WbProcess.Run(null, "serve", "0", backing, cache, "--socket", dir.File("missing/nbd.sock")), "does not exist");

        CollectionAssert.AreEqual(ext4, File.ReadAllBytes(filesystem), "the ext4 image is untouched");
        CollectionAssert.AreEqual(blankCache, File.ReadAllBytes(cache), "the cache was not formatted by a command that failed");
    }

    [TestMethod]
    public void A_second_server_never_takes_a_live_socket_and_the_first_keeps_its_clients()
    {
        using Served first = new(mode: 0);
        using Served other = new(mode: 0);
        other.Stop();

        WbResult second = WbProcess.Run(null, ["serve", .. other.Table, "--socket", first.Socket]);

        AssertOneClearLine(second, "another server is listening there");
        using NbdClient client = NbdClient.Connect(first.Socket);
        byte[] read = new byte[16 * BlockBytes];
        client.Read(8 << 20, read);
        CollectionAssert.AreEqual(Pattern(0x6b, 16), read, "the first server's disk, through its own socket");
    }

    [TestMethod]
    public void Check_of_a_cache_in_use_says_so_instead_of_reporting_damage()
    {
        using Served served = new(mode: 0);
        using CancellationTokenSource stop = new();
        Task writes = Task.Run(() =>
        {
            using NbdClient client = NbdClient.Connect(served.Socket);
            byte[] data = Pattern(0x77, 1);
            for (long i = 0; !stop.IsCancellationRequested; i++)
            {
                client.Write((1024 + i % 512) * BlockBytes, data, fua: i % 3 == 0);
            }
        });

        WbResult check = WbProcess.Run(null, "check", served.Cache);

        stop.Cancel();
        writes.Wait();
        AssertOneClearLine(check, $"in use by process {served.Server.Id}");
        Assert.IsFalse(check.Stdout.Contains("damaged", StringComparison.Ordinal) || check.Stdout.Contains("--accept-loss", StringComparison.Ordinal), check.Stdout);
    }

    [TestMethod]
    [DataRow(0)]
    [DataRow(1)]
    public void A_cache_holding_dirty_data_refuses_another_backing_device_and_writes_nothing_onto_it(int mode)
    {
        using Served served = new(mode);
        served.Crash();
        string other = served.File("other.img");
        FileBlockDevice.CreateFile(other, 16 << 20);
        string[] wrongTable = [.. served.Table];
        wrongTable[1] = other;

        WbResult result = WbProcess.Run(ForcePmem, ["message", .. wrongTable, "-m", "drop_caches"]);

        AssertOneClearLine(result, "is not the one cache");
        StringAssert.Contains(result.Stderr, "--overwrite-backing");
        Assert.IsFalse(File.ReadAllBytes(other).AsSpan().ContainsAnyExcept((byte)0), "nothing was written onto the other disk");
        served.AssertBothWritesReadBack();
    }

    [TestMethod]
    public void The_same_device_under_another_identity_opens_with_overwrite_backing_and_keeps_every_write()
    {
        using Served served = new(mode: 0);
        served.Crash();
        string moved = served.File("moved.img");
        File.Copy(served.Backing, moved); // a copy: another inode, the same content
        File.Delete(served.Backing);
        File.Move(moved, served.Backing);

        AssertOneClearLine(WbProcess.Run(null, ["status", .. served.Table]), "is not the one cache");
        WbResult accepted = WbProcess.Run(null, ["message", .. served.Table, "-m", "clear_stat", "--overwrite-backing"]);

        Assert.AreEqual(0, accepted.ExitCode, accepted.Stderr);
        served.AssertBothWritesReadBack();
    }

    [TestMethod]
    public void A_segment_size_order_the_cache_was_not_made_with_is_refused_even_the_default_one()
    {
        using TempDirectory dir = new();
        string backing = dir.File("b.img");
        string cache = dir.File("c.img");
        FileBlockDevice.CreateFile(backing, 16 << 20);
        FileBlockDevice.CreateFile(cache, 8 << 20);
        WbProcess.Create(null, ["0", backing, cache, "segment_size_order", "5"]);

        AssertOneClearLine(WbProcess.Run(null, "status", "0", backing, cache, "segment_size_order", "10"), "formatted with segment_size_order 5");
        Assert.AreEqual(0, WbProcess.Run(null, "status", "0", backing, cache).ExitCode, "without the key, the cache's own order");
    }

    [TestMethod]
    public void Status_and_message_reach_the_running_server_and_act_on_the_live_device()
    {
        using Served served = new(mode: 1);

        WbResult status = WbProcess.Run(ForcePmem, ["status", .. served.Table, "--json"]);
        WbResult message = WbProcess.Run(ForcePmem, ["message", .. served.Table, "-m", "writeback_threshold 70"]);
        WbResult after = WbProcess.Run(ForcePmem, ["status", .. served.Table, "--json"]);

        Assert.AreEqual(0, status.ExitCode, status.Stderr);
        using JsonDocument live = JsonDocument.Parse(status.Stdout);
        Assert.IsTrue(live.RootElement.GetProperty("live").GetBoolean());
        Assert.AreEqual(served.Server.Id, live.RootElement.GetProperty("server_pid").GetInt32());
        Assert.AreEqual(48, live.RootElement.GetProperty("status").GetProperty("nr_dirty_caches").GetInt64(), "the writes the running device holds");
        Assert.AreEqual(0, message.ExitCode, message.Stderr);
        StringAssert.Contains(message.Stdout, "on the live device");
        using JsonDocument changed = JsonDocument.Parse(after.Stdout);
        Assert.AreEqual(70, changed.RootElement.GetProperty("status").GetProperty("tunables").GetProperty("writeback_threshold").GetInt64());
    }

    [TestMethod]
    public void Listen_on_a_busy_port_is_one_line_before_the_device_is_opened()
    {
        using System.Net.Sockets.TcpListener busy = new(System.Net.IPAddress.Loopback, 0);
        busy.Start();
        int port = ((System.Net.IPEndPoint)busy.LocalEndpoint).Port;
        using TempDirectory dir = new();
        string backing = dir.File("b.img");
        string cache = dir.File("c.img");
        FileBlockDevice.CreateFile(backing, 16 << 20);
        FileBlockDevice.CreateFile(cache, 8 << 20);

        WbResult result = WbProcess.Run(null, "serve", "0", backing, cache, "--listen", $"127.0.0.1:{port}");

        AssertOneClearLine(result, "the address is in use");
        Assert.AreEqual(2, result.ExitCode);
        Assert.IsFalse(File.ReadAllBytes(cache).AsSpan().ContainsAnyExcept((byte)0), "nothing was written to the cache");
    }

    [TestMethod]
    public void An_interrupted_campaign_prints_what_it_checked_and_exits_128_plus_the_signal()
    {
        using Process campaign = WbProcess.Start(null, "crashtest", "--json", "--states", "100000000");
        Task<string> errors = campaign.StandardError.ReadToEndAsync();
        // Interrupted once it has worked 3 s of processor time (well past recording its first logs, into checking
        // them), not after 3 s on the clock: on a busy machine the clock's 3 s may be spent waiting for a core.
        Stopwatch waited = Stopwatch.StartNew();
        while (campaign.TotalProcessorTime < TimeSpan.FromSeconds(3) && waited.Elapsed < TimeSpan.FromMinutes(2) && !campaign.HasExited)
        {
            Thread.Sleep(100);
            campaign.Refresh();
        }
        Assert.IsTrue(Native.Signals.Terminate(campaign.Id));
        string output = campaign.StandardOutput.ReadToEnd();
        Assert.IsTrue(campaign.WaitForExit(60_000));

        Assert.AreEqual(143, campaign.ExitCode);
        using JsonDocument report = JsonDocument.Parse(output);
        Assert.IsGreaterThan(0, report.RootElement.GetProperty("states_checked").GetInt64());
        StringAssert.Contains(report.RootElement.GetProperty("interrupted").GetString(), "interrupted by SIGTERM");
    }

    [TestMethod]
    public void Help_asked_for_goes_to_stdout_and_a_missing_option_is_one_line()
    {
        WbResult help = WbProcess.Run(null, "--help");
        WbResult missing = WbProcess.Run(null, "message", "0", "/b", "/c");

        Assert.AreEqual(0, help.ExitCode);
        StringAssert.Contains(help.Stdout, "crashtest");
        Assert.AreEqual("", help.Stderr);
        Assert.AreEqual(2, missing.ExitCode);
        Assert.AreEqual(1, missing.Stderr.Trim().Split('\n').Length, missing.Stderr);
        StringAssert.Contains(missing.Stderr, "-m");
    }

    // ---- every verb, bad input: one line, never a stack trace ----

    public static IEnumerable<object[]> EveryVerbWithBadInput()
    {
        string[][] cases =
        [
            ["create"], ["create", "0", "/nonexistent/b", "/nonexistent/c"], ["create", "7", "/b", "/c"], ["create", "1", "/b", "/c"],
            ["create", "0", "/dev/null", "/dev/zero"], ["create", "0", "/tmp", "/tmp"],
            ["status", "0", "/nonexistent/b", "/nonexistent/c", "writeback_threshold"], ["status", "0", "/proc/self/status", "/proc/cpuinfo"],
            ["message", "0", "/nonexistent/b", "/c", "-m", "drop_caches"], ["message", "0", "/b", "/c", "-m", ""], ["message", "0", "/b", "/c", "-m", "clear_poison x"],
            ["serve", "0", "/b", "/c"], ["serve", "0", "/b", "/c", "--socket", "/s", "--listen", "127.0.0.1:1"], ["serve", "0", "/b", "/c", "--listen", "localhost"],
            ["serve", "0", "/b", "/c", "--listen", "10.0.0.1:10809"], ["serve", "0", "/b", "/c", "--socket", new string('x', 200)],
            ["bench"], ["bench", "nothing"], ["bench", "pmem"], ["bench", "pmem", "/nonexistent"], ["bench", "fua", "0", "/nonexistent/b", "/c"], ["bench", "fua", "--writers", "0"],
            ["bench", "randwrite", "--mode", "3"], ["bench", "fua", "--pool-size", "-1"],
            ["crashtest", "--mode", "x"], ["crashtest", "--states", "0"], ["crashtest", "--replay", "/nonexistent"], ["crashtest", "merge"], ["crashtest", "record"],
            ["crashtest", "--recording", "/nonexistent"], ["crashtest", "--table", "9 /b /c"], ["crashtest", "--shard", "3/2"],
            ["faults", "--mode", "2"], ["faults", "--ops", "1"], ["corrupt", "--workload", "x"], ["corrupt", "--mutant", "x"],
            ["mishaps", "--mode", "4"], ["mishaps", "--action", "x"], ["mishaps", "--wb", "/nonexistent/wb"],
            ["dump"], ["dump", "/nonexistent"], ["dump", "/tmp"], ["check", "/nonexistent"], ["check", "/dev/null", "--pmem", "/nonexistent"],
            ["pmem"], ["pmem", "info"], ["pmem", "info", "/nonexistent"], ["pmem", "frob", "/tmp"], ["pmem", "info", "/tmp", "--backend", "x"],
            ["frobnicate"], ["status", "--frob"],
        ];
        return cases.Select(c => new object[] { c });
    }

    [TestMethod]
    [DynamicData(nameof(EveryVerbWithBadInput))]
    public void Every_verb_answers_bad_input_with_one_line_and_no_stack_trace(string[] arguments)
    {
        WbResult result = WbProcess.Run(null, arguments);

        Assert.IsTrue(result.ExitCode is 1 or 2, $"wb {string.Join(' ', arguments)}: exit {result.ExitCode}\n{result.Stderr}");
        Assert.IsFalse((result.Stdout + result.Stderr).Contains("   at ", StringComparison.Ordinal), $"a stack trace:\n{result.Stderr}");
        Assert.IsFalse(result.Stderr.Contains("internal error", StringComparison.Ordinal), result.Stderr);
        string[] lines = result.Stderr.Trim().Split('\n');
        Assert.AreEqual(1, lines.Length, $"wb {string.Join(' ', arguments)}:\n{result.Stderr}");
        StringAssert.StartsWith(lines[0], "wb", $"the line names the program: {lines[0]}");
    }

    // ---- the operator-fault sweep ----

    [TestMethod]
    public void The_operator_fault_sweep_finds_every_action_refused_or_handled_with_nothing_lost()
    {
        WbResult sweep = WbProcess.Run(null, "mishaps", "--json", "--jobs", "2");

        Assert.AreEqual(0, sweep.ExitCode, sweep.Stdout + sweep.Stderr);
        using JsonDocument report = JsonDocument.Parse(sweep.Stdout);
        JsonElement root = report.RootElement;
        Assert.AreEqual(0, root.GetProperty("violations").GetInt32());
        Dictionary<(string, int, string), string> outcome = root.GetProperty("results").EnumerateArray()
            .ToDictionary(r => (r.GetProperty("action").GetString()!, r.GetProperty("mode").GetInt32(), r.GetProperty("when").GetString()!), r => r.GetProperty("outcome").GetString()!);
        Assert.IsGreaterThanOrEqualTo(35, outcome.Count, "every action, mode and moment");
        Assert.AreEqual("refused", outcome[("blank-pmem", 1, "after a crash")], "a wiped pmem of a crashed cache");
        Assert.AreEqual("handled", outcome[("blank-pmem", 1, "after a clean close")], "a wiped pmem of a drained cache is formatted: nothing was in it");
        Assert.AreEqual("refused", outcome[("other-backing", 0, "after a clean close")]);
        Assert.AreEqual("refused", outcome[("second-server", 1, "while serving")]);
        Assert.AreEqual("handled", outcome[("message-while-serving", 1, "while serving")], "messages act on the live device");
    }
}

internal static class ProcessExtensions
{
    internal static int WaitForExitAndGetCode(this Process process)
    {
        using (process)
        {
            process.WaitForExit();
            return process.ExitCode;
        }
    }
}
