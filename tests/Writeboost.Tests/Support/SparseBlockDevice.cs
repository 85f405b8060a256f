using Writeboost.Devices;

namespace Writeboost.Tests.Support;

/// <summary>A device of any size (4 GiB and more) that stores only its non-zero 4 KiB blocks: zeros written over a block free it.</summary>
internal sealed class SparseBlockDevice(long sizeBytes) : IBlockDevice
{
    private const int BlockBytes = 4096;
    private readonly Dictionary<long, byte[]> _blocks = [];
    private readonly Lock _lock = new();

    public string Name => "sparse";
    public int SectorSizeBytes => 512;
    public long SizeBytes => sizeBytes;

    public void Read(long offsetBytes, Span<byte> destination)
    {
        DeviceRange.CheckAligned(this, offsetBytes, destination.Length, "read");
        lock (_lock)
        {
            for (int done = 0; done < destination.Length;)
            {
                long at = offsetBytes + done;
                int inBlock = (int)(at % BlockBytes);
                int n = Math.Min(BlockBytes - inBlock, destination.Length - done);
                if (_blocks.TryGetValue(at / BlockBytes, out byte[]? block))
                {
                    block.AsSpan(inBlock, n).CopyTo(destination[done..]);
                }
                else
                {
                    destination.Slice(done, n).Clear();
                }
                done += n;
            }
        }
    }

    public void Write(long offsetBytes, ReadOnlySpan<byte> source, WriteOptions options = WriteOptions.None)
    {
        DeviceRange.CheckAligned(this, offsetBytes, source.Length, "write");
        lock (_lock)
        {
            for (int done = 0; done < source.Length;)
            {
                long at = offsetBytes + done;
                int inBlock = (int)(at % BlockBytes);
                int n = Math.Min(BlockBytes - inBlock, source.Length - done);
                ReadOnlySpan<byte> piece = source.Slice(done, n);
                if (!_blocks.TryGetValue(at / BlockBytes, out byte[]? block))
                {
                    if (!piece.ContainsAnyExcept((byte)0))
                    {
                        done += n;
                        continue;
                    }
                    block = _blocks[at / BlockBytes] = new byte[BlockBytes];
                }
                piece.CopyTo(block.AsSpan(inBlock));
                if (!block.AsSpan().ContainsAnyExcept((byte)0))
                {
                    _blocks.Remove(at / BlockBytes);
                }
                done += n;
            }
        }
    }

    public void Flush()
    {
    }

    public void Dispose()
    {
    }
}
