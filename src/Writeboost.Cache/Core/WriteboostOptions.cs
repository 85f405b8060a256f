namespace Writeboost.Cache.Core;

/// <summary>How to open a writeboost device, beyond its table.</summary>
public sealed record WriteboostOptions
{
    /// <summary>Format the cache even if it holds a cache already (dirty data included). <c>wb create --reformat</c>.</summary>
    public bool Reformat { get; init; }

    /// <summary>RAM buffers in the pool (dm-writeboost: 8). A writer waits only when all of them are being flushed.</summary>
    public int BufferPoolSize { get; init; } = 8;

    /// <summary>Dispose the backing and cache devices when the writeboost device is disposed.</summary>
    public bool OwnsDevices { get; init; }
}
