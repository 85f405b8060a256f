namespace Writeboost.Devices;

/// <summary>The range and alignment checks every device applies before any I/O (stated once, here).</summary>
public static class DeviceRange
{
    /// <summary>Throws unless [offsetBytes, offsetBytes + lengthBytes) is sector-aligned and inside the device.</summary>
    public static void CheckAligned(IBlockDevice device, long offsetBytes, long lengthBytes, string operation)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (!Inside(device.SizeBytes, offsetBytes, lengthBytes))
        {
            // The name only now: a device may build it per call (writeboost's does), and this runs on every I/O.
            CheckInside(device.Name, device.SizeBytes, offsetBytes, lengthBytes, operation);
        }
        int sector = device.SectorSizeBytes;
        if (offsetBytes % sector != 0 || lengthBytes % sector != 0)
        {
            throw new ArgumentException(
                $"{operation} {device.Name} at offset {offsetBytes} length {lengthBytes}: not aligned to the {sector}-byte sector size");
        }
    }

    /// <summary>Throws unless [offsetBytes, offsetBytes + lengthBytes) lies inside [0, sizeBytes).</summary>
    public static void CheckInside(string name, long sizeBytes, long offsetBytes, long lengthBytes, string operation)
    {
        if (!Inside(sizeBytes, offsetBytes, lengthBytes))
        {
            throw new ArgumentOutOfRangeException(
                nameof(offsetBytes),
                $"{operation} {name} at offset {offsetBytes} length {lengthBytes}: outside the {sizeBytes}-byte device");
        }
    }

    private static bool Inside(long sizeBytes, long offsetBytes, long lengthBytes) =>
        offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes <= sizeBytes && lengthBytes <= sizeBytes - offsetBytes;
}
