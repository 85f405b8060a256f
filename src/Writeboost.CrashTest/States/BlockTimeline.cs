using Writeboost.CrashTest.Recording;

namespace Writeboost.CrashTest.States;

/// <summary>
/// One block device, advanced event by event: the durable image, and the writes issued but not yet durable.
/// The crash model: a write is durable once it completed and a flush begun after its completion has ended,
/// or once a FUA write completed. Anything else issued before the crash may be lost, kept, or torn per sector,
/// in any order — but a write that completed before an overlapping one was issued never lands over it: where
/// the later write is durable, the earlier one's sectors are <em>shadowed</em> and no crash state shows them (a
/// drive's cache holds the newest data of a sector; found when write-around sent a user's overwrites straight to
/// the backing store and the harness let a stale write land over a FUA-acknowledged one).
/// </summary>
/// <param name="durable">The image it advances (its own: copy-on-write over the initial one).</param>
internal sealed class BlockTimeline(DeviceId device, PagedImage durable)
{
    /// <summary>A timeline over <paramref name="initial"/>, which it never changes.</summary>
    public BlockTimeline(DeviceId device, byte[] initial) : this(device, new PagedImage(initial))
    {
    }

    public BlockTimeline(DeviceId device, long sizeBytes) : this(device, new byte[sizeBytes])
    {
    }

    private readonly SortedDictionary<int, CrashEvent> _notDurable = [];
    private readonly HashSet<int> _completed = [];
    private readonly Dictionary<int, List<int>> _flushSets = [];
    // Write B → the non-durable writes that had completed when B was issued and overlap it.
    private readonly Dictionary<int, List<int>> _overwrites = [];
    // Write A → byte ranges of it that a later durable write owns.
    private readonly Dictionary<int, List<(long Start, long End)>> _shadowed = [];

    public DeviceId Device => device;
    /// <summary>What the media holds for sure: copy-on-write over the initial image, which it never changes. Written as the timeline advances: use it (and a layer over it) only at the current point.</summary>
    public PagedImage Durable { get; } = durable;
    /// <summary>Writes issued before the current point and not durable at it, in issue order.</summary>
    public IReadOnlyCollection<CrashEvent> NotDurable => _notDurable.Values;
    /// <summary>The same writes with the index of the event that issued each.</summary>
    public IEnumerable<KeyValuePair<int, CrashEvent>> NotDurableByIssue => _notDurable;

    /// <summary>Told (write, at) when the write issued at event <c>write</c> becomes durable at event <c>at</c> (its FUA completion, or the end of a flush that covered it).</summary>
    public Action<int, int>? BecameDurable { get; set; }

    public void Apply(int index, CrashEvent e)
    {
        if (e.Device != device)
        {
            return;
        }
        switch (e.Kind)
        {
            case EventKind.Write:
                foreach ((int earlier, CrashEvent older) in _notDurable)
                {
                    if (_completed.Contains(earlier) && Overlap(older, e) is not null)
                    {
                        if (!_overwrites.TryGetValue(index, out List<int>? list))
                        {
                            _overwrites[index] = list = [];
                        }
                        list.Add(earlier);
                    }
                }
                _notDurable[index] = e;
                break;
            case EventKind.WriteDone:
                _completed.Add(e.Ref);
                if (e.Fua)
                {
                    MakeDurable(e.Ref, index);
                }
                break;
            case EventKind.FlushBegin:
                _flushSets[index] = _completed.Where(_notDurable.ContainsKey).Order().ToList();
                break;
            case EventKind.FlushEnd:
                if (_flushSets.Remove(e.Ref, out List<int>? covered))
                {
                    foreach (int write in covered)
                    {
                        MakeDurable(write, index);
                    }
                }
                break;
            default:
                break;
        }
    }

