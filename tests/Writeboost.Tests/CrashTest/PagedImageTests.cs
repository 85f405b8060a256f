using Writeboost.CrashTest.Recording;

namespace Writeboost.Tests.CrashTest;

/// <summary>
/// The in-memory media the live device of a recording runs on. The device uses its media from several threads at
/// once (the flush worker writes the cache device while readers read it; in mode 1 writers store into pmem in
/// parallel), so the media must take concurrent requests as a real device does.
/// </summary>
[TestClass]
public sealed class PagedImageTests
{
    [TestMethod]
    public void Writes_leave_the_base_image_alone_and_read_back_over_it()
    {
        byte[] baseImage = new byte[3 * 4096];
        baseImage.AsSpan().Fill(0xaa);
        PagedImage image = new(baseImage);
        image.Write(4096 + 100, new byte[] { 1, 2, 3 });
        byte[] read = new byte[6];
        image.Read(4096 + 99, read);
        CollectionAssert.AreEqual(new byte[] { 0xaa, 1, 2, 3, 0xaa, 0xaa }, read);
        Assert.IsTrue(baseImage.All(b => b == 0xaa), "the base is shared by every crash state: never written");
        Assert.AreEqual(1, image.ModifiedPages);
    }

    [TestMethod]
    public void Concurrent_writers_and_readers_of_different_pages_each_see_their_own_data()
    {
        // Found by `wb crashtest --mode 1 --rounds 2`: a mode-1 writer failed with "Operations that change
        // non-concurrent collections must have exclusive access" (two placements stored into the pmem image at once).
        const int Threads = 4;
        const int PagesPerThread = 2048;
        PagedImage image = new(new byte[Threads * PagesPerThread * 4096]);
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, thread =>
        {
            byte[] page = new byte[4096];
            byte[] back = new byte[4096];
            for (int i = 0; i < PagesPerThread; i++)
            {
                long offset = (long)(i * Threads + thread) * 4096; // the threads' pages interleave
                page.AsSpan().Fill((byte)(thread + 1));
                image.Write(offset, page);
                image.Read(offset, back);
                Assert.IsTrue(back.AsSpan().SequenceEqual(page), $"thread {thread} page {i}");
            }
        });
        Assert.AreEqual(Threads * PagesPerThread, image.ModifiedPages);
    }
}
