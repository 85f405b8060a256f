using Writeboost.CrashTest.Recording;
using Writeboost.Devices;

namespace Writeboost.Tests.CrashTest;

/// <summary>
/// The in-memory media the live device of a recording runs on. The device uses its media from several threads at
/// once (the flush worker writes the cache device while readers read it; in mode 1 writers store into pmem in
/// parallel), so the media must take concurrent requests as a real device does. Crash states are layers: a state over
/// its timeline's durable image, the crashes of a state's recovery over a snapshot of that state; none copies what
/// it does not change.
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

    [TestMethod]
    public void A_layer_reads_through_to_the_image_under_it_and_never_writes_to_it()
    {
        byte[] baseImage = new byte[2 * 4096];
        baseImage.AsSpan().Fill(0xaa);
        PagedImage durable = new(baseImage);
        durable.Write(4096, new byte[] { 7, 7 });
        PagedImage state = new(durable);
        state.Write(4096 + 1, new byte[] { 1 }); // part of a page: the rest of it comes from below
        state.Write(0, new byte[4096]); // a whole page of zeros

        Assert.AreEqual((byte)7, state[4096]);
        Assert.AreEqual((byte)1, state[4096 + 1]);
        Assert.AreEqual((byte)0xaa, state[4096 + 2]);
        Assert.AreEqual((byte)0, state[100]);
        Assert.AreEqual((byte)7, durable[4096 + 1], "the layer below is shared by every state built over it");
        Assert.AreEqual((byte)0xaa, durable[100]);
        Assert.AreEqual(2, state.ModifiedPages);
    }

    [TestMethod]
    public void A_snapshot_holds_what_the_image_held_and_each_goes_its_own_way_after()
    {
        PagedImage durable = new(new byte[2 * 4096]);
        PagedImage state = new(durable);
        state.Write(0, new byte[] { 1 });
        state.Write(4096, new byte[4096]);
        PagedImage beforeRecovery = state.Snapshot();

        state.Write(0, new byte[] { 2 }); // recovery writes to the state
        state.Write(4096, new byte[] { 3 }); // over the shared page of zeros: a page of its own first
        beforeRecovery.Write(1, new byte[] { 4 }); // a crash of that recovery writes to a layer of its own

        Assert.AreEqual((byte)2, state[0]);
        Assert.AreEqual((byte)0, state[1]);
        Assert.AreEqual((byte)3, state[4096]);
        Assert.AreEqual((byte)1, beforeRecovery[0]);
        Assert.AreEqual((byte)4, beforeRecovery[1]);
        Assert.AreEqual((byte)0, beforeRecovery[4096]);
        Assert.AreEqual(0, durable.ModifiedPages);
    }

    [TestMethod]
    public void A_frozen_image_and_the_layers_under_it_refuse_writes_and_still_carry_layers()
    {
        PagedImage durable = new(new byte[4096]);
        durable.Write(0, new byte[] { 5 });
        PagedImage start = new PagedImage(durable).Freeze(); // a log's start: every checking thread layers over it

        Assert.ThrowsExactly<InvalidOperationException>(() => start.Write(0, new byte[] { 1 }));
        Assert.ThrowsExactly<InvalidOperationException>(() => durable.Write(0, new byte[] { 1 }), "what it reads through is frozen too");
        PagedImage timeline = new(start);
        timeline.Write(1, new byte[] { 6 });
        Assert.AreEqual((byte)5, timeline[0]);
        Assert.AreEqual((byte)6, timeline[1]);
        Assert.AreEqual((byte)0, start[1]);
    }

    [TestMethod]
    public void A_recycled_image_refuses_use_and_the_next_image_on_its_thread_reuses_its_pages_with_none_of_their_bytes_showing()
    {
        // A checker recycles each state's images once judged; the next state's pages are those pages, full of the
        // old state's bytes: a page written in part must show its base (or zeros) around the write, never them.
        byte[] baseImage = new byte[2 * 4096 + 1024]; // the last page is short: beyond the image's end is zeros
        baseImage.AsSpan().Fill(0xaa);
        PagedImage old = new(baseImage);
        byte[] garbage = new byte[4096];
        garbage.AsSpan().Fill(0xee);
        for (int page = 0; page < 3; page++)
        {
            old.Write(page * 4096L, garbage.AsSpan(0, page < 2 ? 4096 : 1024));
        }
        old.Recycle();
        Assert.ThrowsExactly<InvalidOperationException>(() => old.Read(0, new byte[1]));
        Assert.ThrowsExactly<InvalidOperationException>(() => old.Write(0, new byte[1]));

        PagedImage next = new(baseImage);
        next.Write(100, new byte[] { 1 });               // over the base: the rest of the page is the base's
        next.Write(4096, new byte[4096]);                // a whole page of zeros: the shared zero page...
        next.Write(4096 + 200, new byte[] { 2 });        // ...then written in part: the rest is zeros
        next.Write(2 * 4096 + 300, new byte[] { 3 });    // the short last page
        byte[] read = new byte[baseImage.Length];
        next.Read(0, read);
        byte[] expected = baseImage.ToArray();
        expected[100] = 1;
        expected.AsSpan(4096, 4096).Clear();
        expected[4096 + 200] = 2;
        expected[2 * 4096 + 300] = 3;
        CollectionAssert.AreEqual(expected, read);
        PagedImage snapshot = next.Snapshot();
        next.Recycle();
        snapshot.Read(0, read);
        CollectionAssert.AreEqual(expected, read, "a snapshot's pages are its own, not the recycled image's");
    }

    [TestMethod]
    public void A_page_read_through_to_the_timeline_keeps_its_token_until_the_timeline_writes_that_page()
    {
        PagedImage start = new PagedImage(new byte[3 * 4096]).Freeze();
        PagedImage timeline = new(start);
        timeline.Write(0, new byte[] { 1 });
        PageVersion first = new PagedImage(timeline).VersionOf(0)!.Value;

        timeline.Write(4096, new byte[] { 2 }); // the timeline advances elsewhere
        Assert.AreEqual(first, new PagedImage(timeline).VersionOf(0), "page 0 is unchanged");
        Assert.AreEqual(new PagedImage(timeline).VersionOf(2 * 4096), new PagedImage(timeline).VersionOf(2 * 4096), "a page of the frozen start");

        timeline.Write(100, new byte[] { 3 });
        Assert.AreNotEqual(first, new PagedImage(timeline).VersionOf(0), "page 0 was written");
    }

    [TestMethod]
    public void A_state_s_own_pages_never_share_a_token_and_a_base_still_written_has_none()
    {
        PagedImage timeline = new(new PagedImage(new byte[2 * 4096]).Freeze());
        PagedImage state = new(timeline);
        PagedImage other = new(timeline);
        state.Write(0, new byte[] { 1 });
        other.Write(0, new byte[] { 1 });
        PageVersion before = state.VersionOf(0)!.Value;
        Assert.AreNotEqual(before, other.VersionOf(0), "same bytes, but each state's own");
        state.Write(4096, new byte[] { 2 });
        Assert.AreNotEqual(before, state.VersionOf(0), "any write of a state moves its own pages' tokens");
        Assert.IsNull(new PagedImage(new byte[4096]).VersionOf(0), "an array not frozen under an image may still change");
    }

    [TestMethod]
    public void Zeroes_written_without_data_read_back_as_zeros_only_where_they_were_written()
    {
        byte[] baseImage = new byte[4 * 4096];
        baseImage.AsSpan().Fill(0xaa);
        PagedImage image = new(new PagedImage(baseImage).Freeze());
        image.Write(4096, Enumerable.Repeat((byte)0xbb, 4096).ToArray());

        image.WriteZeroes(4096 - 512, 2 * 4096 + 1024); // a part page, two whole pages (one written before), a part page

        byte[] read = new byte[4 * 4096];
        image.Read(0, read);
        Assert.IsTrue(read.AsSpan(0, 4096 - 512).ToArray().All(b => b == 0xaa), "before the range");
        Assert.IsTrue(read.AsSpan(4096 - 512, 2 * 4096 + 1024).ToArray().All(b => b == 0), "the range");
        Assert.IsTrue(read.AsSpan(3 * 4096 + 512).ToArray().All(b => b == 0xaa), "after the range");
        image.Write(2 * 4096 + 8, new byte[] { 5 }); // a zero page written in part gets a page of its own
        image.Read(2 * 4096, read.AsSpan(0, 4096));
        Assert.AreEqual(5, read[8]);
        Assert.AreEqual(4095, read.AsSpan(0, 4096).Count((byte)0));
    }
}
