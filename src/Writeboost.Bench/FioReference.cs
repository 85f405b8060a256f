using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Writeboost.Bench;

/// <summary>What fio measured, read from its JSON output.</summary>
public sealed record FioResult(string Command, double Iops, double MeanNs, long P50Ns, long P99Ns);

/// <summary>
/// Runs fio as the reference measured in the same run as our own benchmark (the machine is shared and noisy, so
/// only ratios against a same-run reference mean anything).
/// </summary>
public static class FioReference
{
    /// <summary>
    /// fio's libpmem engine: 4 KiB random writes, each a pmem_memcpy with non-temporal stores and a drain
    /// (<c>--direct=1 --sync=1</c>), on <paramref name="file"/> (which fio truncates to <paramref name="sizeBytes"/>).
    /// PMEM_IS_PMEM_FORCE=1 is passed so the engine accepts a file that is not on real pmem.
    /// </summary>
    public static FioResult RunLibPmem(string file, long sizeBytes, int blockBytes, double seconds)
    {
        string[] arguments =
        [
            "--name=wb-pmem-reference", "--ioengine=libpmem", $"--filename={file}", $"--size={sizeBytes}",
            $"--bs={blockBytes}", "--rw=randwrite", "--direct=1", "--sync=1", "--iodepth=1", "--numjobs=1",
            "--time_based", $"--runtime={seconds.ToString(CultureInfo.InvariantCulture)}", "--ramp_time=1",
            "--percentile_list=50:99", "--output-format=json",
        ];
        return Run(arguments, forcePmem: true);
    }

    private static FioResult Run(string[] arguments, bool forcePmem)
    {
        ProcessStartInfo start = new("fio")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        if (forcePmem)
        {
            start.Environment["PMEM_IS_PMEM_FORCE"] = "1";
        }
        string command = (forcePmem ? "PMEM_IS_PMEM_FORCE=1 " : "") + "fio " + string.Join(' ', arguments);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("fio did not start");
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new InvalidOperationException("fio is not installed: run 'apt-get install -y fio'");
        }
        using (process)
        {
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"fio failed (exit {process.ExitCode}): {stderr.Result.Trim()}");
            }
            // fio may print notes before the JSON document.
            int json = output.IndexOf('{', StringComparison.Ordinal);
            using JsonDocument document = JsonDocument.Parse(output[json..]);
            JsonElement write = document.RootElement.GetProperty("jobs")[0].GetProperty("write");
            JsonElement clat = write.GetProperty("clat_ns");
            JsonElement percentiles = clat.GetProperty("percentile");
            return new FioResult(
                command,
                write.GetProperty("iops").GetDouble(),
                clat.GetProperty("mean").GetDouble(),
                (long)percentiles.GetProperty("50.000000").GetDouble(),
                (long)percentiles.GetProperty("99.000000").GetDouble());
        }
    }
}
