using Writeboost.CrashTest.Recording;

namespace Writeboost.CrashTest.Workloads;

public enum UserOpKind
{
    Write,
    Flush,
    Read,
}

/// <summary>One request of a scripted workload: what a minimised reproducer replays, one at a time.</summary>
public sealed record UserOp(UserOpKind Kind, long OffsetBytes = 0, int LengthBytes = 0, byte[]? Data = null, bool Fua = false)
{
    /// <summary>The requests a recorded log's user made, in the order they were issued.</summary>
    public static IReadOnlyList<UserOp> FromLog(CrashLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        List<UserOp> ops = [];
        foreach (CrashEvent e in log.Events)
        {
            switch (e.Kind)
            {
                case EventKind.UserWrite:
                    ops.Add(new UserOp(UserOpKind.Write, e.OffsetBytes, (int)e.LengthBytes, e.Data, e.Fua));
                    break;
                case EventKind.UserFlush:
                    ops.Add(new UserOp(UserOpKind.Flush));
                    break;
                case EventKind.UserRead:
                    ops.Add(new UserOp(UserOpKind.Read, e.OffsetBytes, (int)e.LengthBytes));
                    break;
                default:
                    break;
            }
        }
        return ops;
    }

    /// <summary>"write sectors 8-15 FUA", "flush", "read sectors 0-3".</summary>
    public override string ToString()
    {
        string sectors = LengthBytes <= 512 ? $"sector {OffsetBytes / 512}" : $"sectors {OffsetBytes / 512}-{(OffsetBytes + LengthBytes) / 512 - 1}";
        return Kind switch
        {
            UserOpKind.Write => $"write {sectors}{(Fua ? " FUA" : "")}",
            UserOpKind.Flush => "flush",
            _ => $"read {sectors}",
        };
    }
}