    private void MakeDurable(int write, int at)
    {
        if (_notDurable.Remove(write, out CrashEvent e))
        {
            BecameDurable?.Invoke(write, at);
            WriteTo(Durable, write, e);
            _completed.Remove(write);
            _shadowed.Remove(write);
            if (_overwrites.Remove(write, out List<int>? older))
            {
                foreach (int earlier in older)
                {
                    if (_notDurable.TryGetValue(earlier, out CrashEvent shadowed) && Overlap(shadowed, e) is { } range)
                    {
                        if (!_shadowed.TryGetValue(earlier, out List<(long, long)>? ranges))
                        {
                            _shadowed[earlier] = ranges = [];
                        }
                        ranges.Add(range);
                    }
                }
            }
        }
    }

    private static (long Start, long End)? Overlap(CrashEvent a, CrashEvent b)
    {
        long start = Math.Max(a.OffsetBytes, b.OffsetBytes);
        long end = Math.Min(a.OffsetBytes + a.LengthBytes, b.OffsetBytes + b.LengthBytes);
        return start < end ? (start, end) : null;
    }

    /// <summary>Whether sector <paramref name="sectorOffsetBytes"/> of non-durable write <paramref name="write"/> is owned by a later durable write.</summary>
    public bool IsShadowed(int write, long sectorOffsetBytes) =>
        _shadowed.TryGetValue(write, out List<(long Start, long End)>? ranges) && ranges.Any(r => sectorOffsetBytes >= r.Start && sectorOffsetBytes < r.End);

    /// <summary>Lands write <paramref name="write"/> (issued at that event) on <paramref name="image"/>, but for its shadowed sectors.</summary>
    public void WriteTo(PagedImage image, int write, CrashEvent e)
    {
        if (!_shadowed.ContainsKey(write))
        {
            image.Write(e.OffsetBytes, e.Data);
            return;
        }
        for (int s = 0; s < e.LengthBytes / 512; s++)
        {
            if (!IsShadowed(write, e.OffsetBytes + s * 512))
            {
                // Contiguous runs in one call: most writes have no shadow at all.
                int run = 1;
                while (s + run < e.LengthBytes / 512 && !IsShadowed(write, e.OffsetBytes + (s + run) * 512))
                {
                    run++;
                }
                image.Write(e.OffsetBytes + s * 512, e.Data.AsSpan(s * 512, run * 512));
                s += run - 1;
            }
        }
    }
}

/// <summary>
/// The pmem region, advanced event by event: the durable image, and per 64-byte line the stores made since the
/// line was last persisted. The crash model (ADR): a line holds some prefix of its pending stores — lines are
/// independent; a store reaches the persistence domain once its line was written back and a fence completed,
/// or whenever the line was evicted on its own earlier. Under eADR (<paramref name="cachesPersist"/>) a store
/// is durable once it completed, that is once the next event of any device happened: only the last event's
/// store is pending, as a store the power failure interrupted (each of its lines kept or not).
/// </summary>
/// <param name="durable">The image it advances (its own: copy-on-write over the initial one).</param>
internal sealed class PmemTimeline(PagedImage durable, bool cachesPersist = false)
{
    /// <summary>A timeline over <paramref name="initial"/>, which it never changes.</summary>
    public PmemTimeline(byte[] initial, bool cachesPersist = false) : this(new PagedImage(initial), cachesPersist)
    {
    }

    public PmemTimeline(long sizeBytes) : this(new byte[sizeBytes])
    {
    }

    /// <summary>True when some thread wrote <paramref name="line"/> back since its last store and has not fenced yet.</summary>
    public bool IsWrittenBack(long line) => _writtenBack.ContainsKey(line);

    /// <summary>eADR: the CPU caches are in the power-fail domain.</summary>
    public bool CachesPersist => cachesPersist;

