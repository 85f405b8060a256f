namespace Writeboost.Cache.Format;

/// <summary>The part of a request that falls in one 4 KiB block.</summary>
public readonly record struct BlockPiece(long Block, int FirstSector, int SectorCount, int OffsetInRequestBytes)
{
    public int LengthBytes => SectorCount * Units.SectorBytes;
}

/// <summary>Splits a sector-aligned byte range at 4 KiB block boundaries (dm-writeboost's max_io_len of 8 sectors).</summary>
public readonly struct BlockPieces(long offsetBytes, int lengthBytes)
{
    public Enumerator GetEnumerator() => new(offsetBytes, lengthBytes);

    public struct Enumerator(long offsetBytes, int lengthBytes)
    {
        private int _done;
        private int _next;

        public BlockPiece Current { get; private set; }

        public bool MoveNext()
        {
            _done = _next;
            if (_done >= lengthBytes)
            {
                return false;
            }
            long position = offsetBytes + _done;
            long block = position >> Units.BlockShift;
            int firstSector = (int)((position & (Units.BlockBytes - 1)) >> Units.SectorShift);
            int sectorCount = Math.Min(Units.SectorsPerBlock - firstSector, (lengthBytes - _done) >> Units.SectorShift);
            Current = new BlockPiece(block, firstSector, sectorCount, _done);
            _next = _done + sectorCount * Units.SectorBytes;
            return true;
        }
    }
}
