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
            if (!read.LengthFits || !read.ChecksumHolds || RingWalk.EntryProblem(segment, read.Header.Length, geometry, input.BackingSectors) is not null)
            {
                break;
            }
            replayed.Add(new WalkedSegment(id, slot, SegmentFate.Replayed, Durable: false, null)
            {
                // The kernel knows nothing of our header extension: no block is taken as lost.
                Entries = RingWalk.Entries(segment, KernelView(read), geometry, damagedEntry: _ => false),
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

    /// <summary>The slot's header as the kernel reads it: id, checksum and length, no extension.</summary>
    private static RingWalk.SlotHeader KernelView(SegmentSlotRead read) =>
        new(read.Header.Id, read.Header.Checksum, read.Header.Length, HeaderExtensionState.Absent, default, Authentic: true);
}
