using System.Buffers.Binary;
using System.Text;
using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Table;
using Writeboost.Devices;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Cache;

[TestClass]
public sealed class FormatTests
{
    [TestMethod]
    public void The_checksum_of_an_empty_segment_is_the_kernel_test_vector()
    {
        // 3584 zero bytes: the metablock area of a length-0 segment (dm-writeboost-tools' test_checksum).
        Assert.AreEqual(0x0890BE15u, Crc32C.Compute(new byte[3584]));
        Assert.AreEqual(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")), "the standard CRC-32C check value");
    }

    [TestMethod]
    public void Geometry_follows_the_kernel_formulas()
    {
        CacheGeometry g = CacheGeometry.For(64L << 20, 10);
        Assert.AreEqual((64L * 2048 - 2048) / 1024, g.NrSegments, "nr_segments = (cache sectors - 2048) / 1024");
        Assert.AreEqual(127, g.BlocksPerSegment);
        Assert.AreEqual(16, g.MetablockBytes);
        Assert.AreEqual(2048L * 512, g.SegmentStartBytes(0));
        Assert.AreEqual((2048L + 3 * 1024) * 512, g.SegmentStartBytes(g.SlotOf(4)), "id 4 → slot 3");
        Assert.AreEqual(0, g.SlotOf((ulong)g.NrSegments + 1), "ids never wrap; slots do");

        CacheGeometry rfc = CacheGeometry.For(64L << 20, 11);
        Assert.AreEqual(255, rfc.BlocksPerSegment, "the RFC's 1 MiB segment");
        Assert.AreEqual(8, rfc.MetablockBytes, "255 wide metablocks would overflow the 4 KiB metadata block");
    }

    [TestMethod]
    public void A_cache_smaller_than_the_superblock_and_two_segments_is_refused()
    {
        ArgumentOutOfRangeException error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CacheGeometry.For((1 << 20) + (512 << 10), 10, "/dev/tiny"));
        StringAssert.Contains(error.Message, "/dev/tiny");
        StringAssert.Contains(error.Message, "needs at least 2097152 bytes");
    }

    [TestMethod]
    public void A_full_segment_is_written_in_the_kernel_layout()
    {
        using MemoryBlockDevice backing = new(16 << 20);
        using MemoryBlockDevice cache = new(8 << 20);
        byte[] block = new byte[4096];
        using (WriteboostDevice device = WriteboostDevice.Open(backing, cache, new Tunables()))
        {
            for (int i = 0; i < 127; i++)
            {
                block.AsSpan().Fill((byte)i);
                device.Write((100 + i) * 4096L, block);
            }
            device.Write(5 * 4096L + 512, new byte[1024]); // opens segment 2: segment 1 is sealed full
            device.Flush();
        }
        ReadOnlySpan<byte> media = cache.Media;
        CollectionAssert.AreEqual(new byte[] { 0x74, 0x73, 0x42, 0x57 }, media[..4].ToArray(), "magic 0x57427374, little-endian");

        ReadOnlySpan<byte> segment = media.Slice(1 << 20, 512 << 10);
        Assert.AreEqual(1ul, BinaryPrimitives.ReadUInt64LittleEndian(segment), "id");
        Assert.AreEqual(127, segment[12], "length");
        uint expected = ReferenceCrc32C.Compute(segment[512..(4096 + 127 * 4096)]);
        Assert.AreEqual(expected, BinaryPrimitives.ReadUInt32LittleEndian(segment[8..]), "checksum = ~crc32c(~0, bytes 512..4096+4096*length)");
        for (int i = 0; i < 127; i++)
        {
            ReadOnlySpan<byte> metablock = segment.Slice(512 + 16 * i, 16);
            Assert.AreEqual((100L + i) * 8, BinaryPrimitives.ReadInt64LittleEndian(metablock), $"metablock {i}: backing sector");
            Assert.AreEqual(0xFF, metablock[8], $"metablock {i}: dirty bits");
            Assert.AreEqual((byte)i, segment[4096 * (1 + i)], $"data block {i}");
        }
        ReadOnlySpan<byte> second = media.Slice((1 << 20) + (512 << 10), 8192);
        Assert.AreEqual(2ul, BinaryPrimitives.ReadUInt64LittleEndian(second));
        Assert.AreEqual(1, second[12], "the flush wrote segment 2 as a partial log of one block");
        Assert.AreEqual(5L * 8, BinaryPrimitives.ReadInt64LittleEndian(second[512..]));
        Assert.AreEqual(0b0000_0110, second[512 + 8], "sectors 1 and 2 of block 5 are dirty");
    }
}

[TestClass]
public sealed class Crc32CTests
{
    [TestMethod]
    public void The_three_lane_crc_equals_the_bit_at_a_time_definition_at_every_length()
    {
        Random random = new(32);
        // Twice over: the second pass uses the lane factors cached by the first.
        for (int pass = 0; pass < 2; pass++)
        {
            foreach (int length in new[] { 0, 1, 7, 8, 3071, 3072, 3073, 3584, 4096, 4096 + 4096 * 127, 9001, 1 << 20 })
            {
                byte[] data = new byte[length];
                random.NextBytes(data);
                Assert.AreEqual(ReferenceCrc32C.Compute(data), ~Crc32C.AppendThreeLanes(~0u, data), $"length {length}, pass {pass}");
            }
        }
        byte[] zeros = new byte[3584 + 4096 * 127];
        Assert.AreEqual(0x1EEBDEAFu, ~Crc32C.AppendThreeLanes(~0u, zeros), "a full segment of zeros (checked against the kernel formula)");
        Assert.AreEqual(0x1EEBDEAFu, Crc32C.Compute(zeros), "the same, by whichever way this CPU computes it");
    }