    public const int LineBytes = 64;
    private readonly Dictionary<long, List<(int OffsetInLine, byte[] Bytes)>> _pending = [];
    /// <summary>
    /// Per line written back and not yet fenced: each thread's write-back and how many of the line's pending stores it
    /// covered (a fence completes its own thread's only). A line is here only while some write-back of it is.
    /// </summary>
    private readonly Dictionary<long, List<(int Thread, int Stores)>> _writtenBack = [];

    /// <summary>What the lines hold for sure: copy-on-write over the initial image, which it never changes.</summary>
    public PagedImage Durable { get; } = durable;
    public IReadOnlyDictionary<long, List<(int OffsetInLine, byte[] Bytes)>> PendingLines => _pending;

    /// <summary>
    /// Told (store, at) when the part of the store issued at event <c>store</c> that lies in one line becomes durable
    /// at event <c>at</c> (a store spanning lines is told once per line; set it before the first event).
    /// </summary>
    public Action<int, int>? BecameDurable
    {
        get => _becameDurable;
        set
        {
            _becameDurable = value;
            _pendingIssues = value is null ? null : [];
        }
    }

    private Action<int, int>? _becameDurable;
    /// <summary>With <see cref="BecameDurable"/>: the issuing event of each pending store of each line, beside <see cref="_pending"/>.</summary>
    private Dictionary<long, List<int>>? _pendingIssues;
    /// <summary>The event being applied (-1: the caller gave none).</summary>
    private int _at = -1;

    /// <param name="index">The event's index in its log: what <see cref="BecameDurable"/> is told.</param>
    public void Apply(CrashEvent e, int index = -1)
    {
        _at = index;
        if (cachesPersist && _pending.Count > 0)
        {
            PersistAllPending(); // the store before this event completed: in the cache, so in the power-fail domain
        }
        if (e.Device != DeviceId.Pmem)
        {
            return;
        }
        switch (e.Kind)
        {
            case EventKind.PmemStore:
                long offset = e.OffsetBytes;
                ReadOnlySpan<byte> data = e.Data;
                while (!data.IsEmpty)
                {
                    long line = offset / LineBytes;
                    int inLine = (int)(offset % LineBytes);
                    int n = Math.Min(LineBytes - inLine, data.Length);
                    if (!_pending.TryGetValue(line, out List<(int, byte[])>? stores))
                    {
                        _pending[line] = stores = [];
                    }
                    stores.Add((inLine, data[..n].ToArray()));
                    if (_pendingIssues is not null)
                    {
                        if (!_pendingIssues.TryGetValue(line, out List<int>? issues))
                        {
                            _pendingIssues[line] = issues = [];
                        }
                        issues.Add(index);
                    }
                    data = data[n..];
                    offset += n;
                }
                break;
            case EventKind.PmemFlush:
                for (long line = e.OffsetBytes / LineBytes; line <= (e.OffsetBytes + Math.Max(0, e.LengthBytes - 1)) / LineBytes; line++)
                {
                    if (_pending.TryGetValue(line, out List<(int, byte[])>? stores))
                    {
                        WrittenBack(line, e.Ref, stores.Count);
                    }
                }
                break;
            case EventKind.PmemFence:
                Fence(e.Ref);
                break;
            default:
                break;
        }
    }

