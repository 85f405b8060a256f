using System.Runtime.InteropServices;

namespace Writeboost.Cli;

/// <summary>
/// Ctrl-C (SIGINT) or SIGTERM during a long run — a campaign, a sweep, a benchmark — ends it early instead of
/// killing the process: the run stops at its next state, fault or operation, prints what it checked or measured
/// until then (text and JSON, with any violation found), says it was interrupted, and exits 128 + the signal
/// (130, 143), as a shell reports a process a signal ended. A second signal kills at once.
/// </summary>
internal sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly PosixSignalRegistration _interrupt;
    private readonly PosixSignalRegistration _terminate;
    private int _signal;

    private Interruption()
    {
        _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle);
        _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle);
    }

    /// <summary>Catches SIGINT and SIGTERM until disposed.</summary>
    internal static Interruption Watch() => new();

    internal CancellationToken Token => _source.Token;

    internal bool Requested => _source.IsCancellationRequested;

    /// <summary>128 + the signal's number: 130 for SIGINT, 143 for SIGTERM.</summary>
    internal int ExitCode => 128 + Volatile.Read(ref _signal);

    /// <summary>The line that says the figures are partial.</summary>
    internal string Line(string what) =>
        $"interrupted by {(Volatile.Read(ref _signal) == 2 ? "SIGINT" : "SIGTERM")}: {what} (partial figures)";

    private void Handle(PosixSignalContext context)
    {
        if (_source.IsCancellationRequested)
        {
            return; // the second signal: the default action, which ends the process
        }
        context.Cancel = true;
        Volatile.Write(ref _signal, context.Signal == PosixSignal.SIGINT ? 2 : 15);
        _source.Cancel();
    }

    public void Dispose()
    {
        _interrupt.Dispose();
        _terminate.Dispose();
        _source.Dispose();
    }
}
