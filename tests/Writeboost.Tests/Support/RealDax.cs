namespace Writeboost.Tests.Support;

/// <summary>Finds real DAX hardware to test on: WB_TEST_DAX, a /dev/dax* device, or a file on a -o dax mount.</summary>
internal static class RealDax
{
    internal static string? Find(out string why)
    {
        string? configured = Environment.GetEnvironmentVariable("WB_TEST_DAX");
        if (!string.IsNullOrEmpty(configured))
        {
            why = "";
            return configured;
        }
        string[] devices = Directory.Exists("/dev") ? Directory.GetFiles("/dev", "dax*") : [];
        if (devices.Length > 0)
        {
            why = "";
            return devices[0];
        }
        why = "no /dev/dax* device, no filesystem mounted with -o dax, WB_TEST_DAX not set";
        return null;
    }
}
