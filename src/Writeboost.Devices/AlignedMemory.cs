namespace Writeboost.Devices;

/// <summary>
/// Managed memory pinned and aligned to 4 KiB, so an O_DIRECT device reads and writes it without a bounce copy.
/// The GC frees it like any array.
/// </summary>
public static class AlignedMemory
{
    /// <summary>The alignment of every buffer it hands out: a page, enough for O_DIRECT on any device.</summary>
    public const int AlignmentBytes = 4096;

    /// <summary>A zeroed buffer of <paramref name="lengthBytes"/> whose start is aligned to <see cref="AlignmentBytes"/>.</summary>
    public static Memory<byte> Allocate(int lengthBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(lengthBytes);
        byte[] storage = GC.AllocateArray<byte>(lengthBytes + AlignmentBytes, pinned: true);
        return storage.AsMemory(PaddingOf(storage), lengthBytes);
    }

    private static unsafe int PaddingOf(byte[] pinned)
    {
        fixed (byte* p = pinned)
        {
            return (int)((AlignmentBytes - ((nint)p % AlignmentBytes)) % AlignmentBytes);
        }
    }
}
