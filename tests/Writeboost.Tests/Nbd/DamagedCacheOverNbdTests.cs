using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Writeboost.Devices;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Nbd;

/// <summary>
/// The scenario, as a new user would meet it, with the real <c>wb serve</c>: mode 0 over NBD, three 1 MiB
/// writes each followed by a flush (nine segments of 127 blocks, all durable), a clean SIGTERM stop, then one byte
/// flipped in one data block of the first segment.
/// </summary>
[TestClass]
public sealed class DamagedCacheOverNbdTests
{
    private const int MiB = 1 << 20;
    private const int DamagedBlock = 5; // data block 5 of segment 1 holds backing block 5 (the first write is sequential)

    private static int Terminate(Process server)
    {
        Assert.AreEqual(0, Mono.Unix.Native.Syscall.kill(server.Id, Mono.Unix.Native.Signum.SIGTERM), "kill -TERM");
        Assert.IsTrue(server.WaitForExit(30_000), "SIGTERM drains and exits");
        return server.ExitCode;
    }

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    [TestMethod]
    public void One_flipped_byte_costs_one_block_reads_as_eio_and_is_named_everywhere_while_looking_changes_nothing()
    {
        using TempDirectory dir = new();
        string backing = dir.File("backing.img");
        string cache = dir.File("cache.img");
        string socket = dir.File("nbd.sock");
        FileBlockDevice.CreateFile(backing, 64L * MiB);
        FileBlockDevice.CreateFile(cache, 32L * MiB);
        string[] table = ["0", backing, cache];
        byte[] written = new byte[3 * MiB];
        new Random(13).NextBytes(written);

        WbProcess.Create(null, table);
        using (Process first = WbProcess.StartUntil("ready", null, ["serve", .. table, "--socket", socket]))
        {
            using (TestNbdClient client = new(socket))
            {
                for (int i = 0; i < 3; i++)
                {
                    client.Write(i * (long)MiB, written.AsSpan(i * MiB, MiB));
                    client.Flush();
                }
            }
            Assert.AreEqual(0, Terminate(first));
        }
        WbResult clean = WbProcess.Run(null, "check", cache, "--json");
        Assert.AreEqual(0, clean.ExitCode, clean.Stdout);
        using (JsonDocument json = JsonDocument.Parse(clean.Stdout))
        {
            Assert.AreEqual(9, json.RootElement.GetProperty("segments_checked").GetInt32(), "three 1 MiB writes, each flushed: 127 + 127 + 2 blocks, three times");
        }

        using (FileStream file = new(cache, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = MiB + 4096L * (1 + DamagedBlock) + 1234; // slot 0 = segment 1: header block, then data blocks
            int b = file.ReadByte();
            file.Position--;
            file.WriteByte((byte)(b ^ 0x20));
        }

        // wb check: segment 1 damaged (durable: later headers vouch for it), one block lost, segments 2..9 kept.
        WbResult check = WbProcess.Run(null, "check", cache, "--json");
        Assert.AreEqual(1, check.ExitCode, check.Stdout + check.Stderr);
        using (JsonDocument json = JsonDocument.Parse(check.Stdout))
        {
            JsonElement poisoned = json.RootElement.GetProperty("poisoned_blocks");
            Assert.AreEqual(1, poisoned.GetArrayLength());
            Assert.AreEqual(DamagedBlock, poisoned[0].GetProperty("block").GetInt64());
            Assert.AreEqual(1, poisoned[0].GetProperty("segment_id").GetInt64());
            Assert.AreEqual(9, json.RootElement.GetProperty("replayable_through_id").GetInt64(), "recovery keeps segments 1..9");
            Assert.AreEqual(9, json.RootElement.GetProperty("proven_durable_id").GetInt64());
        }

        // wb status only looks: it reports the damage and the device is byte-identical afterwards.
        string cacheBefore = Hash(cache);
        string backingBefore = Hash(backing);
        WbResult status = WbProcess.Run(null, ["status", .. table, "--json"]);
        Assert.AreEqual(0, status.ExitCode, status.Stderr);
        Assert.AreEqual(cacheBefore, Hash(cache), "wb status wrote to the cache device");
        Assert.AreEqual(backingBefore, Hash(backing), "wb status wrote to the backing device");
        StringAssert.Contains(status.Stderr, "segment 1 (slot 0): damage, 126 block(s) replayed, 1 poisoned");
        StringAssert.Contains(status.Stderr, "degraded: 1 block(s) poisoned");
        Assert.IsFalse(status.Stderr.Contains("never acknowledged", StringComparison.Ordinal), status.Stderr);
        using (JsonDocument json = JsonDocument.Parse(status.Stdout))
        {
            Assert.IsTrue(json.RootElement.GetProperty("degraded").GetBoolean());
            JsonElement recovery = json.RootElement.GetProperty("status").GetProperty("recovery");
            Assert.AreEqual(9, recovery.GetProperty("last_replayed_id").GetInt64());
            Assert.AreEqual(0, recovery.GetProperty("segments_discarded").GetInt32());
        }

        // wb serve names the damage and serves every block but the lost one, which fails with EIO.
        using Process second = WbProcess.StartUntil("ready", null, out Task<string> serverErrors, ["serve", .. table, "--socket", socket]);
        using (TestNbdClient client = new(socket))
        {
            byte[] block = new byte[4096];
            for (int b = 0; b < 3 * MiB / 4096; b++)
            {
                uint error = client.Request(0, b * 4096L, 4096, readInto: block);
                if (b == DamagedBlock)
                {
                    Assert.AreEqual(5u, error, "the lost block reads as EIO, never as older data");
                    continue;
                }
                Assert.AreEqual(0u, error, $"block {b}");
                CollectionAssert.AreEqual(written.AsSpan(b * 4096, 4096).ToArray(), block, $"block {b} reads back what was written");
            }
        }
        Assert.AreEqual(0, Terminate(second));
        StringAssert.Contains(serverErrors.Result, "segment 1 (slot 0): damage, 126 block(s) replayed, 1 poisoned");
        StringAssert.Contains(serverErrors.Result, $"block {DamagedBlock} (sectors 0xff, segment 1)");
    }
}
