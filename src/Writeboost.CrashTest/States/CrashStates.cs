using Writeboost.CrashTest.Recording;
using Writeboost.Pmem;

namespace Writeboost.CrashTest.States;

/// <summary>The classes of crash state the harness makes at a crash point (see <see cref="CrashStates"/>).</summary>
public enum StateKind
{
    /// <summary>The non-durable block writes that survived are a prefix of their issue order: none, all, or the first k.</summary>
    Prefix,
    /// <summary>Any subset of the non-durable block writes survived, each whole: every subset of up to three, each one alone and all but each one, then seeded ones.</summary>
    Subset,
    /// <summary>Non-durable block writes each lost, kept or torn per 512-byte sector (at least one torn), pmem lines at random prefixes.</summary>
    Torn,
    /// <summary>Pmem lines at prefixes of their pending stores — partial ones on purpose (a record's line without all its data's, a store torn at a line boundary).</summary>
    PmemPrefix,
    /// <summary>A crash inside recovery's own I/O, recovered again.</summary>
    DuringRecovery,
}

/// <summary>
/// The bytes of the three devices at one moment (a log's start): images nothing writes to again, which timelines
/// and devices are layered over (<see cref="PagedImage"/>). <see cref="Pmem"/> is empty without a pmem region.
/// </summary>
internal sealed record Media
{
    /// <param name="backing">Frozen here (<see cref="PagedImage.Freeze"/>), as are the others.</param>
    public Media(PagedImage backing, PagedImage cache, PagedImage pmem)
    {
        Backing = backing.Freeze();
        Cache = cache.Freeze();
        Pmem = pmem.Freeze();
    }

    public PagedImage Backing { get; }
    public PagedImage Cache { get; }
    public PagedImage Pmem { get; }

    public static Media Blank(long backingBytes, long cacheBytes, long pmemBytes) =>
        new(new PagedImage(new byte[backingBytes]), new PagedImage(new byte[cacheBytes]), new PagedImage(new byte[pmemBytes]));
}

/// <summary>
/// The three devices of a recorded run, advanced event by event: the backing store and the cache device as block
/// devices, and the pmem region as cache lines (dax backend) or as a block device (block backend).
/// </summary>
internal sealed class Timelines
{
    /// <summary>Timelines that start from <paramref name="initial"/>, layered over its images (no copy is made).</summary>
    public Timelines(Media initial, PmemModel? pmem)
        : this(new PagedImage(initial.Backing), new PagedImage(initial.Cache), pmem is null ? null : new PagedImage(initial.Pmem), pmem)
    {
    }

    /// <summary>Timelines that start from <paramref name="frozen"/>'s devices, layered over them: nothing may write to them while these are used.</summary>
    public static Timelines Over(CrashState frozen, PmemModel? pmem) =>
        new(new PagedImage(frozen.Backing.Image), new PagedImage(frozen.Cache.Image), pmem is null ? null : new PagedImage(frozen.PmemImage!), pmem);

    /// <param name="backing">The image the backing device's timeline advances (its own), and so on.</param>
    private Timelines(PagedImage backing, PagedImage cache, PagedImage? pmemImage, PmemModel? pmem)
    {
        Backing = new BlockTimeline(DeviceId.Backing, backing);
        Cache = new BlockTimeline(DeviceId.Cache, cache);
        PmemBackend = pmem?.Backend;
        if (pmem?.Backend == Writeboost.Pmem.PmemBackend.Block)
        {
            PmemDevice = new BlockTimeline(DeviceId.Pmem, pmemImage!);
        }
        else if (pmem is not null)
        {
            PmemLines = new PmemTimeline(pmemImage!, pmem.CachesPersist);
        }
    }

    public BlockTimeline Backing { get; }
    public BlockTimeline Cache { get; }
    /// <summary>Mode 1, block backend: the pmem region's device.</summary>
    public BlockTimeline? PmemDevice { get; }
    /// <summary>Mode 1, dax backend: the pmem region's lines.</summary>
    public PmemTimeline? PmemLines { get; }
    public PmemBackend? PmemBackend { get; }
    /// <summary>Events applied so far: the timelines stand at crash point <see cref="Applied"/>.</summary>
    public int Applied { get; private set; }

    public void AdvanceTo(IReadOnlyList<CrashEvent> events, int point)
    {
        for (; Applied < point; Applied++)
        {
            CrashEvent e = events[Applied];
            Backing.Apply(Applied, e);
            Cache.Apply(Applied, e);
            PmemDevice?.Apply(Applied, e);
            PmemLines?.Apply(e, Applied);
        }
    }

