namespace Writeboost.Cache.Format;

/// <summary>
/// The units of the format and the conversions between them, in one place. A sector is 512 bytes (the
/// kernel's unit, whatever the device's own sector size), a block is 4 KiB = 8 sectors: the unit of caching.
/// </summary>
public static class Units
{
    public const int SectorBytes = 512;
    public const int SectorShift = 9;
    public const int BlockBytes = 4096;
    public const int BlockShift = 12;
    public const int SectorsPerBlock = BlockBytes / SectorBytes;
    /// <summary>Dirty/valid bits of a block: bit i = sector i of the block. All eight set = the whole block.</summary>
    public const byte FullBlockBits = 0xFF;

    public static long SectorsToBytes(long sectors) => sectors << SectorShift;
    public static long BytesToSectors(long bytes) => bytes >> SectorShift;
    public static long BlocksToBytes(long blocks) => blocks << BlockShift;
    public static long BytesToBlocks(long bytes) => bytes >> BlockShift;

    /// <summary>The bits of sectors [firstSector, firstSector + sectorCount) of a block.</summary>
    public static byte SectorMask(int firstSector, int sectorCount) =>
        sectorCount == SectorsPerBlock ? FullBlockBits : (byte)(((1 << sectorCount) - 1) << firstSector);

    public static bool HasSector(byte bits, int sector) => (bits & (1 << sector)) != 0;

    /// <summary>The runs of adjacent sectors set in <paramref name="bits"/>, lowest first: one write each.</summary>
    public static IEnumerable<(int FirstSector, int SectorCount)> SectorRuns(byte bits)
    {
        int sector = 0;
        while (sector < SectorsPerBlock)
        {
            if (!HasSector(bits, sector))
            {
                sector++;
                continue;
            }
            int run = 1;
            while (sector + run < SectorsPerBlock && HasSector(bits, sector + run))
            {
                run++;
            }
            yield return (sector, run);
            sector += run;
        }
    }
}
