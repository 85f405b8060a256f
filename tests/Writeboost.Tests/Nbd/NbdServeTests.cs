using System.Diagnostics;
using System.Net.Sockets;
using Writeboost.Devices;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Nbd;

/// <summary>The writeboost device served by `wb serve`, driven by real NBD clients (fio, qemu-img, nbdinfo) and a test client.</summary>
[TestClass]
public sealed class NbdServeTests
{
    private static readonly Dictionary<string, string> ForcePmem = new() { ["PMEM_IS_PMEM_FORCE"] = "1" };

    private sealed class Served : IDisposable
    {
        public Served(int mode, TempDirectory dir, TempDirectory shm)
        {
            Backing = dir.File("backing.img");
            Cache = dir.File("cache.img");
            Socket = dir.File("nbd.sock");
            FileBlockDevice.CreateFile(Backing, 128 << 20);
            FileBlockDevice.CreateFile(Cache, 64 << 20);
            if (mode == 1)
            {
                string pmem = shm.File("pmem");
                FileBlockDevice.CreateFile(pmem, 16 << 20);
                Table = ["1", Backing, Cache, pmem, "pmem_backend", "dax"];
            }
            else
            {
                Table = ["0", Backing, Cache];
            }
            WbProcess.Create(ForcePmem, Table);
            Start();
        }

        public string Backing { get; }
        public string Cache { get; }
        public string Socket { get; }
        public string[] Table { get; }
        public Process Server { get; private set; } = null!;
        public string Uri => $"nbd+unix:///?socket={Socket}";

        public void Start() => Server = WbProcess.StartUntil("ready", ForcePmem, ["serve", .. Table, "--socket", Socket]);

        public void Kill9()
        {
            Server.Kill();
            Server.WaitForExit();
        }

        public int Terminate()
        {
            Assert.AreEqual(0, Mono.Unix.Native.Syscall.kill(Server.Id, Mono.Unix.Native.Signum.SIGTERM), "kill -TERM");
            Assert.IsTrue(Server.WaitForExit(30_000), "SIGTERM drains and exits");
            return Server.ExitCode;
        }

        public void Dispose()
        {
            if (!Server.HasExited)
            {
                Server.Kill();
                Server.WaitForExit();
            }
            Server.Dispose();
        }
    }

    private static (int Code, string Output) Tool(string program, params string[] arguments)
    {
        ProcessStartInfo start = new(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(start)!;
        Task<string> error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output + error.Result);
    }

    [TestMethod]
    [DataRow(0, 1)]
    [DataRow(0, 16)]
    [DataRow(1, 1)]
    [DataRow(1, 16)]
    public void Fio_verifies_random_writes_with_flush_and_fua_over_nbd(int mode, int queueDepth)
    {
        using TempDirectory dir = new();
        using TempDirectory shm = new("/dev/shm");
        using Served served = new(mode, dir, shm);
        (int code, string output) = Tool("fio", "--name=verify", "--ioengine=nbd", $"--uri={served.Uri}", "--rw=randwrite", "--bs=4k",
            "--size=16m", $"--iodepth={queueDepth}", "--verify=crc32c", "--verify_fatal=1", "--fsync=8", "--sync=1");
        Assert.AreEqual(0, code, output);
        StringAssert.Contains(output, "err= 0");
        Assert.AreEqual(0, served.Terminate(), "SIGTERM: drain, flush, exit 0");
    }

    [TestMethod]
    public void Qemu_img_converts_an_image_into_the_export_and_compares_it_back()
    {
        using TempDirectory dir = new();
        using TempDirectory shm = new("/dev/shm");
        using Served served = new(1, dir, shm);
        string image = dir.File("source.qcow2");
        Assert.AreEqual(0, Tool("qemu-img", "create", "-f", "qcow2", image, "128M").Code);
        (int write, string writeOutput) = Tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 3M 7M", "-c", "write -P 0x17 60M 512k", image);
        Assert.AreEqual(0, write, writeOutput);
        (int convert, string convertOutput) = Tool("qemu-img", "convert", "-n", "-f", "qcow2", "-O", "raw", image, served.Uri);
        Assert.AreEqual(0, convert, convertOutput);
        (int compare, string compareOutput) = Tool("qemu-img", "compare", "-f", "qcow2", "-F", "raw", image, served.Uri);
        Assert.AreEqual(0, compare, compareOutput);
        StringAssert.Contains(compareOutput, "Images are identical");
        (int info, string infoOutput) = Tool("nbdinfo", served.Uri);
        Assert.AreEqual(0, info, infoOutput);
        StringAssert.Contains(infoOutput, "can_fua: true");
        StringAssert.Contains(infoOutput, "block_size_minimum: 512");
    }

