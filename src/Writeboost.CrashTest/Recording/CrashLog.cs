namespace Writeboost.CrashTest.Recording;

/// <summary>What happened, in the order it happened (dm-log-writes is the model: writes with their data and flags, flushes, marks).</summary>
public enum EventKind : byte
{
    /// <summary>A block write was issued (its data may reach the media from now on).</summary>
    Write,
    /// <summary>The write <see cref="CrashEvent.Ref"/> completed.</summary>
    WriteDone,
    /// <summary>A flush was issued: every write completed before this is durable once it ends.</summary>
    FlushBegin,
    FlushEnd,
    /// <summary>Stores to pmem (the bytes are split into 64-byte lines when crash states are made).</summary>
    PmemStore,
    /// <summary>Cache-line write-back of a range (clwb): durable only after the next fence.</summary>
    PmemFlush,
    /// <summary>The fence (sfence / pmem_drain).</summary>
    PmemFence,
    /// <summary>The writeboost device's user issued a write (MARK).</summary>
    UserWrite,
    /// <summary>The device acknowledged the user write <see cref="CrashEvent.Ref"/> (MARK).</summary>
    UserWriteAck,
    UserFlush,
    UserFlushAck,
    /// <summary>The user issued a read of <see cref="CrashEvent.OffsetBytes"/>, <see cref="CrashEvent.LengthBytes"/> (MARK).</summary>
    UserRead,
    /// <summary>The read <see cref="CrashEvent.Ref"/> completed; <see cref="CrashEvent.Data"/> is what it returned (MARK).</summary>
    UserReadDone,
}

/// <summary>Which device an event is on.</summary>
public enum DeviceId : byte
{
    Backing = 0,
    Cache = 1,
    Pmem = 2,
    User = 3,
}

/// <summary>One entry of the log. Data is a private copy.</summary>
/// <param name="Ref">For a completion or acknowledgement: the event it completes. For a pmem write-back or fence: the thread that issued it (-1 in logs from before threads were recorded: any thread's).</param>
public readonly record struct CrashEvent(EventKind Kind, DeviceId Device, long OffsetBytes, long LengthBytes, byte[]? Data, bool Fua, int Ref);

/// <summary>
/// The ordered log of a workload run: every block write (with its data and FUA flag), flush, pmem store, line
/// write-back and fence on the devices under the writeboost device, and the user's writes, flushes and their
/// acknowledgements. Thread-safe: the order of the log is the order in which the events happened.
/// Saved and loaded in a small binary format, so a failing state can be replayed elsewhere.
/// </summary>
public sealed class CrashLog
{
    private const uint FileMagic = 0x4C43424Bu; // "KBCL"
    private readonly List<CrashEvent> _events = [];
    private readonly Lock _lock = new();

    public IReadOnlyList<CrashEvent> Events => _events;
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _events.Count;
            }
        }
    }

    public int Append(CrashEvent e)
    {
        lock (_lock)
        {
            _events.Add(e);
            return _events.Count - 1;
        }
    }

    public void Save(Stream stream)
    {
        using BinaryWriter writer = new(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        writer.Write(FileMagic);
        writer.Write(_events.Count);
        foreach (CrashEvent e in _events)
        {
            writer.Write((byte)e.Kind);
            writer.Write((byte)e.Device);
            writer.Write(e.OffsetBytes);
            writer.Write(e.LengthBytes);
            writer.Write(e.Fua);
            writer.Write(e.Ref);
            writer.Write(e.Data?.Length ?? -1);
            if (e.Data is not null)
            {
                writer.Write(e.Data);
            }
        }
    }

    public static CrashLog Load(Stream stream)
    {
        using BinaryReader reader = new(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        if (reader.ReadUInt32() != FileMagic)
        {
            throw new InvalidDataException("not a writeboost crash log");
        }
        CrashLog log = new();
        int count = reader.ReadInt32();
        for (int i = 0; i < count; i++)
        {
            EventKind kind = (EventKind)reader.ReadByte();
            DeviceId device = (DeviceId)reader.ReadByte();
            long offset = reader.ReadInt64();
            long length = reader.ReadInt64();
            bool fua = reader.ReadBoolean();
            int reference = reader.ReadInt32();
            int dataLength = reader.ReadInt32();
            byte[]? data = dataLength < 0 ? null : reader.ReadBytes(dataLength);
            log._events.Add(new CrashEvent(kind, device, offset, length, data, fua, reference));
        }
        return log;
    }
}
