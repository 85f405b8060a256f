using Writeboost.CrashTest.Recording;
using Writeboost.Devices;
using Writeboost.Pmem;

namespace Writeboost.CrashTest.Targets;

/// <summary>What a target needs: three devices, made in memory and recorded by the harness.</summary>
/// <param name="PmemBytes">0: no pmem region.</param>
/// <param name="PmemBackend">How the pmem region is presented: <see cref="PmemBackend.Dax"/> (stores, line write-backs, fences — crash states per cache line) or <see cref="PmemBackend.Block"/> (a block device under read-modify-write — crash states per sector).</param>
public sealed record TargetGeometry(long BackingBytes, long CacheBytes, long PmemBytes, PmemBackend PmemBackend = PmemBackend.Dax)
{
    /// <summary>The pmem region's backend, or null when the target has none.</summary>
    public PmemBackend? Pmem => PmemBytes > 0 ? PmemBackend : null;
}

/// <summary>The devices a target is opened on: recorded ones for a run, a crash state's for a recovery.</summary>
/// <param name="Cache">A second block device (the writeboost device's cache); 0 bytes when the target asked for none.</param>
/// <param name="Pmem">The pmem region, or null.</param>
public sealed record TargetDevices(IBlockDevice Backing, IBlockDevice Cache, PmemRegion? Pmem);

/// <summary>
/// A stretch of one device's media where a design keeps metadata (a superblock, a header, an index, a record's
/// header): what the corruption sweep damages bit by bit (<see cref="ICrashTarget.MetadataRegions"/>).
/// </summary>
/// <param name="Name">How reports name it: "superblock", "record headers".</param>
/// <param name="Device"><see cref="DeviceId.Backing"/>, <see cref="DeviceId.Cache"/> or <see cref="DeviceId.Pmem"/>.</param>
public sealed record MetadataRegion(string Name, DeviceId Device, long OffsetBytes, long LengthBytes);

/// <summary>How a target is opened.</summary>
/// <param name="Live">True: a workload will run on it (start what runs in the background). False: only recover and read.</param>
/// <param name="Schedule">The campaign's schedule: 0 unperturbed; others a seeded perturbation a target may apply to its own threads.</param>
/// <param name="Seed">The campaign's seed.</param>
/// <param name="Survey">Also measure how much recovery had to do (<see cref="ICrashTargetDevice.RecoveryWork"/>), which may cost a read of the media first.</param>
public sealed record TargetOpen(bool Live, int Schedule, int Seed, bool Survey = false)
{
    /// <summary>For the writeboost target: the harness's seam into the device's own threads.</summary>
    internal Cache.Core.ScheduleHooks? Hooks { get; init; }

    /// <summary>
    /// For a design with threads of its own: call <c>Windows.At("name")</c> at each window of them. Stretched in
    /// a perturbed recording (<see cref="Schedule"/> above 0), nothing otherwise.
    /// </summary>
    public Schedules.ScheduleWindows Windows { get; init; } = Schedules.ScheduleWindows.None;

    /// <summary>Which life of the device this open starts (round 1 is the first; a crash state of round r is recovered by life r + 1): a target whose table changes between lives opens with that life's.</summary>
    public int Life { get; init; } = 1;
}

/// <summary>An opened target: a block device the workload and the oracle use, that can also crash.</summary>
public interface ICrashTargetDevice : IBlockDevice
{
    /// <summary>Stops without writing anything more: what the devices hold now is the crash (nothing is flushed or closed).</summary>
    void Crash();

    /// <summary>How much this open's recovery found to repair (discarded, rebuilt, inferred); 0 for nothing. The harness carries the crash states whose recovery had the most to do into the next round.</summary>
    int RecoveryWork { get; }

    /// <summary>What this open's recovery did, in a line, for the minimised story (null: nothing to say).</summary>
    string? RecoveryStory { get; }

    /// <summary>
    /// The kinds of debris this open's recovery left on the media for the next life to meet (for the writeboost
    /// device: tombstones, two in a row, one right after the superblock record, a discarded tail, zeroed headers,
    /// segments rebuilt from pmem, torn pmem records). The harness carries into the next round, schedule by schedule,
    /// a state with each kind in turn (<see cref="Campaign"/>), so a recovery bug that shows only after one kind
    /// is met on purpose. Empty: none, or a target that does not say.
    /// </summary>
    IReadOnlyCollection<string> RecoveryDebris => [];

    /// <summary>
    /// What this open's recovery says was lost to damaged media (poisoned blocks, refused segments), or null. After
    /// a pure crash it must be null: a crash loses only what was never durable, and a torn write taken for damage
    /// turns a good device into a degraded one.
    /// </summary>
    string? ClaimedLoss => null;
}

/// <summary>
/// A design under test: the crash harness records a workload against it over recorded devices, makes every
/// crash state the hardware allows, opens the target on each (its recovery), and checks the oracle on what it
/// reads. The writeboost device is one implementation (<see cref="WriteboostTarget"/>); a prototyper's own
/// <see cref="IBlockDevice"/> design is another, judged by the same oracle, workloads, schedules, rounds and
/// minimiser (docs/prototyping.md).
/// </summary>
public interface ICrashTarget
{
    /// <summary>A short name for reports.</summary>
    string Name { get; }

    /// <summary>The devices the target needs for a workload.</summary>
    TargetGeometry GeometryFor(Workload workload);

    /// <summary>
    /// Opens the target on <paramref name="devices"/>: formats blank media, recovers anything else. Its
    /// <see cref="IBlockDevice.SizeBytes"/> is what the oracle checks. An exception from recovery is a violation.
    /// </summary>
    ICrashTargetDevice Open(TargetDevices devices, TargetOpen options);

    /// <summary>
    /// True when crash states may be opened (recovered and read) by several threads at once, each on its own
    /// devices: the harness then checks a log's states on every core. False (the default) for a design that shares
    /// state between its opens (a static, a file of its own): its states are checked one at a time.
    /// </summary>
    bool OpensConcurrently => false;

    /// <summary>
    /// Where the design keeps its metadata on <paramref name="media"/> — the devices as a workload left them, to read
    /// (what is written to them is thrown away) — for the corruption sweep (<c>wb corrupt --target</c>): each byte
    /// of each region gets a bit flipped in turn (evenly spread bytes past 4 KiB) and each of its sectors (64-byte
    /// lines on a dax pmem region) is zeroed; a damage there must never make the design read data from the wrong
    /// place. Empty (the default): none named, and every byte of the cache device and pmem region is fair game.
    /// </summary>
    IReadOnlyList<MetadataRegion> MetadataRegions(TargetDevices media) => [];
}
