using Writeboost.Devices;

namespace Writeboost.Tests.Support;

/// <summary>A decorator that logs every read (offset and length in bytes).</summary>
internal sealed class ReadLoggingBlockDevice(IBlockDevice inner) : IBlockDevice
{
    private readonly List<(long OffsetBytes, int LengthBytes)> _reads = [];

    public string Name => inner.Name;
    public int SectorSizeBytes => inner.SectorSizeBytes;
    public long SizeBytes => inner.SizeBytes;

    /// <summary>The reads since the last <see cref="ClearLog"/>, in order.</summary>
    public IReadOnlyList<(long OffsetBytes, int LengthBytes)> Reads
    {
        get
        {
            lock (_reads)
            {
                return [.. _reads];
            }
        }
    }

    public void ClearLog()
    {
        lock (_reads)
        {
            _reads.Clear();
        }
    }

    public void Read(long offsetBytes, Span<byte> destination)
    {
        lock (_reads)
        {
            _reads.Add((offsetBytes, destination.Length));
        }
        inner.Read(offsetBytes, destination);
    }

    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None) => inner.Write(offsetBytes, source, options);

    public void Flush() => inner.Flush();

    public void Dispose() => inner.Dispose();
}
