using System.Diagnostics;
using Writeboost.Cache.Format;
using Writeboost.Devices;

namespace Writeboost.Cache.Recovery;

/// <summary>
/// The raw CRCs of the data blocks of segments recovery validated, kept for the next recovery over media that can
/// say which pages are unchanged (<see cref="IBlockDevice.VersionOf"/>): a segment whose data pages all give the
/// tokens they gave then is validated from its header block and the kept CRC, without reading a megabyte (order
/// 11) again. Kept by where the data starts on the device. On any other device it keeps nothing. One recovery at a
/// time uses it.
/// </summary>
internal sealed class SegmentChecksumMemo : HeldByOneRecovery
{
    private readonly Dictionary<long, Kept> _byStart = [];

    /// <summary>
    /// The raw CRC (from state 0) of the <paramref name="length"/> data blocks at <paramref name="dataStartBytes"/>, if
    /// every one of their pages gives the token it gave when the CRC was kept.
    /// </summary>
    public bool TryDataCrc(IBlockDevice cache, long dataStartBytes, int length, out uint dataCrc)
    {
        Debug.Assert(IsHeld, "a segment checksum memo used without being taken");
        dataCrc = 0;
        if (!_byStart.TryGetValue(dataStartBytes, out Kept? kept) || kept.Versions.Length != length)
        {
            return false;
        }
        for (int i = 0; i < length; i++)
        {
            if (cache.VersionOf(dataStartBytes + (long)i * Units.BlockBytes) is not { } now || now != kept.Versions[i])
            {
                return false;
            }
        }
        dataCrc = kept.DataCrc;
        return true;
    }

    /// <summary>The data blocks just read at <paramref name="dataStartBytes"/> have raw CRC <paramref name="dataCrc"/>: kept if the device gives every page a token.</summary>
    public void Remember(IBlockDevice cache, long dataStartBytes, int length, uint dataCrc)
    {
        PageVersion[] versions = new PageVersion[length];
        for (int i = 0; i < length; i++)
        {
            if (cache.VersionOf(dataStartBytes + (long)i * Units.BlockBytes) is not { } version)
            {
                _byStart.Remove(dataStartBytes);
                return;
            }
            versions[i] = version;
        }
        _byStart[dataStartBytes] = new Kept(versions, dataCrc);
    }

    private sealed record Kept(PageVersion[] Versions, uint DataCrc);
}
