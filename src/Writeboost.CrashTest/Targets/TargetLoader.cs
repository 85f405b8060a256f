using System.Globalization;
using System.Reflection;
using System.Runtime.Loader;

namespace Writeboost.CrashTest.Targets;

/// <summary>
/// A prototyper's design loaded from its assembly (<c>wb crashtest --target PATH.dll[:Type]</c>): the target itself,
/// and the identity its histories carry so that a replay builds the same one again.
/// </summary>
public sealed class LoadedTarget(ICrashTarget inner, TargetIdentity identity) : ICrashTarget
{
    /// <summary>The target the assembly's type built.</summary>
    public ICrashTarget Inner { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    public TargetIdentity Identity { get; } = identity ?? throw new ArgumentNullException(nameof(identity));

    public string Name => Inner.Name;

    public bool OpensConcurrently => Inner.OpensConcurrently;

    public TargetGeometry GeometryFor(Workload workload) => Inner.GeometryFor(workload);

    public ICrashTargetDevice Open(TargetDevices devices, TargetOpen options) => Inner.Open(devices, options);

    public IReadOnlyList<MetadataRegion> MetadataRegions(TargetDevices media) => Inner.MetadataRegions(media);
}

/// <summary>A <c>--target</c> that cannot be loaded: the file, the type, its constructor or an argument, named.</summary>
public sealed class TargetLoadException : InvalidOperationException
{
    public TargetLoadException()
    {
    }

    public TargetLoadException(string message)
        : base(message)
    {
    }

    public TargetLoadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Loads a design under test from a .NET assembly: a public, non-abstract class implementing
/// <see cref="ICrashTarget"/>, built by a public constructor whose parameters are given as <c>Name=Value</c> or
/// have defaults. The assembly gets a load context of its own for its own dependencies, but shares the harness's
/// assemblies (and everything else the host has) so that its <see cref="ICrashTarget"/> is the harness's.
/// </summary>
public static class TargetLoader
{
    /// <summary>Loads <c>PATH.dll[:Type]</c> with <paramref name="arguments"/> (<c>Name=Value</c>, one per constructor parameter to set).</summary>
    /// <exception cref="TargetLoadException">anything that stops it, named.</exception>
    public static LoadedTarget Load(string specification, IReadOnlyList<string> arguments)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(specification);
        ArgumentNullException.ThrowIfNull(arguments);
        (System.Type type, string fullPath) = Resolve(specification);
        ICrashTarget target = Construct(type, arguments);
        return new LoadedTarget(target, TargetIdentity.Of(type, target.Name, [.. arguments], fullPath));
    }

    /// <summary>
    /// The design <c>PATH.dll[:Type]</c> names, without building it: enough to tell whether a history was recorded
    /// on it before its own arguments (a constructor parameter without a default, say) are known.
    /// </summary>
    /// <exception cref="TargetLoadException">the file or the type cannot be found or loaded.</exception>
    public static TargetIdentity Identify(string specification)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(specification);
        (System.Type type, string fullPath) = Resolve(specification);
        return TargetIdentity.Of(type, type.Name, [], fullPath);
    }

    /// <summary>The type <c>PATH.dll[:Type]</c> names, its assembly loaded, and the assembly's full path.</summary>
    private static (System.Type Type, string FullPath) Resolve(string specification)
    {
        (string path, string? typeName) = Split(specification);
        string fullPath = Path.GetFullPath(path);
        if (!File.Exists(fullPath))
        {
            throw new TargetLoadException(Directory.Exists(fullPath) ? $"{path} is a directory: give the design's assembly (PATH.dll)" : $"{path}: no such file");
        }
        return (ChooseType(LoadAssembly(fullPath, path), typeName, path), fullPath);
    }

