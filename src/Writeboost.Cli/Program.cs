using CommandLine;
using Writeboost.Cli;
using Writeboost.Native;

// Exit codes: 0 success, 1 a failure of the work itself (I/O error, a tool that failed), 2 a usage error
// (bad arguments, a missing or undersized file). Errors are one line on stderr, never a stack trace.
Parser parser = new(settings =>
{
    settings.HelpWriter = Console.Error;
    settings.CaseInsensitiveEnumValues = true;
});
ParserResult<object> parsed = parser.ParseArguments<CreateVerb, StatusVerb, MessageVerb, ServeVerb, BenchVerb, CrashTestVerb, FaultsVerb, CorruptVerb, DumpVerb, CheckVerb, PmemVerb>(args);
if (parsed.Tag == ParserResultType.NotParsed)
{
    bool askedForHelp = parsed.Errors.All(e => e.Tag is ErrorType.HelpRequestedError or ErrorType.HelpVerbRequestedError or ErrorType.VersionRequestedError);
    return askedForHelp ? 0 : 2;
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
catch (Exception error) when (error is NativeIOException or IOException or InvalidDataException or DllNotFoundException or InvalidOperationException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"wb: {error.Message}");
    return 1;
}
