using Spectre.Console;

namespace Writeboost.Cli;

/// <summary>
/// A one-line progress bar on stderr for work longer than a moment; silent when stderr is not a terminal (CI,
/// pipes) or when JSON is asked for, so scripts see only their output.
/// </summary>
/// <remarks>
/// Spectre.Console draws it: the bar, the percentage and the time left are its columns, it refreshes on its own
/// thread at a steady rate, and it clears the line when done. The verbs only report a fraction; the live display
/// starts at the first report (work that ends at once draws nothing) and <see cref="Done"/> ends it.
/// </remarks>
internal sealed class ProgressBar(string label, bool enabled)
{
    private readonly Lock _gate = new();
    private ProgressTask? _task;
    private TaskCompletionSource? _finish;
    private Task? _display;

    public static ProgressBar For(string label, bool json) => new(label, !json && !Console.IsErrorRedirected);

    /// <summary>Moves the bar to <paramref name="fraction"/> (0..1); <paramref name="detail"/> follows the label.</summary>
    public void Report(double fraction, string detail = "")
    {
        if (!enabled)
        {
            return;
        }
        ProgressTask task = _task ?? Start();
        string description = Markup.Escape(detail.Length == 0 ? label : $"{label} {detail}");
        if (task.Description != description)
        {
            task.Description = description;
        }
        task.Value = Math.Clamp(fraction, 0, 1) * task.MaxValue;
    }

    /// <summary>Ends the bar and clears its line (nothing to do when it never drew).</summary>
    public void Done()
    {
        Task? display;
        lock (_gate)
        {
            display = _display;
            _finish?.TrySetResult();
            _task = null;
            _display = null;
            _finish = null;
        }
        display?.GetAwaiter().GetResult();
    }

    private ProgressTask Start()
    {
        lock (_gate)
        {
            if (_task is not null)
            {
                return _task;
            }
            // Interactive: stderr is a terminal (For checked), even when stdout goes to a file; Spectre would otherwise
            // judge by stdout and fall back to printing a line per change.
            IAnsiConsole stderr = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(Console.Error),
                Interactive = InteractionSupport.Yes,
            });
            TaskCompletionSource started = new(TaskCreationOptions.RunContinuationsAsynchronously);
            TaskCompletionSource finish = new(TaskCreationOptions.RunContinuationsAsynchronously);
            ProgressTask? task = null;
            Progress progress = stderr.Progress()
                .AutoClear(true)
                .HideCompleted(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 30 },
                    new PercentageColumn(), new RemainingTimeColumn());
            // The live display runs on its own task until Done: the verb's work goes on on the caller's thread.
            _display = Task.Run(() => progress.StartAsync(async context =>
            {
                task = context.AddTask(Markup.Escape(label), autoStart: true, maxValue: 1000);
                started.SetResult();
                await finish.Task.ConfigureAwait(false);
                task.Value = task.MaxValue;
            }));
            _finish = finish;
            // A verb that fails between a report and Done still gets its line cleared and the cursor back.
            AppDomain.CurrentDomain.ProcessExit += (_, _) => Done();
            // If the display fails to start (a console it cannot drive), the exception surfaces here, not later.
            Task.WaitAny(started.Task, _display);
            _display.Exception?.Flatten().Handle(_ => false);
            _task = task ?? throw new InvalidOperationException("the progress display did not start");
            return _task;
        }
    }
}
