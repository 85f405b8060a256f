namespace Writeboost.CrashTest.States;

/// <summary>
/// The seed of one crash state, from (campaign seed, crash point, variant). Deterministic in every process —
/// unlike <see cref="HashCode"/>, which .NET seeds randomly per process — so a saved log replays the same state.
/// </summary>
internal static class StateSeed
{
    public static int Of(int seed, int point, int variant)
    {
        ulong x = Mix((ulong)(uint)seed);
        x = Mix(x ^ (uint)point);
        x = Mix(x ^ (uint)variant);
        return (int)(x ^ (x >> 32));
    }

    /// <summary>SplitMix64's finaliser.</summary>
    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