    /// <summary>PATH.dll[:Type]: the type after the last colon that is not a drive letter's (paths here are Unix ones, but a colon may be in a directory's name: the part after the last one must look like a type).</summary>
    private static (string Path, string? Type) Split(string specification)
    {
        int colon = specification.LastIndexOf(':');
        if (colon > 0 && colon < specification.Length - 1 && !specification[(colon + 1)..].Contains('/'))
        {
            return (specification[..colon], specification[(colon + 1)..]);
        }
        return (specification.TrimEnd(':'), null);
    }

    /// <summary>Each file is loaded once per process: a design loaded twice is the same types.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Assembly> Loaded = new(StringComparer.Ordinal);

    private static Assembly LoadAssembly(string fullPath, string shown)
    {
        try
        {
            return Loaded.GetOrAdd(fullPath, path =>
                // A host that already has the file (a test project referencing the design) keeps its own copy.
                AssemblyLoadContext.Default.Assemblies.FirstOrDefault(a => !a.IsDynamic && a.Location == path)
                ?? new DesignLoadContext(path).LoadFromAssemblyPath(path));
        }
        catch (BadImageFormatException)
        {
            throw new TargetLoadException($"{shown} is not a .NET assembly: give the design's built .dll (dotnet build puts it in bin/)");
        }
        catch (FileLoadException error)
        {
            throw new TargetLoadException($"{shown}: cannot be loaded: {error.Message}");
        }
    }

    private static System.Type ChooseType(Assembly assembly, string? typeName, string shown)
    {
        System.Type[] exported;
        try
        {
            exported = assembly.GetExportedTypes();
        }
        catch (Exception error) when (error is ReflectionTypeLoadException or FileNotFoundException or FileLoadException or TypeLoadException)
        {
            throw new TargetLoadException($"{shown}: its types cannot be loaded ({FirstLine(error)}); was it built against this wb's Writeboost.CrashTest {typeof(ICrashTarget).Assembly.GetName().Version}?");
        }
        System.Type[] targets = [.. exported.Where(t => t.IsClass && !t.IsAbstract && typeof(ICrashTarget).IsAssignableFrom(t)).OrderBy(t => t.FullName, StringComparer.Ordinal)];
        string available = targets.Length == 0 ? "none" : string.Join(", ", targets.Select(t => t.FullName));
        if (targets.Length == 0)
        {
            bool ownCopy = exported.Any(t => t.GetInterfaces().Any(i => i.FullName == typeof(ICrashTarget).FullName));
            throw new TargetLoadException(ownCopy
                ? $"{shown}: its targets implement another copy of ICrashTarget than this wb's: build it against the Writeboost.CrashTest this wb ships"
                : $"{shown}: no public class implements Writeboost.CrashTest.Targets.ICrashTarget");
        }
        if (typeName is null)
        {
            return targets.Length == 1 ? targets[0]
                : throw new TargetLoadException($"{shown} holds {targets.Length} targets ({available}): name one as {shown}:Type");
        }
        System.Type[] named = [.. targets.Where(t => t.FullName == typeName || t.Name == typeName)];
        return named.Length switch
        {
            1 => named[0],
            0 => throw new TargetLoadException($"{shown}: no target named {typeName} (its targets: {available})"),
            _ => throw new TargetLoadException($"{shown}: {typeName} names several targets ({string.Join(", ", named.Select(t => t.FullName))}): give the full name"),
        };
    }

