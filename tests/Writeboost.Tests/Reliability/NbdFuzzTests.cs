using System.Buffers.Binary;
using System.Net.Sockets;
using Writeboost.Cache.Core;
using Writeboost.Cache.Table;
using Writeboost.Devices;
using Writeboost.Nbd;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Reliability;

/// <summary>
/// Mutation fuzzing of the NBD server: valid handshakes and requests with bits flipped, fields replaced by edge
/// values, bytes cut off or added, sent over many connections while a well-behaved client works on the same
/// export. The server must answer with protocol errors or close only the offending connection.
/// </summary>
[TestClass]
public sealed class NbdFuzzTests
{
    private const ulong OptionMagic = 0x49484156454F5054;
    private const uint RequestMagic = 0x25609513;

    [TestMethod]
    public void Fuzzed_handshakes_and_requests_cost_only_their_own_connection()
    {
        using TempDirectory dir = new();
        string socketPath = dir.File("fuzz.sock");
        MemoryBlockDevice backing = new(8 << 20, name: "backing");
        MemoryBlockDevice cache = new(6 << 20, name: "cache");
        using WriteboostDevice device = WriteboostDevice.Open(backing, cache, new Tunables(new Dictionary<string, long> { ["segment_size_order"] = 7 }));
        using NbdServer server = new(device);
        server.Start(new UnixDomainSocketEndPoint(socketPath));
        long halfBytes = device.SizeBytes / 2;

        // The well-behaved client owns the upper half of the export; fuzzed writes that land inside the export
        // are folded into the lower half, so any change it sees is the server's fault.
        using CancellationTokenSource stop = new();
        int verified = 0;
        Task healthy = Task.Run(() =>
        {
            using TestNbdClient client = new(socketPath);
            Random random = new(1);
            byte[] data = new byte[4096];
            byte[] back = new byte[4096];
            while (!stop.IsCancellationRequested)
            {
                long offset = halfBytes + random.Next((int)(halfBytes / 4096)) * 4096L;
                random.NextBytes(data);
                client.Write(offset, data, fua: random.Next(4) == 0);
                client.ReadAt(offset, back);
                CollectionAssert.AreEqual(data, back, $"the well-behaved client's block at {offset} changed");
                verified++;
            }
        });

        Random fuzz = new(20261125);
        int connections = 0;
        for (; connections < 600; connections++)
        {
            byte[] message = Mutate(fuzz, Conversation(fuzz, halfBytes), halfBytes, device.SizeBytes);
            using Socket socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            socket.ReceiveTimeout = 200;
            try
            {
                socket.Send(message);
                if (fuzz.Next(2) == 0)
                {
                    socket.Shutdown(SocketShutdown.Send); // truncated: nothing more will come
                }
                byte[] sink = new byte[64 * 1024];
                while (socket.Receive(sink) > 0)
                {
                }
            }
            catch (SocketException)
            {
                // Reset, or nothing more to read within the timeout: the connection's business, not the server's.
            }
            Assert.IsFalse(healthy.IsFaulted, healthy.Exception?.ToString());
        }

        stop.Cancel();
        healthy.Wait();
        Assert.IsGreaterThan(50, verified, "the well-behaved client kept being served during the fuzzing");
        using TestNbdClient after = new(socketPath);
        byte[] block = Enumerable.Repeat((byte)0x5A, 4096).ToArray();
        after.Write(0, block, fua: true);
        byte[] read = new byte[4096];
        after.ReadAt(0, read);
        CollectionAssert.AreEqual(block, read, $"the server still serves new connections after {connections} fuzzed ones");
        Assert.IsNull(device.Status().Failure, "no fuzzed request failed the device");
    }

