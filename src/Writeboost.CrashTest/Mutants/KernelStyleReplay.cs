using Writeboost.Cache.Core;
using Writeboost.Cache.Format;
using Writeboost.Cache.Recovery;

namespace Writeboost.CrashTest.Mutants;

/// <summary>
/// The seeded bug <c>replay-stale-after-gap</c>: recovery walks the ring as dm-writeboost's replay does. It starts
/// at the slot after the highest id's, visits every slot in ring order, skips empty ones, stops at the first whose
/// length does not fit or whose checksum fails, and replays whatever else is valid — a stale segment of an earlier
/// lap after an id gap included (the kernel checks length and checksum, not that the ids run on). The last
/// written-back id is max(record, newest replayed - nr_segments). Nothing is zeroed or rewritten.
/// </summary>
internal sealed class KernelStyleReplay : FaultHooks
{
    internal override RingWalkResult WalkRing(RingWalk.Input input)
    {
        CacheGeometry geometry = input.Geometry;
        ulong[] ids = RingWalk.ReadHeaders(input.Cache, geometry).Select(h => h.Id).ToArray();
        ulong record = SuperblockRecordOnDisk.Infer(input.StoredRecord, ids, geometry, input.Ours, out string? warning);
        ulong maxId = ids.Max();
        byte[] segment = new byte[geometry.SegmentSizeBytes];
        List<WalkedSegment> replayed = [];
        ulong newest = 0;
        for (long i = 0; i < geometry.NrSegments && maxId > 0; i++)
        {
            long slot = (long)((maxId + (ulong)i) % (ulong)geometry.NrSegments);
            ulong id = ids[slot];
            if (id == 0)
            {
                continue;
            }
            SegmentSlotRead read = SegmentLogReader.Read(input.Cache, geometry, slot, segment);
            if (!read.LengthFits || !read.ChecksumHolds || !EntriesFit(segment, read.Header.Length, geometry, input.BackingSectors))
            {
                break;
            }
            replayed.Add(new WalkedSegment(id, slot, SegmentFate.Replayed, Durable: false, null)
            {
                Entries = DirtyEntries(segment, read.Header.Length, geometry),
                Length = read.Header.Length,
            });
            newest = id;
        }
        ulong inferred = newest > (ulong)geometry.NrSegments ? newest - (ulong)geometry.NrSegments : 0;
        return new RingWalkResult
        {
            RecordId = Math.Max(record, inferred),
            RecordWarning = warning,
            Segments = replayed,
            LastKeptId = Math.Max(newest, record),
            Warnings = warning is null ? [] : [warning],
        };
    }

    private static bool EntriesFit(ReadOnlySpan<byte> segment, int length, CacheGeometry geometry, long backingSectors)
    {
        for (int i = 0; i < length; i++)
        {
            if (MetablockOnDisk.Read(segment, i, geometry.MetablockBytes).Problem(i, backingSectors) is not null)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The dirty entries, every one taken as good (the kernel knows nothing of our lost-block marks).</summary>
    private static List<WalkedEntry> DirtyEntries(ReadOnlySpan<byte> segment, int length, CacheGeometry geometry)
    {
        List<WalkedEntry> entries = [];
        for (int i = 0; i < length; i++)
        {
            MetablockOnDisk entry = MetablockOnDisk.Read(segment, i, geometry.MetablockBytes);
            if (entry.DirtyBits != 0)
            {
                entries.Add(new WalkedEntry(i, entry.BackingSector / Units.SectorsPerBlock, entry.DirtyBits, Lost: false));
            }
        }
        return entries;
    }
}
