using System.Globalization;
using Writeboost.Cache.Core;

namespace Writeboost.Cli;

/// <summary>The recovery report as <c>wb create</c>, <c>status</c> and <c>serve</c> print it (on stderr): what recovery found, per segment it did not simply replay, and what is lost.</summary>
internal static class RecoveryOutput
{
    internal static IEnumerable<string> Lines(WriteboostStatus status)
    {
        RecoveryReport r = status.Recovery;
        if (r.Formatted)
        {
            yield return status.ReadOnly ? "recovery: no cache there (a read-write open would format it)" : "recovery: formatted (no cache was there)";
        }
        else
        {
            yield return string.Create(CultureInfo.InvariantCulture,
                $"recovery: replayed {r.SegmentsReplayed} segment(s) after the superblock record's {r.SuperblockRecordId}, dropped {r.SegmentsDiscarded} (a crash's torn tail), rebuilt {r.PmemSegmentsRebuilt} from pmem; every segment up to {r.ProvenDurableId} is shown durable; the walk ended at {r.StopReason}");
        }
        foreach (SegmentRecovery segment in r.Segments)
        {
            yield return string.Create(CultureInfo.InvariantCulture,
                $"recovery: segment {segment.Id} (slot {segment.Slot}): {segment.Kind}, {segment.BlocksReplayed} block(s) replayed, {segment.BlocksPoisoned} poisoned: {segment.Detail}");
        }
        foreach (string warning in r.Warnings)
        {
            yield return $"warning: {warning}";
        }
        if (r.LossAccepted)
        {
            yield return "warning: opened with --accept-loss: the blocks of the segment(s) given up read their older data";
        }
        if (status.Degraded)
        {
            string blocks = string.Join(", ", status.Poisoned.Take(8).Select(p => string.Create(CultureInfo.InvariantCulture, $"block {p.Block} (sectors 0x{p.Sectors:x2}, segment {p.SegmentId})")));
            yield return string.Create(CultureInfo.InvariantCulture,
                $"degraded: {status.PoisonedBlocks} block(s) poisoned: their newest durable copy is lost to damaged media; reads of them fail until they are rewritten or the loss is acknowledged (message clear_poison): {blocks}{(status.PoisonedBlocks > 8 ? ", ..." : "")}");
        }
    }

    internal static void ToStderr(WriteboostStatus status, TextWriter? stderr = null)
    {
        stderr ??= Console.Error;
        foreach (string line in Lines(status))
        {
            stderr.WriteLine(line);
        }
        stderr.Flush();
    }
}
