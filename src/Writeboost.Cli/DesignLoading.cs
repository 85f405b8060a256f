using Writeboost.CrashTest.Targets;

namespace Writeboost.Cli;

/// <summary>How every verb that takes <c>--target PATH.dll[:Type]</c> and <c>--target-arg</c> loads the design, and words its errors.</summary>
internal static class DesignLoading
{
    /// <summary>A usage error for <c>--target-arg</c> given without <c>--target</c>.</summary>
    public static UsageException ArgumentsWithoutTarget() => new("--target-arg needs --target PATH.dll[:Type]");

    /// <summary>Loads the design; a file, type or argument the loader refuses is a usage error (exit 2).</summary>
    public static LoadedTarget Load(string target, IReadOnlyList<string> arguments)
    {
        try
        {
            return TargetLoader.Load(target, arguments);
        }
        catch (TargetLoadException error)
        {
            // The loader's messages start with the file they are about, or with the --target-arg at fault.
            throw new UsageException(error.Message.StartsWith("--", StringComparison.Ordinal) ? error.Message : $"--target {error.Message}");
        }
    }
}
