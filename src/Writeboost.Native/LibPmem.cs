using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Writeboost.Native;

/// <summary>
/// PMDK's libpmem (Debian package <c>libpmem1</c>, soname <c>libpmem.so.1</c>): cache-line write-back and fences.
/// libpmem reads <c>PMEM_IS_PMEM_FORCE</c> and the <c>PMEM_NO_*</c> variables from the process environment when it
/// is loaded; .NET's Environment.SetEnvironmentVariable does not reach native getenv, so they must be set
/// before the process starts.
/// </summary>
[SupportedOSPlatform("linux")]
internal static unsafe partial class LibPmem
{
    internal const string Lib = "libpmem.so.1";

    // pmem_memcpy flags (libpmem.h)
    internal const uint PMEM_F_MEM_NODRAIN = 1u << 0;
    internal const uint PMEM_F_MEM_NONTEMPORAL = 1u << 1;
    internal const uint PMEM_F_MEM_TEMPORAL = 1u << 2;
    internal const uint PMEM_F_MEM_WC = 1u << 3;
    internal const uint PMEM_F_MEM_WB = 1u << 4;
    internal const uint PMEM_F_MEM_NOFLUSH = 1u << 5;

    private static readonly Lazy<string?> LoadError = new(TryLoad);

    /// <summary>Null when libpmem can be used; otherwise why not, with the fix.</summary>
    internal static string? UnavailableReason => LoadError.Value;

    private static string? TryLoad()
    {
        if (!NativeLibrary.TryLoad(Lib, out nint handle))
        {
            return $"{Lib} (PMDK libpmem) is not installed: run 'apt-get install -y libpmem1'";
        }
        NativeLibrary.Free(handle);
        nint problem = pmem_check_version(1, 0);
        return problem == 0 ? null : $"{Lib}: {Marshal.PtrToStringUTF8(problem)}";
    }

    internal static void EnsureAvailable()
    {
        if (UnavailableReason is { } reason)
        {
            throw new DllNotFoundException(reason);
        }
    }

    [LibraryImport(Lib, EntryPoint = "pmem_check_version")]
    private static partial nint pmem_check_version(uint major_required, uint minor_required);

    [LibraryImport(Lib, EntryPoint = "pmem_is_pmem")]
    internal static partial int pmem_is_pmem(void* addr, nuint len);

    [LibraryImport(Lib, EntryPoint = "pmem_has_auto_flush")]
    internal static partial int pmem_has_auto_flush();

    [LibraryImport(Lib, EntryPoint = "pmem_has_hw_drain")]
    internal static partial int pmem_has_hw_drain();

    [LibraryImport(Lib, EntryPoint = "pmem_persist")]
    internal static partial void pmem_persist(void* addr, nuint len);

    [LibraryImport(Lib, EntryPoint = "pmem_flush")]
    internal static partial void pmem_flush(void* addr, nuint len);

    [LibraryImport(Lib, EntryPoint = "pmem_drain")]
    internal static partial void pmem_drain();

    [LibraryImport(Lib, EntryPoint = "pmem_msync")]
    internal static partial int pmem_msync(void* addr, nuint len);

    [LibraryImport(Lib, EntryPoint = "pmem_memcpy_persist")]
    internal static partial void* pmem_memcpy_persist(void* pmemdest, void* src, nuint len);

    [LibraryImport(Lib, EntryPoint = "pmem_memcpy")]
    internal static partial void* pmem_memcpy(void* pmemdest, void* src, nuint len, uint flags);

    /// <summary>libpmem's own mapping of a file (the benchmarks' bare reference: no Pmem API in between).</summary>
    [LibraryImport(Lib, EntryPoint = "pmem_map_file", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial void* pmem_map_file(string path, nuint len, int flags, uint mode, out nuint mappedLen, out int isPmem);

    [LibraryImport(Lib, EntryPoint = "pmem_unmap")]
    internal static partial int pmem_unmap(void* addr, nuint len);

    [LibraryImport(Lib, EntryPoint = "pmem_errormsg")]
    internal static partial nint pmem_errormsg();
}