    /// <summary>
    /// Lengths across the whole 32-bit range, at every boundary (0, a sector, 2³¹ ± a block, the export's end, 2³² - 1),
    /// for every command, with and without FUA, at offsets from 0 to past the end: whatever the server answers, it
    /// must be true. An error leaves the export as it was; a success did what the command says — a WRITE_ZEROES
    /// reads back as zeros over its whole range (sampled at its edges and at 2³¹), a READ returns what is there.
    /// </summary>
    [TestMethod]
    public void Every_command_at_every_length_boundary_does_what_its_reply_says()
    {
        const long Export = 6L << 30;
        const int Block = 4096;
        using TempDirectory dir = new();
        using SparseBlockDevice device = new(Export);
        using NbdServer server = new(device);
        string socketPath = dir.File("lengths.sock");
        server.Start(new UnixDomainSocketEndPoint(socketPath));
        using NbdClient client = NbdClient.Connect(socketPath);
        long[] lengths = [0, 512, Block, (1L << 31) - Block, (1L << 31) - 512, 1L << 31, (1L << 31) + 512, (1L << 31) + Block, (3L << 30) + 512, (1L << 32) - 512, (1L << 32) - 1, 32L << 20, (32L << 20) + 512];
        long[] offsets = [0, Block, (1L << 31) - Block, 1L << 32, Export - (1L << 31), Export - Block, Export];
        Random random = new(26);
        lengths = [.. lengths, .. Enumerable.Range(0, 6).Select(_ => (long)(uint)random.Next() * 2 / 512 * 512)];
        // Non-zero marks the model knows: block offset → fill byte.
        Dictionary<long, byte> marks = [];
        byte fill = 1;
        void Mark(long at)
        {
            byte[] data = Enumerable.Repeat(++fill, Block).ToArray();
            client.Write(at, data);
            marks[at] = fill;
        }
        void AssertModel(string after)
        {
            byte[] read = new byte[Block];
            foreach ((long at, byte value) in marks)
            {
                client.Read(at, read);
                Assert.IsTrue(read.All(b => b == value), $"{after}: the block at {at} should hold 0x{value:x2}, it holds 0x{read[0]:x2}");
            }
        }
        int checkedRequests = 0;
        foreach (NbdCommand command in new[] { NbdCommand.Read, NbdCommand.Write, NbdCommand.Trim, NbdCommand.WriteZeroes })
        {
            foreach (long length in lengths.Where(l => command != NbdCommand.Write || l <= 32 << 20))
            {
                foreach (long offset in offsets)
                {
                    foreach (bool fua in command == NbdCommand.Read ? [false] : new[] { false, true })
                    {
                        // Marks at the range's start, its last block, at 2³¹ and just past its end.
                        foreach (long at in new[] { offset, offset + length - Block, 1L << 31, offset + length }.Where(a => a >= 0 && a % Block == 0 && a + Block <= Export))
                        {
                            Mark(at);
                        }
                        string request = $"{command}{(fua ? " FUA" : "")} at {offset} length {length}";
                        uint error;
                        byte[]? data = null;
                        try
                        {
                            data = command == NbdCommand.Read && length <= 32 << 20 ? new byte[length] : null;
                            byte[]? payload = command == NbdCommand.Write ? Enumerable.Repeat((byte)0xEE, (int)length).ToArray() : null;
                            client.Send(command, offset, (uint)length, fua, payload, data);
                            error = client.Receive().Error;
                        }
                        catch (IOException)
                        {
                            Assert.Fail($"{request}: the server closed the connection instead of answering");
                            return;
                        }
                        checkedRequests++;
                        bool inside = offset + length <= Export && length > 0 && offset % 512 == 0 && length % 512 == 0;
                        if (error != 0)
                        {
                            AssertModel($"{request} failed ({error})");
                            continue;
                        }
                        Assert.IsTrue(inside, $"{request}: succeeded though it is not a valid range of the export");
                        switch (command)
                        {
                            case NbdCommand.Write:
                                foreach (long at in marks.Keys.Where(a => a >= offset && a + Block <= offset + length).ToList())
                                {
                                    marks[at] = 0xEE;
                                }
                                break;
                            case NbdCommand.WriteZeroes:
                                foreach (long at in marks.Keys.Where(a => a >= offset && a + Block <= offset + length).ToList())
                                {
                                    marks[at] = 0;
                                }
                                break;
                            case NbdCommand.Read when data is not null:
                                foreach ((long at, byte value) in marks.Where(m => m.Key >= offset && m.Key + Block <= offset + length))
                                {
                                    Assert.IsTrue(data.AsSpan((int)(at - offset), Block).ToArray().All(b => b == value), $"{request}: returned something else than the block at {at}");
                                }
                                break;
                        }
                        // TRIM is a hint (the data may stay), and a block the range covers only in part holds some of
                        // each: the model forgets those marks.
                        foreach (long at in marks.Keys.Where(a => a + Block > offset && a < offset + length
                            && (command == NbdCommand.Trim || (command != NbdCommand.Read && (a < offset || a + Block > offset + length)))).ToList())
                        {
                            marks.Remove(at);
                        }
                        AssertModel($"{request} succeeded");
                    }
                }
            }
        }
        Assert.IsGreaterThan(500, checkedRequests);
    }