    [TestMethod]
    [DataRow(0)]
    [DataRow(1)]
    public void After_kill_9_every_write_acknowledged_before_the_last_completed_flush_is_intact(int mode)
    {
        using TempDirectory dir = new();
        using TempDirectory shm = new("/dev/shm");
        using Served served = new(mode, dir, shm);
        Random random = new(mode + 40);
        const int blocks = 64;
        List<byte[]>[] history = Enumerable.Range(0, blocks).Select(_ => new List<byte[]> { new byte[4096] }).ToArray();
        int[] durable = new int[blocks]; // index into history of the value a crash must keep (or a later one)
        using (TestNbdClient client = new(served.Socket))
        {
            for (int i = 0; i < 600; i++)
            {
                int block = random.Next(blocks);
                byte[] data = new byte[4096];
                random.NextBytes(data);
                history[block].Add(data);
                client.Write(block * 4096L, data);
                if (i % 25 == 24)
                {
                    client.Flush();
                    for (int b = 0; b < blocks; b++)
                    {
                        durable[b] = history[b].Count - 1;
                    }
                }
            }
            served.Kill9(); // mid-epoch: the last writes were acknowledged but never flushed
        }
        served.Start();
        using TestNbdClient after = new(served.Socket);
        byte[] back = new byte[4096];
        for (int b = 0; b < blocks; b++)
        {
            after.ReadAt(b * 4096L, back);
            bool allowed = history[b].Skip(durable[b]).Any(v => v.AsSpan().SequenceEqual(back));
            Assert.IsTrue(allowed, $"block {b}: neither its last flushed value nor a later acknowledged one");
        }
        Assert.AreEqual(0, served.Terminate());
    }

    [TestMethod]
    public void A_design_of_ones_own_is_served_and_keeps_what_a_flush_acknowledged_across_kill_9()
    {
        using TempDirectory dir = new();
        using TempDirectory shm = new("/dev/shm");
        string design = typeof(Writeboost.Samples.PmemWal.PmemWalTarget).Assembly.Location;
        string backing = dir.File("backing.img");
        string log = shm.File("wal.pmem");
        string socket = dir.File("nbd.sock");
        FileBlockDevice.CreateFile(backing, 8 << 20);
        FileBlockDevice.CreateFile(log, 1 << 20);
        string[] serve = ["serve", backing, log, "--socket", socket, "--target", design, "--target-arg", "LogBytes=1048576"];
        byte[][] flushed = Enumerable.Range(0, 32).Select(b => Enumerable.Repeat((byte)(b + 1), 4096).ToArray()).ToArray();
        using (Process server = WbProcess.StartUntil("ready", ForcePmem, serve))
        {
            WbResult second = WbProcess.Run(ForcePmem, "serve", backing, log, "--socket", dir.File("second.sock"), "--target", design, "--target-arg", "LogBytes=1048576");
            Assert.AreNotEqual(0, second.ExitCode, "a second server on the same devices is refused");
            using TestNbdClient client = new(socket);
            Assert.AreEqual(8L << 20, client.SizeBytes, "the design's size: its backing device's");
            for (int block = 0; block < flushed.Length; block++)
            {
                client.Write(block * 4096L, flushed[block]);
            }
            client.Flush();
            client.Write(0, new byte[4096]); // acknowledged, never flushed: block 0 may read either value
            server.Kill();
            server.WaitForExit();
        }
        using (Process again = WbProcess.StartUntil("ready", ForcePmem, serve))
        {
            using (TestNbdClient client = new(socket))
            {
                byte[] back = new byte[4096];
                client.ReadAt(0, back);
                Assert.IsTrue(back.AsSpan().SequenceEqual(flushed[0]) || !back.AsSpan().ContainsAnyExcept((byte)0), "block 0: its flushed value or the later acknowledged zeros");
                for (int block = 1; block < flushed.Length; block++)
                {
                    client.ReadAt(block * 4096L, back);
                    CollectionAssert.AreEqual(flushed[block], back, $"block {block}, flushed before the kill");
                }
            }
            Assert.AreEqual(0, Mono.Unix.Native.Syscall.kill(again.Id, Mono.Unix.Native.Signum.SIGTERM), "kill -TERM");
            Assert.IsTrue(again.WaitForExit(30_000), "SIGTERM drains and exits");
            Assert.AreEqual(0, again.ExitCode);
        }

        WbResult tooFew = WbProcess.Run(ForcePmem, "serve", backing, dir.File("missing.pmem"), "--socket", socket, "--target", design, "--target-arg", "LogBytes=1048576");
        Assert.AreEqual(2, tooFew.ExitCode);
        StringAssert.Contains(tooFew.Stderr, "PMEM " + dir.File("missing.pmem") + " does not exist");
        WbResult small = WbProcess.Run(ForcePmem, "serve", backing, log, "--socket", socket, "--target", design, "--target-arg", "LogBytes=4194304");
        Assert.AreEqual(2, small.ExitCode);
        StringAssert.Contains(small.Stderr, "needs at least 4194304");
    }

