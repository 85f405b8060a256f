using System.Net.Sockets;
using Writeboost.Devices;
using Writeboost.Nbd;
using Writeboost.Tests.Support;

namespace Writeboost.Tests.Nbd;

/// <summary>
/// The server's lifecycle against a slow device (#26): every command held in the device while its client leaves,
/// while the server is told to stop, and while other clients connect. The process survives (no exception escapes
/// any thread), other clients keep their disk, and a stop waits for what is in flight, saying so, then ends.
/// The server has no timeout of its own any more, so a hold of any length is longer than all of them.
/// </summary>
[TestClass]
public sealed class ServerLifecycleTests
{
    private const int BlockBytes = 4096;

    public static IEnumerable<object[]> EveryCommandAndEvent() =>
        from command in new[] { NbdCommand.Write, NbdCommand.Read, NbdCommand.Flush, NbdCommand.WriteZeroes, NbdCommand.Trim }
        from fua in new[] { false, true }
        where !(fua && command is NbdCommand.Read or NbdCommand.Flush) && !(command == NbdCommand.Trim && !fua) // a plain TRIM touches no device
        from lifecycle in new[] { "client leaves", "server stops", "another client connects" }
        select new object[] { command, fua, lifecycle };

    [TestMethod]
    [DynamicData(nameof(EveryCommandAndEvent))]
    public void A_request_held_by_a_slow_device_costs_nothing_when(NbdCommand command, bool fua, string lifecycle)
    {
        List<Exception> escaped = [];
        UnhandledExceptionEventHandler watch = (_, e) => { lock (escaped) { escaped.Add((Exception)e.ExceptionObject); } };
        AppDomain.CurrentDomain.UnhandledException += watch;
        using TempDirectory dir = new();
        using GatedBlockDevice device = new(new MemoryBlockDevice(16 << 20, name: "slow")) { GateFlushes = true, GateReads = true };
        NbdServer server = new(device);
        string socket = dir.File("nbd.sock");
        server.Start(new UnixDomainSocketEndPoint(socket));
        List<string> reports = [];
        try
        {
            using NbdClient other = NbdClient.Connect(socket);
            other.Write(100 * BlockBytes, Filled(0x77), fua: true);

            device.Close();
            NbdClient held = NbdClient.Connect(socket);
            byte[] readInto = new byte[BlockBytes];
            // Two requests at once, so the first goes to the server's pool as under a queue depth.
            for (int i = 0; i < 2; i++)
            {
                held.Send(command, i * BlockBytes, BlockBytes, fua, command == NbdCommand.Write ? Filled(0x31) : default, command == NbdCommand.Read ? readInto : default);
            }
            held.FlushRequests();
            device.WaitForWaiting(1);
            Task? stop = null;
            switch (lifecycle)
            {
                case "client leaves":
                    held.Dispose();
                    break;
                case "server stops":
                    // A thread of its own: the held requests occupy pool threads, and a task could wait for one.
                    stop = StartThread(() => server.Stop(message => { lock (reports) { reports.Add(message); } }, TimeSpan.FromMilliseconds(100)));
                    break;
                default:
                    using (NbdClient newcomer = NbdClient.Connect(socket))
                    {
                        Assert.IsGreaterThan(0, newcomer.SizeBytes, "a new client is let in while a request is held");
                    }
                    break;
            }
            Thread.Sleep(300);
            Assert.IsTrue(stop is null || !stop.IsCompleted, "a stop waits for the held requests");
            device.Open();
            if (lifecycle != "client leaves")
            {
                Assert.AreEqual(0u, held.Receive().Error, "the held request completed and was answered");
                // The second: done too, or — when the server stopped before starting it — answered ESHUTDOWN (108).
                uint second = held.Receive().Error;
                Assert.IsTrue(second == 0 || (lifecycle == "server stops" && second == 108), $"the second request: error {second}");
                held.Dispose();
            }
            if (stop is not null)
            {
                Assert.IsTrue(stop.Wait(TimeSpan.FromSeconds(20)), "the stop ends once the requests are done");
                Assert.IsTrue(reports.Count > 0 && reports.All(r => r.Contains("still waiting for", StringComparison.Ordinal)), $"it said what it waited for: [{string.Join(" | ", reports)}]");
            }
            else
            {
                byte[] back = new byte[BlockBytes];
                using NbdClient after = NbdClient.Connect(socket);
                after.Read(100 * BlockBytes, back);
                Assert.IsTrue(back.All(b => b == 0x77), "the other clients keep their disk");
            }
        }
        finally
        {
            device.Open();
            server.Dispose();
            Thread.Sleep(50); // a late exception on a pool thread has time to be seen
            AppDomain.CurrentDomain.UnhandledException -= watch;
        }
        Assert.AreEqual(0, escaped.Count, string.Join("\n", escaped));
    }

    private static Task StartThread(Action action)
    {
        TaskCompletionSource done = new();
        new Thread(() =>
        {
            try
            {
                action();
                done.SetResult();
            }
            catch (Exception error)
            {
                done.SetException(error);
            }
        }) { IsBackground = true }.Start();
        return done.Task;
    }

    private static byte[] Filled(byte value) => Enumerable.Repeat(value, BlockBytes).ToArray();
}
