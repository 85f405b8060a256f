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

    /// <summary>Most bytes of buffers given back (<see cref="Return"/>) kept for the next <see cref="Rent"/>.</summary>
    private const long PoolLimitBytes = 64L << 20;
    private static readonly List<Memory<byte>> Pool = [];
    private static long s_pooledBytes;

    /// <summary>
    /// A buffer like <see cref="Allocate"/>'s of at least <paramref name="lengthBytes"/>, whose bytes are anything (the caller
    /// fills what it uses): one given back if one is large enough, else a new one. For a worker's buffer that lives as
    /// long as its device: a crash campaign opens a device for every state it checks, and a fresh pinned buffer of
    /// megabytes each time is the kernel's page faults, not work.
    /// </summary>
    public static Memory<byte> Rent(int lengthBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(lengthBytes);
        lock (Pool)
        {
            int best = -1;
            for (int i = 0; i < Pool.Count; i++)
            {
                if (Pool[i].Length >= lengthBytes && (best < 0 || Pool[i].Length < Pool[best].Length))
                {
                    best = i;
                }
            }
            if (best >= 0)
            {
                Memory<byte> found = Pool[best];
                Pool.RemoveAt(best);
                s_pooledBytes -= found.Length;
                return found;
            }
        }
        return Allocate(lengthBytes);
    }

    /// <summary>Gives back a buffer of <see cref="Rent"/> that its user never touches again.</summary>
    public static void Return(Memory<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return;
        }
        lock (Pool)
        {
            if (s_pooledBytes + buffer.Length <= PoolLimitBytes)
            {
                Pool.Add(buffer);
                s_pooledBytes += buffer.Length;
            }
        }
    }

    private static unsafe int PaddingOf(byte[] pinned)
    {
        fixed (byte* p = pinned)
        {
            return (int)((AlignmentBytes - ((nint)p % AlignmentBytes)) % AlignmentBytes);
        }
    }
}
