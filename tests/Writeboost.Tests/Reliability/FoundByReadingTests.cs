using System.Net.Sockets;
using Writeboost.Cache.Core;
using Writeboost.Cache.Table;
using Writeboost.Devices;
using Writeboost.Nbd;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Reliability;

/// <summary>
/// Four bugs found by reading the code that no judge saw (#26), each as the rule it broke: a WRITE_ZEROES of 2 GiB
/// or more, a read caching old data around a write-around write, a request finishing long after its client left,
/// and drop_caches after a read error.
/// </summary>
[TestClass]
public sealed class FoundByReadingTests
{
    private const int BlockBytes = 4096;

    private static byte[] Filled(byte value, int bytes = BlockBytes) => Enumerable.Repeat(value, bytes).ToArray();

    private static (NbdServer Server, string Socket) Serve(IBlockDevice device, TempDirectory dir)
    {
        NbdServer server = new(device);
        string socket = dir.File("nbd.sock");
        server.Start(new UnixDomainSocketEndPoint(socket));
        return (server, socket);
    }

    [TestMethod]
    [DataRow(1L << 31)]
    [DataRow(3L << 30)]
    [DataRow((1L << 32) - 512)]
    public void A_write_zeroes_of_2_gib_or_more_reads_back_as_zeros(long lengthBytes)
    {
        using TempDirectory dir = new();
        using SparseBlockDevice device = new(4L << 30);
        (NbdServer server, string socket) = Serve(device, dir);
        using (server)
        using (NbdClient client = NbdClient.Connect(socket))
        {
            long[] written = [0, (1L << 31) - BlockBytes, 1L << 31, lengthBytes - BlockBytes, (4L << 30) - BlockBytes];
            foreach (long offset in written)
            {
                client.Write(offset, Filled(0x5a));
            }
            client.Flush();

            client.WriteZeroes(0, (uint)lengthBytes, fua: true);

            byte[] read = new byte[BlockBytes];
            foreach (long offset in written)
            {
                client.Read(offset, read);
                for (int i = 0; i < BlockBytes; i++)
                {
                    bool zeroed = offset + i < lengthBytes;
                    Assert.AreEqual(zeroed ? 0 : 0x5a, read[i], $"byte {offset + i}: {(zeroed ? "inside the zeroed range" : "after it")}");
                }
            }
        }
    }

    [TestMethod]
    public void A_read_during_a_write_around_write_never_caches_the_old_data()
    {
        using GatedBlockDevice backing = new(new MemoryBlockDevice(1 << 20, name: "backing"));
        using MemoryBlockDevice cache = new((1 << 20) + 8 * (16 << 10), name: "cache");
        backing.Write(5 * BlockBytes, Filled(0x11));
        Tunables tunables = new(new Dictionary<string, long>
        {
            ["segment_size_order"] = 5,
            ["write_around_mode"] = 1,
            ["read_cache_threshold"] = 127,
            ["nr_read_cache_cells"] = 1,
        });
        using WriteboostDevice device = WriteboostDevice.Open(backing, cache, tunables);
        backing.Close();
        Task write = Task.Run(() => device.Write(5 * BlockBytes, Filled(0x22), WriteOptions.Fua));
        backing.WaitForWaiting();

        byte[] during = new byte[BlockBytes];
        device.Read(5 * BlockBytes, during); // a miss while the write is on its way: old data, and a read-cache cell
        backing.Open();
        write.Wait();

        byte[] after = new byte[BlockBytes];
        device.Read(5 * BlockBytes, after);
        Assert.IsTrue(during.All(b => b is 0x11 or 0x22), "a read concurrent with the write sees the old or the new data");
        Assert.IsTrue(after.All(b => b == 0x22), $"a read issued after the write was acknowledged reads it (read 0x{after[0]:x2}: the old data was cached)");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public void A_request_finishing_long_after_its_client_left_and_a_stop_waiting_for_it_cost_nobody_their_disk()
    {
        using TempDirectory dir = new();
        using GatedBlockDevice device = new(new MemoryBlockDevice(16 << 20, name: "slow")) { GateFlushes = true };
        (NbdServer server, string socket) = Serve(device, dir);
        List<string> reports = [];
        using (server)
        {
            device.Close();
            // A client pipelines FUA writes (served in the pool, held by the slow device), then leaves.
            NbdClient leaving = NbdClient.Connect(socket);
            for (int i = 0; i < 3; i++)
            {
                leaving.Send(NbdCommand.Write, i * BlockBytes, BlockBytes, fua: true, payload: Filled(0x31));
            }
            leaving.FlushRequests(); // together: the server hands them to its pool, none is alone
            device.WaitForWaiting(2);
            leaving.Dispose();
            // Longer than any limit the server ever had on waiting for requests in flight (30 s).
            Thread.Sleep(TimeSpan.FromSeconds(31));
            device.Open();

            using NbdClient other = NbdClient.Connect(socket);
            other.Write(64 * BlockBytes, Filled(0x44), fua: true);
            byte[] read = new byte[BlockBytes];
            other.Read(64 * BlockBytes, read);
            Assert.IsTrue(read.All(b => b == 0x44), "another client keeps its disk");

            // A stop with a request held: it waits (saying so), the request completes, its client gets the reply.
            device.Close();
            other.Send(NbdCommand.Write, 65 * BlockBytes, BlockBytes, fua: true, payload: Filled(0x45));
            other.FlushRequests();
            device.WaitForWaiting(1);
            Task stop = Task.Factory.StartNew(() => server.Stop(message => { lock (reports) { reports.Add(message); } }, TimeSpan.FromMilliseconds(200)), TaskCreationOptions.LongRunning);
            Thread.Sleep(1000);
            Assert.IsFalse(stop.IsCompleted, "the stop waits for the request in flight");
            device.Open();
            Assert.AreEqual(0u, other.Receive().Error, "the held request completed and was answered");
            Assert.IsTrue(stop.Wait(TimeSpan.FromSeconds(30)), "then the stop ends");
        }
        Assert.IsTrue(reports.Any(r => r.Contains("still waiting for 1 request(s) in flight", StringComparison.Ordinal)), string.Join("\n", reports));
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public void Drop_caches_completes_after_a_read_error_failed_a_partial_overwrite()
    {
        using MemoryBlockDevice backing = new(1 << 20, name: "backing");
        using FailingBlockDevice cache = new(new MemoryBlockDevice((1 << 20) + 8 * (16 << 10), name: "cache"));
        using WriteboostDevice device = WriteboostDevice.Open(backing, cache, new Tunables(new Dictionary<string, long> { ["segment_size_order"] = 5 }));
        device.Write(3 * BlockBytes, Filled(0x33));
        device.Flush(); // the block's copy is now on the cache device, not in a buffer

        cache.FailNextRead = true;
        Assert.Throws<IOException>(() => device.Write(3 * BlockBytes, Filled(0x34, 512)), "the merge's read of the old copy failed: the write fails");
        Task drop = Task.Run(device.DropCaches);

        Assert.IsTrue(drop.Wait(TimeSpan.FromSeconds(20)), "drop_caches returns (it hung on the empty segment the failed write left open)");
        byte[] back = new byte[BlockBytes];
        backing.Read(3 * BlockBytes, back);
        Assert.IsTrue(back.All(b => b == 0x33), "written back: the block as it was before the failed write");
    }
}
