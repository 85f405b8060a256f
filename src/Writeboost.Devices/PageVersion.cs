namespace Writeboost.Devices;

/// <summary>
/// What a 4 KiB page of a device or region holds, as a token (<see cref="IBlockDevice.VersionOf"/>, <c>PmemRegion.VersionOf</c>): the same holder (compared by
/// reference, never looked into) at the same stamp is the same bytes. A reader that keeps a token keeps its holder
/// alive, so no other holder can take its place.
/// </summary>
public readonly struct PageVersion(object holder, long stamp) : IEquatable<PageVersion>
{
    /// <summary>The page a token is for: 4 KiB, at a 4 KiB boundary.</summary>
    public const int PageBytes = 4096;

    /// <summary>Throws unless <paramref name="offsetBytes"/> starts a whole page inside a device or region of <paramref name="sizeBytes"/>.</summary>
    public static void CheckPage(string name, long sizeBytes, long offsetBytes)
    {
        DeviceRange.CheckInside(name, sizeBytes, offsetBytes, PageBytes, "version");
        if (offsetBytes % PageBytes != 0)
        {
            throw new ArgumentException($"version of {name} at offset {offsetBytes}: a page's version is asked at a 4 KiB boundary");
        }
    }

    /// <summary>Whatever holds the page's bytes.</summary>
    public object Holder { get; } = holder;

    /// <summary>The holder's count of changes when it gave the token: any change of the holder moves it.</summary>
    public long Stamp { get; } = stamp;

    /// <summary>The same holder, by reference, at the same stamp.</summary>
    public bool Equals(PageVersion other) => ReferenceEquals(Holder, other.Holder) && Stamp == other.Stamp;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is PageVersion other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(Holder), Stamp);

    /// <summary>The same holder at the same stamp.</summary>
    public static bool operator ==(PageVersion left, PageVersion right) => left.Equals(right);

    /// <summary>Another holder, or another stamp.</summary>
    public static bool operator !=(PageVersion left, PageVersion right) => !left.Equals(right);
}