    /// <summary>Every non-durable block write (backing, cache, block-backend pmem), in issue order, with the event that issued it.</summary>
    public List<(int Issue, BlockTimeline Device, CrashEvent Write)> NonDurableWrites()
    {
        IEnumerable<(int Issue, BlockTimeline Device, CrashEvent Write)> all = Backing.NotDurableByIssue.Select(w => (w.Key, Backing, w.Value))
            .Concat(Cache.NotDurableByIssue.Select(w => (w.Key, Cache, w.Value)));
        if (PmemDevice is not null)
        {
            all = all.Concat(PmemDevice.NotDurableByIssue.Select(w => (w.Key, PmemDevice, w.Value)));
        }
        return [.. all.OrderBy(w => w.Issue)];
    }

    public int NonDurableCount => Backing.NotDurable.Count + Cache.NotDurable.Count + (PmemDevice?.NotDurable.Count ?? 0);
    public int PendingLineCount => PmemLines?.PendingLines.Count ?? 0;
}

/// <summary>What became of one write that was not durable at the crash: <paramref name="KeptSectors"/> of its sectors landed (0: lost; all: kept; between: torn).</summary>
internal readonly record struct WriteFate(int Issue, DeviceId Device, long OffsetBytes, long LengthBytes, int KeptSectors)
{
    public int Sectors => (int)(LengthBytes / 512);
}

/// <summary>What became of the pmem lines that had stores pending at the crash.</summary>
internal readonly record struct LineFates(int Pending, int None, int Partial, int All);

/// <summary>One crash state's devices: copy-on-write overlays over the timelines' durable images.</summary>
internal sealed class CrashState
{
    /// <summary>Each non-durable write's fate in this state, in issue order (filled by <see cref="CrashStates.Build"/>).</summary>
    public WriteFate[] Fates { get; set; } = [];

    /// <summary>The pending pmem lines' fates in this state.</summary>
    public LineFates Lines { get; set; }

    /// <summary>Of each pending pmem line (in line order), how many of its pending stores this state kept; null: none of any.</summary>
    public int[]? KeptOfPendingLines { get; set; }

    /// <summary>How much this state asks of a reader: every write in flight, each torn one twice, each partial pmem line.</summary>
    public int Complexity => Fates.Length + Fates.Count(f => f.KeptSectors > 0 && f.KeptSectors < f.Sectors) + Lines.Partial + (Lines.Pending > 0 ? 1 : 0);

    /// <summary>A state of layers over the timelines' durable images (which must not advance while it is used).</summary>
    public CrashState(Timelines timelines, long pmemBytes)
        : this(new PagedImage(timelines.Backing.Durable), new PagedImage(timelines.Cache.Durable),
            timelines.PmemDevice?.Durable is { } device ? new PagedImage(device) : null,
            timelines.PmemLines?.Durable is { } lines ? new PagedImage(lines) : null, pmemBytes)
    {
    }

    private CrashState(PagedImage backing, PagedImage cache, PagedImage? pmemDevice, PagedImage? pmemLines, long pmemBytes)
    {
        Backing = new PagedBlockDevice(backing, "backing");
        Cache = new PagedBlockDevice(cache, "cache");
        if (pmemDevice is not null)
        {
            PmemDevice = new PagedBlockDevice(pmemDevice, "pmem");
            Pmem = Writeboost.Pmem.Pmem.Alloc(PmemDevice, 0, pmemBytes);
        }
        else if (pmemLines is not null)
        {
            PmemLines = new MemoryPmemRegion(pmemLines);
            Pmem = PmemLines;
        }
    }

    /// <summary>
    /// Gives the state's own images back (<see cref="PagedImage.Recycle"/>) once it has been recovered and judged: the
    /// state, its devices and any layer over them are never used again.
    /// </summary>
    public void Recycle()
    {
        Backing.Image.Recycle();
        Cache.Image.Recycle();
        PmemDevice?.Image.Recycle();
        PmemLines?.Image.Recycle();
    }

    /// <summary>
    /// A state that holds what this one holds now, to be recovered on its own later (this one's recovery writes to
    /// this one): copies of the pages this state changed, over the same lower images — so it is valid only until
    /// the timelines it was built from advance.
    /// </summary>
    public CrashState Snapshot() =>
        new(Backing.Image.Snapshot(), Cache.Image.Snapshot(), PmemDevice?.Image.Snapshot(), PmemLines?.Image.Snapshot(), Pmem?.LengthBytes ?? 0);

    public PagedBlockDevice Backing { get; }
    public PagedBlockDevice Cache { get; }
    public PagedBlockDevice? PmemDevice { get; }
    public MemoryPmemRegion? PmemLines { get; }
    /// <summary>The pmem region's image, whichever backend holds it (null in mode 0).</summary>
    public PagedImage? PmemImage => PmemDevice?.Image ?? PmemLines?.Image;

