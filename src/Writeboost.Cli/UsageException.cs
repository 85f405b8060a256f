namespace Writeboost.Cli;

/// <summary>The user asked for something that cannot be: exit code 2, one line, no stack trace.</summary>
internal sealed class UsageException(string message) : Exception(message);
