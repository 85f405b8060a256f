using Writeboost.Cache.Core;
using Writeboost.Cache.Table;
using Writeboost.Devices;
using Writeboost.Pmem;
using PmemApi = Writeboost.Pmem.Pmem;

namespace Writeboost.Tests.Cache;

/// <summary>A cache reopened with another table than the last (#22): what one life acknowledged, the next reads.</summary>
[TestClass]
public sealed class TableChangeTests
{
    private const int BlockBytes = 4096;

    private static byte[] Filled(byte value) => Enumerable.Repeat(value, BlockBytes).ToArray();

    private static WriteboostDevice Open(MemoryBlockDevice backing, MemoryBlockDevice cache, PmemRegion pmem, bool writeAround) =>
        WriteboostDevice.Open(backing, cache, new Tunables(new Dictionary<string, long>
        {
            ["segment_size_order"] = 5,
            ["write_around_mode"] = writeAround ? 1 : 0,
        }), pmem: pmem);

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void A_mode_1_cache_switched_to_write_around_and_back_reads_the_write_around_writes(bool crashBeforeTheSwitch)
    {
        using MemoryBlockDevice backing = new(1 << 20, name: "backing");
        using MemoryBlockDevice cache = new((1 << 20) + 8 * (16 << 10), name: "cache");
        using PmemRegion pmem = PmemApi.Alloc(new MemoryBlockDevice(4 << 20, name: "pmem"), 0, 4 << 20, ownsDevice: true);

        WriteboostDevice writeBack = Open(backing, cache, pmem, writeAround: false);
        writeBack.Write(7 * BlockBytes, Filled(0x01), WriteOptions.Fua); // in pmem: segment 1, slot 0
        if (crashBeforeTheSwitch)
        {
            writeBack.Abandon();
        }
        else
        {
            writeBack.Dispose();
        }

        using (WriteboostDevice around = Open(backing, cache, pmem, writeAround: true))
        {
            // Switching to write-around writes everything back and formats the cache; then a write goes around it.
            around.Write(7 * BlockBytes, Filled(0x02), WriteOptions.Fua);
        }

        using WriteboostDevice again = Open(backing, cache, pmem, writeAround: false);
        byte[] read = new byte[BlockBytes];
        again.Read(7 * BlockBytes, read);
        Assert.IsTrue(read.All(b => b == 0x02), $"the block reads the write-around write it acknowledged, not 0x{read[0]:x2} from the pmem buffer of the life before");
        again.Abandon();
        using WriteboostDevice aroundAgain = Open(backing, cache, pmem, writeAround: true);
        aroundAgain.Read(7 * BlockBytes, read);
        Assert.IsTrue(read.All(b => b == 0x02), "and in write-around, nothing old is written back over it");
    }
}