    [TestMethod]
    public void Malformed_traffic_costs_only_its_own_connection()
    {
        using TempDirectory dir = new();
        using TempDirectory shm = new("/dev/shm");
        using Served served = new(0, dir, shm);
        Random random = new(9);
        for (int attempt = 0; attempt < 30; attempt++)
        {
            using Socket socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(served.Socket));
            byte[] hello = new byte[18];
            socket.Receive(hello);
            byte[] garbage = new byte[random.Next(1, 200)];
            random.NextBytes(garbage);
            if (attempt % 3 == 0)
            {
                garbage[0] = 0; garbage[1] = 0; garbage[2] = 0; garbage[3] = 3; // valid flags, then garbage options
            }
            socket.Send(garbage);
            socket.Shutdown(SocketShutdown.Send); // truncated: the server must give up on this one only
            byte[] sink = new byte[4096];
            try
            {
                while (socket.Receive(sink) > 0)
                {
                }
            }
            catch (SocketException)
            {
                // Reset by the server closing a connection with unread garbage: also a way to end it.
            }
        }
        using TestNbdClient client = new(served.Socket);
        byte[] data = Enumerable.Repeat((byte)0x42, 4096).ToArray();
        Assert.AreEqual(22u, client.Request(1, 100, 512, new byte[512]), "misaligned: EINVAL");
        Assert.AreEqual(28u, client.Request(1, client.SizeBytes, 4096, data), "beyond the end: ENOSPC");
        Assert.AreEqual(22u, client.Request(0, client.SizeBytes - 512, 4096, readInto: new byte[4096]), "read beyond the end: EINVAL");
        Assert.AreEqual(22u, client.Request(99, 0, 0), "unknown command: EINVAL");
        client.Write(8192, data, fua: true);
        byte[] back = new byte[4096];
        client.ReadAt(8192, back);
        CollectionAssert.AreEqual(data, back, "the server and this client kept working");
        Assert.AreEqual(0, served.Terminate());
    }

    [TestMethod]
    [DataRow(new[] { "--listen", "10.0.0.1:10809" }, "not a loopback address")]
    [DataRow(new[] { "--listen", "127.0.0.1" }, "expected ADDRESS:PORT")]
    [DataRow(new string[0], "exactly one of --socket PATH or --listen")]
    public void Serve_refuses_bad_endpoints_with_exit_2(string[] endpoint, string expected)
    {
        using TempDirectory dir = new();
        string backing = dir.File("b.img");
        string cache = dir.File("c.img");
        FileBlockDevice.CreateFile(backing, 16 << 20);
        FileBlockDevice.CreateFile(cache, 8 << 20);
        WbResult result = WbProcess.Run(null, ["serve", "0", backing, cache, .. endpoint]);
        Assert.AreEqual(2, result.ExitCode, result.Stderr);
        StringAssert.Contains(result.Stderr, expected);
    }
}
