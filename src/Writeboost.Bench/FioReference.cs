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
        string command = (forcePmem ? "PMEM_IS_PMEM_FORCE=1 " : "") + "fio " + string.Join(' ', arguments);
        string output = ExternalTool.Run("fio", arguments, "apt-get install -y fio",
            forcePmem ? new Dictionary<string, string> { ["PMEM_IS_PMEM_FORCE"] = "1" } : null);
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
