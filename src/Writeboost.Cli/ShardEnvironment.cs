using System.Globalization;

namespace Writeboost.Cli;

/// <summary>
/// Which shard of a campaign this process checks: <c>--shard i/n</c> if given (a CI matrix, a hand-made split),
/// else what the engine running it says in the environment:
/// <list type="bullet">
/// <item>Kubernetes Indexed Job: <c>JOB_COMPLETION_INDEX</c> (set by Kubernetes) of <c>WB_SHARD_COUNT</c> (set by
/// the manifest to the Job's <c>spec.completions</c>: Kubernetes does not export the count).</item>
/// <item>Slurm job array: <c>SLURM_ARRAY_TASK_ID</c> of <c>SLURM_ARRAY_TASK_COUNT</c>, numbered from
/// <c>SLURM_ARRAY_TASK_MIN</c> (an array 1-4 is shards 0..3); the array must be contiguous.</item>
/// </list>
/// Otherwise the whole campaign (0/1). A value that does not make sense is a usage error naming the variable.
/// </summary>
internal static class ShardEnvironment
{
    internal static (int Shard, int Shards, string Source) Resolve(string? option, Func<string, string?> environment)
    {
        if (option is not null)
        {
            (int i, int n) = Parse(option, "--shard");
            return (i, n, "--shard");
        }
        string? kubernetes = environment("JOB_COMPLETION_INDEX");
        string? slurm = environment("SLURM_ARRAY_TASK_ID");
        if (kubernetes is not null && slurm is not null)
        {
            throw new UsageException($"both JOB_COMPLETION_INDEX={kubernetes} and SLURM_ARRAY_TASK_ID={slurm} are set: say which shard with --shard i/n");
        }
        if (kubernetes is not null)
        {
            int index = Number("JOB_COMPLETION_INDEX", kubernetes, 0);
            string count = environment("WB_SHARD_COUNT")
                ?? throw new UsageException($"JOB_COMPLETION_INDEX={kubernetes} is set but WB_SHARD_COUNT is not: set it in the Job's pod template to its spec.completions");
            int shards = Number("WB_SHARD_COUNT", count, 1);
            if (index >= shards)
            {
                throw new UsageException($"JOB_COMPLETION_INDEX={index} is not below WB_SHARD_COUNT={shards}: WB_SHARD_COUNT must be the Job's spec.completions");
            }
            return (index, shards, $"JOB_COMPLETION_INDEX={index} of WB_SHARD_COUNT={shards}");
        }
        if (slurm is not null)
        {
            int id = Number("SLURM_ARRAY_TASK_ID", slurm, 0);
            string countText = environment("SLURM_ARRAY_TASK_COUNT")
                ?? throw new UsageException($"SLURM_ARRAY_TASK_ID={slurm} is set but SLURM_ARRAY_TASK_COUNT is not");
            int count = Number("SLURM_ARRAY_TASK_COUNT", countText, 1);
            string? minText = environment("SLURM_ARRAY_TASK_MIN");
            string? maxText = environment("SLURM_ARRAY_TASK_MAX");
            int min = minText is null ? 0 : Number("SLURM_ARRAY_TASK_MIN", minText, 0);
            int max = maxText is null ? min + count - 1 : Number("SLURM_ARRAY_TASK_MAX", maxText, 0);
            if (max - min + 1 != count)
            {
                throw new UsageException($"the Slurm array SLURM_ARRAY_TASK_MIN={min}..SLURM_ARRAY_TASK_MAX={max} has SLURM_ARRAY_TASK_COUNT={count} tasks, not {max - min + 1}: shards need a contiguous array such as --array=0-{count - 1}");
            }
            if (id < min || id > max)
            {
                throw new UsageException($"SLURM_ARRAY_TASK_ID={id} is outside the array {min}-{max}");
            }
            return (id - min, count, $"SLURM_ARRAY_TASK_ID={id} of {min}-{max}");
        }
        return (0, 1, "unsharded");
    }

    internal static (int Shard, int Shards) Parse(string text, string what)
    {
        string[] parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out int i) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out int n) && n > 0 && i >= 0 && i < n)
        {
            return (i, n);
        }
        throw new UsageException($"{what} {text}: expected i/n with 0 <= i < n");
    }

    private static int Number(string variable, string value, int least)
    {
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int number) && number >= least)
        {
            return number;
        }
        throw new UsageException($"{variable}={value}: expected a whole number of at least {least}");
    }
}
