using CommandLine;
using CommandLine.Text;
using Writeboost.Cli;
using Writeboost.Native;

// Exit codes: 0 success, 1 a failure of the work itself (I/O error, a tool that failed), 2 a usage error
// (bad arguments, a missing or undersized file). Errors are one line on stderr, never a stack trace.
// An interrupted long run (SIGINT, SIGTERM) prints what it did so far and exits 130 or 143 (Interruption).
AppDomain.CurrentDomain.UnhandledException += (_, e) => Fatal(e.ExceptionObject as Exception);
Parser parser = new(settings =>
{
    settings.HelpWriter = null; // help (asked for) goes to stdout; a parse error is one line on stderr (below)
    settings.CaseInsensitiveEnumValues = true;
});
ParserResult<object> Parse(string[] words) =>
    parser.ParseArguments<CreateVerb, StatusVerb, MessageVerb, ServeVerb, BenchVerb, CrashTestVerb, FaultsVerb, CorruptVerb, MishapsVerb, DumpVerb, CheckVerb, PmemVerb>(words);
ParserResult<object> parsed = Parse(args);
if (parsed.Tag == ParserResultType.NotParsed)
{
    return Usage.Report(parsed, Parse);
}
try
{
    return parsed.Value switch
    {
        CreateVerb create => create.Run(),
        StatusVerb status => status.Run(),
        MessageVerb message => message.Run(),
        ServeVerb serve => serve.Run(),
        BenchVerb bench => bench.Run(),
        CrashTestVerb crashtest => crashtest.Run(),
        FaultsVerb faults => faults.Run(),
        CorruptVerb corrupt => corrupt.Run(),
        MishapsVerb mishaps => mishaps.Run(),
        DumpVerb dump => dump.Run(),
        CheckVerb check => check.Run(),
        PmemVerb pmem => pmem.Run(),
        _ => 2,
    };
}
catch (Exception error) when (error is UsageException or ArgumentException or FileNotFoundException or DirectoryNotFoundException)
{
    // ArgumentException appends " (Parameter 'x')" to every message: that is for developers, not operators.
    string message = error is ArgumentException { ParamName: { } name }
        ? error.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal)
        : error.Message;
    Console.Error.WriteLine($"wb: {message}");
    return 2;
}
catch (Exception error) when (error is NativeIOException or IOException or InvalidDataException or DllNotFoundException or InvalidOperationException or UnauthorizedAccessException or System.Net.Sockets.SocketException or TimeoutException)
{
    Console.Error.WriteLine($"wb: {error.Message}");
    return 1;
}
catch (Exception error)
{
    Fatal(error);
    return 1;
}

// A bug of ours (an exception nothing expected, on any thread): one line, not a stack trace on the operator's
// terminal; the trace goes to a file the line names, for the bug report.
static void Fatal(Exception? error)
{
    string trace = Path.Combine(Path.GetTempPath(), $"wb-error-{Environment.ProcessId}.txt");
    try
    {
        File.WriteAllText(trace, error?.ToString() ?? "unknown error");
    }
    catch (IOException)
    {
        trace = "(could not be saved)";
    }
    Console.Error.WriteLine($"wb: internal error: {error?.GetType().Name}: {error?.Message} (a bug in wb; its stack trace is in {trace})");
    Console.Error.Flush();
    Environment.Exit(1);
}