    private static ICrashTarget Construct(System.Type type, IReadOnlyList<string> arguments)
    {
        Dictionary<string, string> given = new(StringComparer.OrdinalIgnoreCase);
        foreach (string argument in arguments)
        {
            int equals = argument.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new TargetLoadException($"--target-arg {argument}: expected Name=Value (a constructor parameter of {type.Name})");
            }
            if (!given.TryAdd(argument[..equals].Trim(), argument[(equals + 1)..]))
            {
                throw new TargetLoadException($"--target-arg {argument}: {argument[..equals]} is given twice");
            }
        }
        ConstructorInfo[] constructors = type.GetConstructors();
        string[] parameters = [.. constructors.SelectMany(c => c.GetParameters()).Select(p => p.Name ?? "").Distinct(StringComparer.OrdinalIgnoreCase)];
        foreach (string name in given.Keys.Where(name => !parameters.Contains(name, StringComparer.OrdinalIgnoreCase)))
        {
            throw new TargetLoadException($"--target-arg {name}: {type.Name}'s constructors have no parameter {name} (they have: {(parameters.Length == 0 ? "none" : string.Join(", ", parameters))})");
        }
        ConstructorInfo? chosen = constructors
            .Where(c => given.Keys.All(name => c.GetParameters().Any(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)))
                && c.GetParameters().All(p => p.HasDefaultValue || given.ContainsKey(p.Name ?? "")))
            .OrderBy(c => c.GetParameters().Length)
            .FirstOrDefault();
        if (chosen is null)
        {
            string signatures = constructors.Length == 0 ? "no public constructor"
                : string.Join("; ", constructors.Select(c => $"{type.Name}({string.Join(", ", c.GetParameters().Select(p => $"{p.ParameterType.Name} {p.Name}{(p.HasDefaultValue ? " = " + (p.DefaultValue ?? "null") : "")}"))})"));
            throw new TargetLoadException($"{type.FullName} cannot be built from {(given.Count == 0 ? "no arguments" : string.Join(", ", arguments))}: give each parameter without a default as --target-arg Name=Value ({signatures})");
        }
        object?[] values = [.. chosen.GetParameters().Select(p => given.TryGetValue(p.Name ?? "", out string? text) ? Convert(text, p) : p.DefaultValue)];
        try
        {
            return (ICrashTarget)chosen.Invoke(values);
        }
        catch (TargetInvocationException error) when (error.InnerException is { } inner)
        {
            throw new TargetLoadException($"{type.FullName}'s constructor failed: {FirstLine(inner)}", inner);
        }
    }

    private static object? Convert(string text, ParameterInfo parameter)
    {
        System.Type type = Nullable.GetUnderlyingType(parameter.ParameterType) ?? parameter.ParameterType;
        try
        {
            if (type == typeof(string))
            {
                return text;
            }
            if (type.IsEnum)
            {
                return Enum.Parse(type, text, ignoreCase: true);
            }
            if (type == typeof(bool))
            {
                return bool.Parse(text);
            }
            if (type.IsPrimitive || type == typeof(decimal))
            {
                return System.Convert.ChangeType(text, type, CultureInfo.InvariantCulture);
            }
        }
        catch (Exception error) when (error is FormatException or OverflowException or ArgumentException)
        {
            string expected = type.IsEnum ? "one of " + string.Join(", ", Enum.GetNames(type)) : $"a {type.Name}";
            throw new TargetLoadException($"--target-arg {parameter.Name}={text}: expected {expected}");
        }
        throw new TargetLoadException($"--target-arg {parameter.Name}: a {type.Name} cannot be given on the command line (strings, numbers, booleans and enums can)");
    }

    private static string FirstLine(Exception error) => error.Message.Split('\n')[0].Trim();

    /// <summary>The design's own dependencies from its directory; the harness's (and the host's) shared with wb.</summary>
    private sealed class DesignLoadContext(string path) : AssemblyLoadContext("target " + Path.GetFileName(path))
    {
        private readonly AssemblyDependencyResolver _resolver = new(path);

        protected override Assembly? Load(AssemblyName assemblyName)
        {
            try
            {
                // The host's copy first: ICrashTarget, IBlockDevice and PmemRegion must be the harness's own types.
                return Default.LoadFromAssemblyName(assemblyName);
            }
            catch (FileNotFoundException)
            {
                return _resolver.ResolveAssemblyToPath(assemblyName) is { } found ? LoadFromAssemblyPath(found) : null;
            }
        }

        protected override IntPtr LoadUnmanagedDll(string unmanagedDllName) =>
            _resolver.ResolveUnmanagedDllToPath(unmanagedDllName) is { } found ? LoadUnmanagedDllFromPath(found) : IntPtr.Zero;
    }
}