    /// <summary>A valid conversation: client flags, an option or two, NBD_OPT_GO, then a few requests.</summary>
    private static byte[] Conversation(Random random, long halfBytes)
    {
        List<byte> bytes = [];
        bytes.AddRange(U32(3)); // fixed newstyle, no zeroes
        if (random.Next(3) == 0)
        {
            bytes.AddRange(Option(3, [])); // NBD_OPT_LIST
        }
        if (random.Next(3) == 0)
        {
            bytes.AddRange(Option(6, [0, 0, 0, 0, 0, 1, 0, 3])); // NBD_OPT_INFO, export "", one request: NBD_INFO_BLOCK_SIZE
        }
        bytes.AddRange(Option(7, [0, 0, 0, 0, 0, 0])); // NBD_OPT_GO, export "", no info requests
        int requests = random.Next(1, 6);
        for (int i = 0; i < requests; i++)
        {
            ushort type = (ushort)random.Next(0, 7);
            uint length = (uint)(random.Next(1, 9) * 512);
            ulong offset = (ulong)random.Next((int)(halfBytes / 512)) * 512;
            byte[] header = new byte[28];
            BinaryPrimitives.WriteUInt32BigEndian(header, RequestMagic);
            BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(4), (ushort)(random.Next(4) == 0 ? 1 : 0)); // FUA sometimes
            BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(6), type);
            BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), (ulong)random.NextInt64());
            BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(16), offset);
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(24), length);
            bytes.AddRange(header);
            if (type == 1)
            {
                byte[] payload = new byte[length];
                random.NextBytes(payload);
                bytes.AddRange(payload);
            }
        }
        return [.. bytes];
    }

    /// <summary>One to four mutations: bit flips, an edge value over a field, a cut, or inserted garbage.</summary>
    private static byte[] Mutate(Random random, byte[] message, long halfBytes, long sizeBytes)
    {
        List<byte> bytes = [.. message];
        int mutations = random.Next(1, 5);
        for (int m = 0; m < mutations && bytes.Count > 0; m++)
        {
            int at = random.Next(bytes.Count);
            switch (random.Next(5))
            {
                case 0:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    byte[] edge = random.Next(4) switch { 0 => [0xFF, 0xFF, 0xFF, 0xFF], 1 => [0, 0, 0, 0], 2 => [0x7F, 0xFF, 0xFF, 0xFF], _ => [0x80, 0, 0, 0] };
                    for (int i = 0; i < edge.Length && at + i < bytes.Count; i++)
                    {
                        bytes[at + i] = edge[i];
                    }
                    break;
                case 2:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case 3:
                    byte[] garbage = new byte[random.Next(1, 64)];
                    random.NextBytes(garbage);
                    bytes.InsertRange(at, garbage);
                    break;
                default:
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, random.Next(1, 16)));
                    break;
            }
        }
        byte[] result = [.. bytes];
        FoldWritesIntoLowerHalf(result, halfBytes, sizeBytes);
        return result;
    }

    /// <summary>Any well-formed write-like request whose offset is inside the export is moved into the lower half.</summary>
    private static void FoldWritesIntoLowerHalf(byte[] message, long halfBytes, long sizeBytes)
    {
        for (int i = 0; i + 28 <= message.Length; i++)
        {
            if (BinaryPrimitives.ReadUInt32BigEndian(message.AsSpan(i)) != RequestMagic)
            {
                continue;
            }
            ushort type = BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(i + 6));
            ulong offset = BinaryPrimitives.ReadUInt64BigEndian(message.AsSpan(i + 16));
            uint length = BinaryPrimitives.ReadUInt32BigEndian(message.AsSpan(i + 24));
            if (type is 1 or 4 or 6 && offset < (ulong)sizeBytes)
            {
                // Keep the offset's sector misalignment (a fuzzed case of its own); cap the length likewise.
                ulong folded = offset % (ulong)(halfBytes / 2);
                BinaryPrimitives.WriteUInt64BigEndian(message.AsSpan(i + 16), folded);
                if (length > halfBytes / 2)
                {
                    BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(i + 24), (uint)(halfBytes / 2) | (length & 511));
                }
            }
        }
    }

    private static byte[] Option(uint option, byte[] data)
    {
        byte[] bytes = new byte[16 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, OptionMagic);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(12), (uint)data.Length);
        data.CopyTo(bytes.AsSpan(16));
        return bytes;
    }

    private static byte[] U32(uint value)
    {
        byte[] bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return bytes;
    }
}