    [TestMethod]
    public void The_folded_crc_equals_the_bit_at_a_time_definition_at_every_length_start_state_and_alignment()
    {
        if (!Crc32C.CanFold)
        {
            Assert.Inconclusive("this CPU has no 512-bit carry-less multiply (VPCLMULQDQ with AVX-512): the folded CRC never runs here");
        }
        Random random = new(34);
        byte[] buffer = new byte[(1 << 20) + 64];
        random.NextBytes(buffer);
        int[] lengths = [256, 257, 271, 272, 287, 511, 512, 513, 767, 768, 1000, 4095, 4096, 4097, 8192 + 48 + 3, 3584 + 4096 * 127, 1 << 20];
        foreach (int length in lengths.Concat(Enumerable.Range(0, 200).Select(_ => random.Next(256, 20_000))))
        {
            int misalign = random.Next(64);
            ReadOnlySpan<byte> data = buffer.AsSpan(misalign, length);
            uint expected = ReferenceCrc32C.Compute(data);
            Assert.AreEqual(expected, ~Crc32C.AppendFolded(~0u, data), $"length {length} at offset {misalign}");
            Assert.AreEqual(expected, Crc32C.Compute(data), $"length {length} at offset {misalign}, through Compute");
            // From a running state: the head's CRC continued by the fold.
            int head = random.Next(1, 64);
            uint running = Crc32C.Append(~0u, buffer.AsSpan(misalign, head));
            Assert.AreEqual(ReferenceCrc32C.Compute(buffer.AsSpan(misalign, head + length)), ~Crc32C.AppendFolded(running, buffer.AsSpan(misalign + head, length)), $"length {length} after {head} bytes");
        }
        Assert.AreEqual(0x1EEBDEAFu, ~Crc32C.AppendFolded(~0u, new byte[3584 + 4096 * 127]), "a full segment of zeros");
    }

    [TestMethod]
    public void A_crc_taken_while_copying_is_the_crc_of_the_copy_and_the_copy_is_exact()
    {
        Random random = new(36);
        foreach (int length in new[] { 0, 1, 255, 256, 257, 4096, 4096 + 17, 9001 })
        {
            byte[] source = new byte[length];
            random.NextBytes(source);
            byte[] destination = new byte[length + 8];
            destination.AsSpan(length).Fill(0xEE);
            uint crc = Crc32C.CopyAndAppend(~0u, source, destination);
            Assert.AreEqual(ReferenceCrc32C.Compute(source), ~crc, $"length {length}");
            CollectionAssert.AreEqual(source, destination[..length], $"length {length}: the copy");
            Assert.IsTrue(destination.AsSpan(length).IndexOfAnyExcept((byte)0xEE) < 0, $"length {length}: nothing past the copy");
        }
        byte[] shared = new byte[8192];
        Assert.ThrowsExactly<ArgumentException>(() => Crc32C.CopyAndAppend(0, shared.AsSpan(0, 4096), shared.AsSpan(2048)), "overlapping");
        Assert.ThrowsExactly<ArgumentException>(() => Crc32C.CopyAndAppend(0, new byte[4096], new byte[4095]), "too short");
    }

    [TestMethod]
    public void The_carry_less_product_mod_P_equals_the_bit_at_a_time_one()
    {
        Random random = new(33);
        uint[] edges = [0, 1, 0x80000000u, 0x40000000u, 0xFFFFFFFFu, 0x82F63B78u];
        foreach (uint a in edges)
        {
            foreach (uint b in edges)
            {
                Assert.AreEqual(Crc32C.MultiplyModPBitwise(a, b), Crc32C.MultiplyModP(a, b), $"{a:x8} * {b:x8}");
            }
        }
        for (int i = 0; i < 100_000; i++)
        {
            uint a = (uint)random.NextInt64(1L << 32);
            uint b = (uint)random.NextInt64(1L << 32);
            Assert.AreEqual(Crc32C.MultiplyModPBitwise(a, b), Crc32C.MultiplyModP(a, b), $"{a:x8} * {b:x8}");
        }
    }

    [TestMethod]
    [DataRow(MetablockOnDisk.WideSizeBytes)]
    [DataRow(MetablockOnDisk.CompactSizeBytes)]
    public void A_segment_finished_with_its_blocks_known_crcs_is_the_segment_finished_by_reading_them(int entryBytes)
    {
        const int length = 127;
        Random random = new(35);
        byte[] read = new byte[4096 * (1 + length)];
        random.NextBytes(read.AsSpan(4096));
        for (int i = 0; i < length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(read.AsSpan(512 + i * entryBytes), 8L * i);
        }
        byte[] known = (byte[])read.Clone();
        uint?[] crcs = [.. Enumerable.Range(0, length).Select(i => i % 3 == 0 ? (uint?)null : Crc32C.Append(0, read.AsSpan(4096 * (1 + i), 4096)))];

        SegmentImage.Finish(read, 7, length, entryBytes);
        SegmentImage.Finish(known, 7, length, entryBytes, knownDataCrc: i => crcs[i]);

        CollectionAssert.AreEqual(read, known, "every third block unknown (read), the rest known");
    }

    [TestMethod]
    public void A_crc_joined_from_its_parts_equals_the_crc_of_the_whole()
    {
        Random random = new(34);
        byte[] data = new byte[20 + 4096];
        random.NextBytes(data);
        uint fields = Crc32C.Append(~0u, data.AsSpan(0, 20));
        uint block = Crc32C.Append(0, data.AsSpan(20));
        Assert.AreEqual(Crc32C.Compute(data), ~Crc32C.Concat(fields, block, 4096), "the pmem record's checksum, from the block's CRC");
    }
}