    /// <summary>
    /// A fence by <paramref name="thread"/>: the lines that thread wrote back reach the persistence domain, up to
    /// the stores its write-back covered; another thread's write-backs stay pending (-1, from logs without threads:
    /// any thread's).
    /// </summary>
    private void Fence(int thread)
    {
        if (_writtenBack.Count == 0)
        {
            return;
        }
        List<long>? emptied = null;
        foreach ((long line, List<(int Thread, int Stores)> backs) in _writtenBack)
        {
            // The stores this fence makes durable: the most any of its write-backs of the line covered.
            int covered = -1;
            foreach ((int by, int stores) in backs)
            {
                if (Completes(thread, by))
                {
                    covered = Math.Max(covered, stores);
                }
            }
            if (covered < 0)
            {
                continue;
            }
            int durable = 0;
            bool storesLeft = true;
            if (_pending.TryGetValue(line, out List<(int OffsetInLine, byte[] Bytes)>? pending))
            {
                durable = Math.Min(covered, pending.Count);
                ApplyPrefix(Durable, line, pending, durable);
                pending.RemoveRange(0, durable);
                Tell(line, durable);
                storesLeft = pending.Count > 0;
                if (!storesLeft)
                {
                    _pending.Remove(line);
                }
            }
            // The fence's own write-backs go; another thread's counted stores that are durable now: it covers fewer.
            int kept = 0;
            for (int i = 0; i < backs.Count; i++)
            {
                (int by, int stores) = backs[i];
                if (!Completes(thread, by) && stores > durable && storesLeft)
                {
                    backs[kept++] = (by, stores - durable);
                }
            }
            backs.RemoveRange(kept, backs.Count - kept);
            if (backs.Count == 0)
            {
                (emptied ??= []).Add(line);
            }
        }
        foreach (long line in emptied ?? [])
        {
            _writtenBack.Remove(line);
        }
    }

    /// <summary>Tells <see cref="BecameDurable"/> of the first <paramref name="count"/> pending stores of <paramref name="line"/>, which just became durable.</summary>
    private void Tell(long line, int count)
    {
        if (_pendingIssues is null || !_pendingIssues.TryGetValue(line, out List<int>? issues))
        {
            return;
        }
        foreach (int store in issues.Take(count))
        {
            _becameDurable!(store, _at);
        }
        issues.RemoveRange(0, Math.Min(count, issues.Count));
        if (issues.Count == 0)
        {
            _pendingIssues.Remove(line);
        }
    }

    /// <summary>A fence by <paramref name="fence"/> completes a write-back by <paramref name="writeBack"/> (-1: a log without threads, any).</summary>
    private static bool Completes(int fence, int writeBack) => writeBack == fence || writeBack == -1 || fence == -1;

    /// <summary><paramref name="thread"/> wrote <paramref name="line"/> back, covering its first <paramref name="stores"/> pending stores (a later write-back by the same thread replaces its earlier one).</summary>
    private void WrittenBack(long line, int thread, int stores)
    {
        if (!_writtenBack.TryGetValue(line, out List<(int Thread, int Stores)>? backs))
        {
            _writtenBack[line] = backs = [];
        }
        int mine = backs.FindIndex(b => b.Thread == thread);
        if (mine >= 0)
        {
            backs[mine] = (thread, stores);
        }
        else
        {
            backs.Add((thread, stores));
        }
    }

    private void PersistAllPending()
    {
        foreach ((long line, List<(int OffsetInLine, byte[] Bytes)> stores) in _pending)
        {
            ApplyPrefix(Durable, line, stores, stores.Count);
            Tell(line, stores.Count);
        }
        _pending.Clear();
        _writtenBack.Clear();
    }

    /// <summary>Lands the first <paramref name="count"/> of <paramref name="line"/>'s pending stores on <paramref name="image"/>.</summary>
    public static void ApplyPrefix(PagedImage image, long line, List<(int OffsetInLine, byte[] Bytes)> stores, int count)
    {
        if (count == 0)
        {
            return;
        }
        Span<byte> bytes = stackalloc byte[LineBytes];
        image.Read(line * LineBytes, bytes);
        ApplyPrefix(bytes, 0, stores, count);
        image.Write(line * LineBytes, bytes);
    }

    /// <inheritdoc cref="ApplyPrefix(PagedImage, long, List{ValueTuple{int, byte[]}}, int)"/>
    public static void ApplyPrefix(Span<byte> image, long line, List<(int OffsetInLine, byte[] Bytes)> stores, int count)
    {
        for (int i = 0; i < count; i++)
        {
            stores[i].Bytes.CopyTo(image[(int)(line * LineBytes + stores[i].OffsetInLine)..]);
        }
    }
}
