using System.Diagnostics;

namespace Writeboost.Tests.Support;

/// <summary>losetup, for tests that want a real block device node.</summary>
internal static class LoopDevice
{
    internal static string? TryAttach(string file, out string why)
    {
        (int code, string output, string error) = Run("losetup", $"-f --show {file}");
        if (code != 0 || !output.StartsWith("/dev/loop", StringComparison.Ordinal))
        {
            why = code == -1 ? "losetup is not installed" : $"losetup: {error.Trim()}";
            return null;
        }
        why = "";
        return output.Trim();
    }

    internal static void Detach(string device) => Run("losetup", $"-d {device}");

    private static (int Code, string Output, string Error) Run(string program, string arguments)
    {
        try
        {
            using Process process = Process.Start(new ProcessStartInfo(program, arguments)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            string output = process.StandardOutput.ReadToEnd();
            string error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, output, error);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return (-1, "", "");
        }
    }
}