    /// <summary>The region recovery opens (null in mode 0).</summary>
    public PmemRegion? Pmem { get; }

    public PagedImage Image(BlockTimeline device) => device.Device switch
    {
        DeviceId.Backing => Backing.Image,
        DeviceId.Cache => Cache.Image,
        _ => PmemDevice!.Image,
    };

    /// <summary>
    /// What this state holds, as the start of a log: snapshots of its images (the pages it changed, over the same
    /// lower images), so the timelines it was built from must not advance again — they are a history's past.
    /// </summary>
    public Media Freeze() => new(
        Backing.Image.Snapshot(),
        Cache.Image.Snapshot(),
        PmemImage?.Snapshot() ?? new PagedImage([]));

    internal static byte[] Materialize(PagedImage image)
    {
        byte[] bytes = new byte[image.LengthBytes];
        image.Read(0, bytes);
        return bytes;
    }
}

/// <summary>
/// The crash states at one crash point, numbered. Surviving writes land in issue order (two writes to one sector
/// are never in flight together on one device here, so that is the order a drive applies them in; writes to
/// different sectors commute). Variant 0: nothing non-durable survived; 1: all of it did (in
/// issue order; every pending pmem store too). From 2 on the kinds that apply here take turns — subsets, torn
/// writes, pmem line prefixes, k-prefixes — so however small the budget per point, each kind gets its share:
/// variant v ≥ 2 is the ((v − 2) / kinds)-th state of kind (v − 2) % kinds. Each state is seeded by (seed, point,
/// variant) alone, so it is rebuilt exactly from a saved log, in any process, on any shard.
/// </summary>
internal static class CrashStates
{
    private const int ExhaustiveLimit = 3;

    /// <summary>The kinds beyond none/all that can make a different state at the timelines' point.</summary>
    public static List<StateKind> ExtraKinds(Timelines timelines)
    {
        int writes = timelines.NonDurableCount;
        List<StateKind> kinds = [];
        if (writes >= 2)
        {
            kinds.Add(StateKind.Subset);
        }
        if (timelines.NonDurableWrites().Any(w => w.Write.LengthBytes > 512))
        {
            kinds.Add(StateKind.Torn);
        }
        if (timelines.PendingLineCount > 0)
        {
            kinds.Add(StateKind.PmemPrefix);
        }
        if (writes >= 3)
        {
            kinds.Add(StateKind.Prefix);
        }
        return kinds;
    }

    /// <summary>How many variants to check at this point: 1 when only one state is possible, 2 when none/all are all, else the budget.</summary>
    public static int VariantCount(Timelines timelines, List<StateKind> extraKinds, int perPoint)
    {
        if (timelines.NonDurableCount == 0 && timelines.PendingLineCount == 0)
        {
            return 1;
        }
        return extraKinds.Count == 0 ? 2 : Math.Max(perPoint, 2 + extraKinds.Count);
    }

    public static StateKind KindOf(List<StateKind> extraKinds, int variant) =>
        variant < 2 || extraKinds.Count == 0 ? StateKind.Prefix : extraKinds[(variant - 2) % extraKinds.Count];

