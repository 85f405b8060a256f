namespace Writeboost.Nbd;

/// <summary>
/// The decisions where the NBD server keeps what it acknowledges true: the server asks here, and these answers are
/// the product's rules. The crash harness, the only other implementer (the type is internal), plants a seeded bug in
/// the server by overriding one answer, to prove its NBD campaigns catch what the device's own judges cannot see.
/// </summary>
internal class NbdServerFaults
{
    /// <summary>The product: every rule kept.</summary>
    internal static readonly NbdServerFaults None = new();

    /// <summary>A FUA WRITE_ZEROES is acknowledged only after the device flush that makes its zeros durable.</summary>
    internal virtual bool FuaWriteZeroesFlushesBeforeAck => true;
}
