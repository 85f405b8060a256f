using System.Diagnostics;
using Writeboost.Cache.Table;
using Writeboost.Cache.Workers;

namespace Writeboost.Tests.Cache;

/// <summary>The modulator on its own: its ticks driven by hand, over a device that only takes notes.</summary>
[TestClass]
public sealed class ModulatorTests
{
    private static readonly long Second = Stopwatch.Frequency;

    private sealed class NotingDevice : IModulatedDevice
    {
        public long BusyTicks;
        public List<(int Percent, bool Allowed)> Utilisations { get; } = [];
        public int Records;
        public int Syncs;
        public Exception? Failure;
        public IOException? SyncError;

        public bool Stopped => Failure is not null;
        public bool Closing => false;
        public long TakeBackingBusyTicks() => Interlocked.Exchange(ref BusyTicks, 0);
        public void SetBackingUtilisation(int percent, bool allowWriteback) => Utilisations.Add((percent, allowWriteback));
        public void WriteSuperblockRecord() => Records++;
        public void SyncData()
        {
            Syncs++;
            if (SyncError is not null)
            {
                throw SyncError;
            }
        }

        public void Fail(Exception error) => Failure = error;
    }

    private static Tunables With(int writebackThreshold = 0, int recordInterval = 0, int syncInterval = 0) => new(new Dictionary<string, long>
    {
        [TunableSpecs.WritebackThreshold] = writebackThreshold,
        [TunableSpecs.UpdateSbRecordInterval] = recordInterval,
        [TunableSpecs.SyncDataInterval] = syncInterval,
    });

    [TestMethod]
    public void Writeback_runs_in_the_background_only_while_the_backing_store_is_less_busy_than_the_threshold()
    {
        NotingDevice device = new();
        Modulator modulator = new(device, With(writebackThreshold: 50), TimeSpan.FromSeconds(1), startTimestamp: 0);
        device.BusyTicks = Second / 5;
        Assert.IsTrue(modulator.Tick(Second / 2));
        Assert.IsEmpty(device.Utilisations, "nothing before a whole second has passed");
        Assert.IsTrue(modulator.Tick(Second));
        device.BusyTicks = Second * 9 / 10;
        Assert.IsTrue(modulator.Tick(2 * Second));
        CollectionAssert.AreEqual(new[] { (20, true), (90, false) }, device.Utilisations.ToArray());
    }

    [TestMethod]
    public void A_threshold_of_zero_never_allows_background_writeback()
    {
        NotingDevice device = new();
        Modulator modulator = new(device, With(writebackThreshold: 0), TimeSpan.FromSeconds(1), startTimestamp: 0);
        modulator.Tick(Second);
        Assert.AreEqual((0, false), device.Utilisations.Single());
    }

    [TestMethod]
    public void The_record_and_the_data_sync_come_at_their_intervals()
    {
        NotingDevice device = new();
        Modulator modulator = new(device, With(recordInterval: 2, syncInterval: 3), TimeSpan.FromSeconds(1), startTimestamp: 0);
        for (int s = 1; s <= 6; s++)
        {
            modulator.Tick(s * Second);
        }
        Assert.AreEqual(3, device.Records, "seconds 2, 4, 6");
        Assert.AreEqual(2, device.Syncs, "seconds 3, 6");
    }

    [TestMethod]
    public void An_io_error_of_a_chore_fails_the_device_and_ends_the_modulator()
    {
        NotingDevice device = new() { SyncError = new IOException("injected sync error") };
        Modulator modulator = new(device, With(syncInterval: 1), TimeSpan.FromSeconds(1), startTimestamp: 0);
        Assert.IsFalse(modulator.Tick(Second));
        Assert.AreSame(device.SyncError, device.Failure);
    }

    [TestMethod]
    public void Utilisation_is_the_busy_share_of_the_elapsed_time_clamped_to_a_percentage() =>
        CollectionAssert.AreEqual(new[] { 0, 25, 100, 100 },
            new[] { Modulator.UtilisationPercent(0, Second), Modulator.UtilisationPercent(Second / 4, Second),
                Modulator.UtilisationPercent(Second, Second), Modulator.UtilisationPercent(3 * Second, Second) });
}