    /// <summary>Builds state <paramref name="variant"/> at the timelines' point.</summary>
    public static CrashState Build(Timelines timelines, List<StateKind> extraKinds, long pmemBytes, int seed, int point, int variant)
    {
        CrashState state = new(timelines, pmemBytes);
        List<(int Issue, BlockTimeline Device, CrashEvent Write)> writes = timelines.NonDurableWrites();
        Random random = new(StateSeed.Of(seed, point, variant));
        state.Fates = [.. writes.Select(w => new WriteFate(w.Issue, w.Device.Device, w.Write.OffsetBytes, w.Write.LengthBytes, 0))];
        state.Lines = new LineFates(timelines.PendingLineCount, timelines.PendingLineCount, 0, 0);
        void Keep(int i)
        {
            writes[i].Device.WriteTo(state.Image(writes[i].Device), writes[i].Issue, writes[i].Write);
            state.Fates[i] = state.Fates[i] with { KeptSectors = state.Fates[i].Sectors };
        }
        if (variant == 0)
        {
            return state;
        }
        if (variant == 1 || extraKinds.Count == 0)
        {
            for (int i = 0; i < writes.Count; i++)
            {
                Keep(i);
            }
            ApplyPmem(state, timelines, random, PmemFate.All);
            return state;
        }
        StateKind kind = KindOf(extraKinds, variant);
        int nth = (variant - 2) / extraKinds.Count;
        switch (kind)
        {
            case StateKind.Prefix:
                // The first k writes in issue order, 0 < k < n: a drive that wrote in order and stopped.
                int k = random.Next(1, writes.Count);
                for (int i = 0; i < k; i++)
                {
                    Keep(i);
                }
                break;
            case StateKind.Subset:
                bool[] kept = Subset(writes.Count, nth, random);
                for (int i = 0; i < writes.Count; i++)
                {
                    if (kept[i])
                    {
                        Keep(i);
                    }
                }
                break;
            case StateKind.Torn:
                int[] tearable = [.. Enumerable.Range(0, writes.Count).Where(i => writes[i].Write.LengthBytes > 512)];
                int forced = tearable[random.Next(tearable.Length)];
                for (int i = 0; i < writes.Count; i++)
                {
                    int fate = i == forced ? 2 : random.Next(3);
                    if (fate == 1)
                    {
                        Keep(i);
                    }
                    else if (fate == 2)
                    {
                        // Torn at sector granularity: each sector old or new, independently.
                        CrashEvent write = writes[i].Write;
                        PagedImage image = state.Image(writes[i].Device);
                        int landed = 0;
                        for (int s = 0; s < write.LengthBytes / 512; s++)
                        {
                            if (random.Next(2) == 0 && !writes[i].Device.IsShadowed(writes[i].Issue, write.OffsetBytes + s * 512))
                            {
                                image.Write(write.OffsetBytes + s * 512, write.Data.AsSpan(s * 512, 512));
                                landed++;
                            }
                        }
                        state.Fates[i] = state.Fates[i] with { KeptSectors = landed };
                    }
                }
                ApplyPmem(state, timelines, random, PmemFate.Any);
                break;
            case StateKind.PmemPrefix:
                if (nth % 2 == 1)
                {
                    for (int i = 0; i < writes.Count; i++)
                    {
                        Keep(i);
                    }
                }
                ApplyPmem(state, timelines, random, PmemFate.Partial);
                break;
            default:
                throw new InvalidOperationException($"no crash state of kind {kind} is built at a point");
        }
        return state;
    }

    /// <summary>
    /// The nth subset (whole writes): with up to three writes, every one but none and all; with more, each write
    /// alone and all but each write (Chipmunk-style k = 1 from both ends); beyond those, seeded.
    /// </summary>
    private static bool[] Subset(int count, int nth, Random random)
    {
        bool[] kept = new bool[count];
        if (count <= ExhaustiveLimit && nth < (1 << count) - 2)
        {
            for (int i = 0; i < count; i++)
            {
                kept[i] = ((nth + 1) >> i & 1) != 0;
            }
        }
        else if (count > ExhaustiveLimit && nth < 2 * count)
        {
            bool alone = nth < count;
            for (int i = 0; i < count; i++)
            {
                kept[i] = (i == nth % count) == alone;
            }
        }
        else
        {
            for (int i = 0; i < count; i++)
            {
                kept[i] = random.Next(2) == 0;
            }
        }
        return kept;
    }

    private enum PmemFate
    {
        /// <summary>Every pending store of every line.</summary>
        All,
        /// <summary>Each line a random prefix of its pending stores.</summary>
        Any,
        /// <summary>Each line a random prefix, strictly partial for half the lines that have two or more stores pending.</summary>
        Partial,
    }

    private static void ApplyPmem(CrashState state, Timelines timelines, Random random, PmemFate fate)
    {
        if (state.PmemLines is null || timelines.PmemLines is null)
        {
            return;
        }
        byte[] line = new byte[PmemTimeline.LineBytes];
        int none = 0;
        int partial = 0;
        int all = 0;
        int[] kept = new int[timelines.PmemLines.PendingLines.Count];
        state.KeptOfPendingLines = kept;
        int at = 0;
        foreach ((long index, List<(int OffsetInLine, byte[] Bytes)> stores) in timelines.PmemLines.PendingLines.OrderBy(l => l.Key))
        {
            int count = fate switch
            {
                PmemFate.All => stores.Count,
                PmemFate.Partial when stores.Count >= 2 && random.Next(2) == 0 => random.Next(1, stores.Count),
                _ => random.Next(stores.Count + 1),
            };
            kept[at++] = count;
            none += count == 0 ? 1 : 0;
            partial += count > 0 && count < stores.Count ? 1 : 0;
            all += count == stores.Count ? 1 : 0;
            state.Lines = new LineFates(timelines.PmemLines.PendingLines.Count, none, partial, all);
            if (count == 0)
            {
                continue;
            }
            state.PmemLines.Read(index * PmemTimeline.LineBytes, line);
            PmemTimeline.ApplyPrefix(line.AsSpan(), 0, stores, count);
            state.PmemLines.Write(index * PmemTimeline.LineBytes, line);
        }
    }
}
