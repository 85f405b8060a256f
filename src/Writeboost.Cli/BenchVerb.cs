using CommandLine;

namespace Writeboost.Cli;

[Verb("bench", HelpText = "Benchmarks: 'wb bench pmem PATH' (4 KiB write+persist latency of a pmem region).")]
internal sealed class BenchVerb : PmemBenchOptions
{
    [Value(0, MetaName = "kind", Required = true, HelpText = "What to measure: pmem.")]
    public string Kind { get; set; } = "";

    [Value(1, MetaName = "arguments", HelpText = "For pmem: the path of the region.")]
    public IEnumerable<string> Arguments { get; set; } = [];

    internal int Run()
    {
        List<string> arguments = Arguments.ToList();
        return Kind switch
        {
            "pmem" when arguments.Count == 1 => PmemCommands.Bench(this, arguments[0]),
            "pmem" => throw new UsageException("wb bench pmem takes exactly one PATH"),
            _ => throw new UsageException($"wb bench {Kind}: unknown benchmark (available: pmem)"),
        };
    }
}
