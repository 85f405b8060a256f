using System.Globalization;
using System.Runtime.Versioning;
using Mono.Unix.Native;

namespace Writeboost.Native;

/// <summary>
/// Who holds a flock on a file or device node, from /proc/locks (a line per lock: its kind, the holder's pid and
/// the locked inode as <c>MAJOR:MINOR:INODE</c>, the device numbers in hex), so "in use" can name the process.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class LockHolders
{
    /// <summary>"process 1234 (wb serve 1 ...)" for each process holding a flock on <paramref name="path"/>'s inode; empty when none is found.</summary>
    internal static IReadOnlyList<string> Describe(string path)
    {
        if (Syscall.stat(path, out Stat stat) != 0 || !File.Exists("/proc/locks"))
        {
            return [];
        }
        ulong dev = stat.st_dev;
        uint major = (uint)(((dev >> 32) & 0xfffff000) | ((dev >> 8) & 0x00000fff));
        uint minor = (uint)(((dev >> 12) & 0xffffff00) | (dev & 0x000000ff));
        string inode = string.Create(CultureInfo.InvariantCulture, $":{stat.st_ino}");
        List<string> holders = [];
        try
        {
            foreach (string line in File.ReadLines("/proc/locks"))
            {
                // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (a waiter's line has "->" after the number)
                string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                int at = Array.IndexOf(fields, "FLOCK");
                if (at < 0 || fields.Length < at + 5 || fields[at + 1] == "->")
                {
                    continue;
                }
                string[] where = fields[at + 4].Split(':');
                if (where.Length != 3
                    || !uint.TryParse(where[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint lockMajor)
                    || !uint.TryParse(where[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint lockMinor)
                    || lockMajor != major || lockMinor != minor || !fields[at + 4].EndsWith(inode, StringComparison.Ordinal))
                {
                    continue;
                }
                string pid = fields[at + 3];
                string kind = fields[at + 2] == "WRITE" ? "exclusively" : "shared";
                string description = $"process {pid}{CommandOf(pid)}, {kind}";
                if (!holders.Contains(description))
                {
                    holders.Add(description);
                }
            }
        }
        catch (IOException)
        {
            // /proc/locks is a courtesy for the message; the lock itself already said "in use".
        }
        return holders;
    }

    private static string CommandOf(string pid)
    {
        try
        {
            string[] words = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0)
            {
                return "";
            }
            // "dotnet wb.dll serve ..." reads better as "wb serve ...".
            IEnumerable<string> shown = words.Length > 1 && Path.GetFileName(words[0]) == "dotnet" && words[1].EndsWith("wb.dll", StringComparison.Ordinal)
                ? words.Skip(2).Prepend("wb")
                : words.Skip(1).Prepend(Path.GetFileName(words[0]));
            string command = string.Join(' ', shown);
            return $" ({(command.Length > 120 ? command[..117] + "..." : command)})";
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
