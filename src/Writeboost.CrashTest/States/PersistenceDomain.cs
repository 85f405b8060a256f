using Writeboost.Pmem;

namespace Writeboost.CrashTest;

/// <summary>
/// What survives a power failure of the pmem region's stores (docs/crash-model.md). Block devices are not
/// affected: their FLUSH and FUA rules are the same under both.
/// </summary>
public enum PersistenceDomain
{
    /// <summary>
    /// ADR (asynchronous DRAM refresh): the memory controller's queues are in the power-fail domain, the CPU caches
    /// are not. A store survives once its line was written back and a fence completed after it (or the line was
    /// evicted on its own): a crash keeps any prefix of each line's pending stores.
    /// </summary>
    Adr,

    /// <summary>
    /// eADR (extended ADR): the CPU caches are flushed on power failure too. Every store that completed survives,
    /// write-backs and fences or not; only a store in progress at the crash may be torn (any of its cache lines
    /// kept, each whole or not). Applies to the dax backend; the block backend is a block device under either.
    /// </summary>
    Eadr,
}

/// <summary>How the harness models a target's pmem region: its backend and, for dax, the persistence domain.</summary>
internal sealed record PmemModel(PmemBackend Backend, PersistenceDomain Domain = PersistenceDomain.Adr)
{
    /// <summary>Stores persist on reaching the CPU cache (eADR over dax).</summary>
    public bool CachesPersist => Backend == PmemBackend.Dax && Domain == PersistenceDomain.Eadr;
}
