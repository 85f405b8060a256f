using System.Buffers.Binary;
using System.IO.Compression;

namespace Writeboost.Tests.Support;

/// <summary>
/// The pixels of a PNG as 8-bit RGB(A), non-interlaced — what rsvg-convert writes — decoded here (inflate,
/// then each row's filter undone), so a test can say what a rendered plot shows.
/// </summary>
internal sealed class PngImage
{
    private static readonly byte[] Signature = [137, 80, 78, 71, 13, 10, 26, 10];

    public int Width { get; }
    public int Height { get; }
    private readonly byte[] _pixels;
    private readonly int _channels;

    private PngImage(int width, int height, int channels, byte[] pixels)
    {
        Width = width;
        Height = height;
        _channels = channels;
        _pixels = pixels;
    }

    /// <summary>The colour at (x, y) as 0xRRGGBB (alpha ignored).</summary>
    public int Rgb(int x, int y)
    {
        int at = (y * Width + x) * _channels;
        return (_pixels[at] << 16) | (_pixels[at + 1] << 8) | _pixels[at + 2];
    }

    public static PngImage Load(string path)
    {
        byte[] file = File.ReadAllBytes(path);
        if (!file.AsSpan(0, Signature.Length).SequenceEqual(Signature))
        {
            throw new InvalidDataException($"{path} is not a PNG");
        }
        int width = 0, height = 0, channels = 0;
        using MemoryStream compressed = new();
        for (int at = Signature.Length; at + 8 <= file.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(at));
            string type = System.Text.Encoding.ASCII.GetString(file, at + 4, 4);
            ReadOnlySpan<byte> data = file.AsSpan(at + 8, length);
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(data);
                height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                (byte depth, byte colour, byte interlace) = (data[8], data[9], data[12]);
                channels = colour switch { 6 => 4, 2 => 3, _ => 0 };
                if (depth != 8 || channels == 0 || interlace != 0)
                {
                    throw new InvalidDataException($"{path}: only 8-bit RGB or RGBA, non-interlaced (depth {depth}, colour type {colour}, interlace {interlace})");
                }
            }
            else if (type == "IDAT")
            {
                compressed.Write(data);
            }
            at += 12 + length;
        }
        compressed.Position = 0;
        using ZLibStream inflate = new(compressed, CompressionMode.Decompress);
        int stride = width * channels;
        byte[] pixels = new byte[stride * height];
        byte[] row = new byte[stride + 1];
        for (int y = 0; y < height; y++)
        {
            inflate.ReadExactly(row);
            Span<byte> current = pixels.AsSpan(y * stride, stride);
            ReadOnlySpan<byte> above = y > 0 ? pixels.AsSpan((y - 1) * stride, stride) : new byte[stride];
            for (int i = 0; i < stride; i++)
            {
                int a = i >= channels ? current[i - channels] : 0;
                int b = above[i];
                int c = i >= channels ? above[i - channels] : 0;
                int predicted = row[0] switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new InvalidDataException($"{path}: row {y} has filter type {row[0]}"),
                };
                current[i] = (byte)(row[i + 1] + predicted);
            }
        }
        return new PngImage(width, height, channels, pixels);
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
