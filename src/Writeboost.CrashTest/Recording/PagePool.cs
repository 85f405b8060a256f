namespace Writeboost.CrashTest.Recording;

/// <summary>
/// The pages and page tables of images given back (<see cref="PagedImage.Recycle"/>), per thread, for the images the
/// same thread makes next: a checking thread makes and drops the images of one crash state after another. Bounded:
/// what it cannot hold goes to the collector.
/// </summary>
internal static class PagePool
{
    internal const int PageBytes = 4096;
    /// <summary>Enough for an order-11 state's rebuilt segments (a megabyte each, one per pmem buffer) and then some.</summary>
    private const int MaxPages = 2048;
    private const int MaxTables = 16;
    /// <summary>A table that held more pages than this is dropped, not kept: clearing it for a small state would cost more than a new one.</summary>
    private const int MaxTablePages = 4096;

    [ThreadStatic]
    private static Stack<byte[]>? t_pages;
    [ThreadStatic]
    private static Stack<Dictionary<long, byte[]>>? t_tables;

    /// <summary>A page whose bytes are anything: the caller fills it whole.</summary>
    public static byte[] Take() => t_pages is { Count: > 0 } pages ? pages.Pop() : GC.AllocateUninitializedArray<byte>(PageBytes);

    /// <summary>A page holding what <paramref name="page"/> holds.</summary>
    public static byte[] Copy(byte[] page)
    {
        byte[] copy = Take();
        page.AsSpan().CopyTo(copy);
        return copy;
    }

    public static void Give(byte[] page)
    {
        System.Diagnostics.Debug.Assert(page.Length == PageBytes, "only pages of an image come back");
        Stack<byte[]> pages = t_pages ??= new Stack<byte[]>(MaxPages);
        if (pages.Count < MaxPages)
        {
            pages.Push(page);
        }
    }

    /// <summary>An empty page table.</summary>
    public static Dictionary<long, byte[]> TakeTable() => t_tables is { Count: > 0 } tables ? tables.Pop() : [];

    public static void GiveTable(Dictionary<long, byte[]> table)
    {
        if (table.Count > MaxTablePages)
        {
            return;
        }
        table.Clear();
        Stack<Dictionary<long, byte[]>> tables = t_tables ??= new Stack<Dictionary<long, byte[]>>(MaxTables);
        if (tables.Count < MaxTables)
        {
            tables.Push(table);
        }
    }
}
