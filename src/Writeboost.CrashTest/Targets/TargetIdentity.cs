using System.Reflection;

namespace Writeboost.CrashTest.Targets;

/// <summary>
/// Which design a history, recording or shard result was made on: the target's type, its assembly and version,
/// the arguments it was built with (for one loaded with <c>wb crashtest --target</c>) and where it was loaded
/// from. A replay on another design would judge a different device against the logs: it is refused
/// (<see cref="RequireSameDesign"/>).
/// </summary>
/// <param name="Type">The target's full type name.</param>
/// <param name="Assembly">The simple name of its assembly.</param>
/// <param name="Version">Its assembly's informational version (or assembly version).</param>
/// <param name="Name">The target's <see cref="ICrashTarget.Name"/>, for reports.</param>
/// <param name="Arguments">The constructor arguments it was loaded with, as <c>Name=Value</c> (empty: its defaults, or built in code).</param>
/// <param name="Location">The assembly's file it was loaded from (empty: built into wb, or unknown).</param>
public sealed record TargetIdentity(string Type, string Assembly, string Version, string Name, IReadOnlyList<string> Arguments, string Location)
{
    /// <summary>What every history before targets were recorded was made on: the writeboost device.</summary>
    public static TargetIdentity Writeboost { get; } = Of(typeof(WriteboostTarget), "writeboost", [], "");

    /// <summary>True for the writeboost device's own target (any mode, configuration or seeded bug).</summary>
    public bool IsWriteboost => SameDesign(Writeboost);

    /// <summary>The identity of <paramref name="target"/>: a <see cref="LoadedTarget"/> says its arguments and file.</summary>
    public static TargetIdentity Of(ICrashTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return target is LoadedTarget loaded ? loaded.Identity : Of(target.GetType(), target.Name, [], "");
    }

    internal static TargetIdentity Of(System.Type type, string name, IReadOnlyList<string> arguments, string location)
    {
        Assembly assembly = type.Assembly;
        string version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? assembly.GetName().Version?.ToString() ?? "";
        return new TargetIdentity(type.FullName ?? type.Name, assembly.GetName().Name ?? "", version, name, arguments, location);
    }

    /// <summary>The same design: type and assembly (versions may differ: replaying a failure on the fixed build is the point).</summary>
    public bool SameDesign(TargetIdentity other) =>
        other is not null && Type == other.Type && Assembly == other.Assembly;

    /// <summary>Refuses logs of one design replayed on another.</summary>
    /// <exception cref="TargetMismatchException">they differ.</exception>
    public void RequireSameDesign(TargetIdentity replayedOn, string what)
    {
        ArgumentNullException.ThrowIfNull(replayedOn);
        if (!SameDesign(replayedOn))
        {
            throw new TargetMismatchException($"{what} was recorded on {this}, not on {replayedOn}: replay it on its own design"
                + (IsWriteboost ? " (the writeboost device: no --target)" : $" ({CommandLine})"));
        }
    }

    /// <summary>The <c>--target</c> option (and its arguments, all after one <c>--target-arg</c>) that loads this design again (empty for the writeboost device).</summary>
    public string CommandLine => IsWriteboost ? "" :
        $"--target {(Location.Length > 0 ? Location : Assembly + ".dll")}:{Type}" + (Arguments.Count > 0 ? " --target-arg " + string.Join(' ', Arguments) : "");

    public override string ToString() => IsWriteboost ? "the writeboost device" :
        $"target '{Name}' ({Type} in {Assembly} {Version}{(Arguments.Count > 0 ? ", " + string.Join(", ", Arguments) : "")})";
}

/// <summary>A history, recording or result replayed on a design other than the one that made it.</summary>
public sealed class TargetMismatchException : InvalidOperationException
{
    public TargetMismatchException()
    {
    }

    public TargetMismatchException(string message)
        : base(message)
    {
    }

    public TargetMismatchException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
