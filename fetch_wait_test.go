package runnel

// How Broker.Fetch waits for MinBytes (readable, fetchProbe, firstMoved).
// Each test names the change to the code (the mutant) that it
// fails with.

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestFetchCtxEndAnswersWhatTheWakesFound: a fetch of several partitions
// that answered with records, fewer than MinBytes, and waits, woken by an
// append, answers when its ctx ends with what the partitions hold then
// (one last read), not with its first read's records: as it did when each
// wake read. Kills: the last read at ctx's end skipped (if grew made
// false, or negated). Of two partitions since 2026-12-07: a fetch of one
// is not woken by an append that does not bring its MinBytes, and reads
// again at ctx's end whatever grew says
// (TestFetchOfOnePartitionCtxEndReadsAgain).
func TestFetchCtxEndAnswersWhatTheWakesFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
		produce(t, b, "t", 0, "a")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := goFetch(ctx, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "t"}, {Topic: "t", Partition: 1}}})
		synctest.Wait() // it read "a" and waits
		produce(t, b, "t", 0, "b")
		synctest.Wait() // woken: it counted "b" and waits again
		cancel()
		a := <-done
		require.NoError(t, a.err)
		fp := a.resp.Partitions[0]
		require.NoError(t, fp.Err)
		require.EqualValues(t, 2, fp.HighWatermark)
		require.Equal(t, []string{"a", "b"}, values(t, fp.Records), "the answer at ctx's end")
	})
}

// ctxEndsDuringALook, in a synctest bubble, holds partition 0 of topic
// exclusively (as a reopen holds it), calls wake, whose wake's look of
// the fetch (done, a goFetch of a ctx that cancel ends) then waits for
// that partition, ends the fetch's ctx, releases the partition, and
// returns the fetch's answer.
func ctxEndsDuringALook(t *testing.T, b *Broker, topic string, cancel context.CancelFunc, done <-chan fetchAnswer, wake func()) fetchAnswer {
	t.Helper()
	_, p, err := b.topicPartition(t.Context(), topic, 0, false)
	require.NoError(t, err)
	k, err := p.Lock(t.Context())
	require.NoError(t, err)
	wake()
	synctest.Wait()
	cancel()
	synctest.Wait()
	k.Unlock()
	return <-done
}

// TestFetchCtxEndDuringAWakesLookAnswersRecords: a fetch that
// answered with records, fewer than MinBytes, and waits, whose ctx ends
// while a wake's look at its partitions waits for a partition held
// exclusively (a reopen's lock, Partition.Lock), answers the records it
// holds, as Fetch's doc says (it fails with ctx's error when "ctx ends
// before anything was found"), and as it does when ctx ends during the
// wait itself. Kills: the error of the wake's look returned in place of
// the answer held (c10: it was ctx's error, the records dropped).
func TestFetchCtxEndDuringAWakesLookAnswersRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
		produce(t, b, "t", 0, "a")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := goFetch(ctx, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}})
		synctest.Wait() // it read "a" and waits
		a := ctxEndsDuringALook(t, b, "t", cancel, done, func() {
			produce(t, b, "t", 1, "b") // a wake: its look waits for partition 0
		})
		require.NoError(t, a.err, "the fetch found records")
		require.NoError(t, a.resp.Partitions[0].Err)
		require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[0].Records))
	})
}

// fetchOverATopicCreatedAgain, in a synctest bubble, creates topics u
// (holding "a"), t and more (one partition each), starts a fetch of them
// all (MinBytes 1 MiB, MaxWait an hour), and once it waits, deletes t:
// the wake's look holds at its first read (testHookFetchRead) while t is
// created again, holding "x", then goes on; it returns after the fetch
// waits again, with the fetch's cancel and its answer's channel. The look
// finds t's new topic ID, and the fetch is made again.
func fetchOverATopicCreatedAgain(t *testing.T, b *Broker, more ...string) (context.CancelFunc, <-chan fetchAnswer) {
	t.Helper()
	topics := append([]string{"u", "t"}, more...)
	req := &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20}
	for _, name := range topics {
		require.NoError(t, b.CreateTopic(t.Context(), name, log.TopicConfig{Partitions: 1}))
		req.Partitions = append(req.Partitions, api.FetchPartition{Topic: name})
	}
	produce(t, b, "u", 0, "a")
	var armed, held atomic.Bool
	gate := make(chan struct{})
	setFetchReadHook(func() {
		if armed.CompareAndSwap(true, false) {
			held.Store(true)
			<-gate
		}
	})
	t.Cleanup(func() { setFetchReadHook(nil) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := goFetch(ctx, b, req)
	synctest.Wait() // it read "a" and waits
	armed.Store(true)
	require.NoError(t, b.DeleteTopic(t.Context(), "t"))
	synctest.Wait()
	require.True(t, held.Load(), "the deletion woke the fetch: its look holds at u")
	require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "x")
	close(gate)
	synctest.Wait()
	return cancel, done
}

// TestFetchWaitSeesATopicCreatedAgain: a fetch that answered
// with records, fewer than MinBytes, and waits, whose other partition's
// topic is deleted and created again under its name, makes the fetch
// again at the wake: its answer names the topic's new ID and holds what
// the new topic holds, not the old topic's ID and answer. The wake (the
// deletion's) is held, by testHookFetchRead at the look's read of the
// first partition, until the topic is created again: a look between the
// two finds the topic unknown and answers so. Kills: the wake's look
// taking another topic ID for a partition as no change (c13: its failed
// dropped).
func TestFetchWaitSeesATopicCreatedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		cancel, done := fetchOverATopicCreatedAgain(t, b)
		cancel()
		a := <-done
		require.NoError(t, a.err)
		info, err := b.DescribeTopic(t.Context(), "t")
		require.NoError(t, err)
		fp := a.resp.Partitions[1]
		require.NoError(t, fp.Err)
		require.Equal(t, info.ID, fp.TopicID, "the topic's new ID")
		require.Equal(t, []string{"x"}, values(t, fp.Records))
		require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[0].Records))
	})
}

// TestFetchCtxEndAfterAWakeWithoutGrowth: the last read at
// ctx's end, which answers what the wakes found, is made when any wake
// found more bytes, not only the last one: here the last wake comes of a
// partition with no room left, which counts nothing. Kills: grew set from
// the last wake alone (c19).
func TestFetchCtxEndAfterAWakeWithoutGrowth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
		produce(t, b, "t", 0, "a")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := goFetch(ctx, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1, MaxBytes: 1}}})
		synctest.Wait()            // it read "a" and waits
		produce(t, b, "t", 0, "b") // a wake that counts "b"
		synctest.Wait()
		produce(t, b, "t", 1, "c") // one that counts "c", filling partition 1's room
		synctest.Wait()
		produce(t, b, "t", 1, "d") // one that counts nothing
		synctest.Wait()
		cancel()
		a := <-done
		require.NoError(t, a.err)
		require.NoError(t, a.resp.Partitions[0].Err)
		require.Equal(t, []string{"a", "b"}, values(t, a.resp.Partitions[0].Records), "the answer at ctx's end")
	})
}

// TestFetchWaitSeesItsFirstBatchCompactedAway: a fetch that
// holds its partition's first batch and waits, whose batch a compaction
// removes, the next being of the same size, makes the fetch again at
// the next wake: when its ctx ends it answers the batch the log holds at
// its offset now, not the one removed. Kills: firstMoved comparing the
// first batch's size alone (c38).
func TestFetchWaitSeesItsFirstBatchCompactedAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, put := compactedFetchTopic(t)
		x, y := strings.Repeat("x", 100), strings.Repeat("y", 100)
		put("a", x)                        // 0: superseded by 2
		put("b", y)                        // 1: as large as 0
		put("a", "z")                      // 2
		put("c", strings.Repeat("w", 800)) // 3: rolls, 0-2 are in a sealed segment
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := goFetch(ctx, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20, MaxBytes: 2 << 20,
			Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: 1}}})
		synctest.Wait() // it holds offset 0's batch and waits
		require.NoError(t, b.Maintain(t.Context()))
		resp, err := b.Fetch(t.Context(), &api.FetchRequest{MaxBytes: 1, Partitions: []api.FetchPartition{{Topic: "t"}}})
		require.NoError(t, err)
		require.Equal(t, []string{y}, values(t, resp.Partitions[0].Records), "offset 0 was compacted away")
		put("d", "v") // a wake
		synctest.Wait()
		cancel()
		a := <-done
		require.NoError(t, a.err)
		require.Equal(t, []string{y}, values(t, a.resp.Partitions[0].Records), "the first batch the log holds now")
	})
}

// TestFetchWaitCompactedChangedAfterItsLookMarked: a fetch that holds
// records of a compacted partition (t-0, from offset 1) and of another
// (u-0), woken by an append to u-0, whose look at the wake took t-0's
// mark and read it before a change to t-0 (made as the look reads u-0),
// answers at that wake all the same: the change fires its next wait at
// once (the mark's epoch is behind the partition's; see log.Wake.Add),
// and the look then made finds t-0 failed. Until 2026-12-07 firstMoved
// read t-0's first batch again at each wake, which found the change in
// the same look; its marks find it now. Kills: Wake.Add's epoch check
// dropped (each subtest then sleeps until an append or MaxWait, checked).
func TestFetchWaitCompactedChangedAfterItsLookMarked(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(t *testing.T, b *Broker)
		err    error
	}{
		{"DeleteTopic", func(t *testing.T, b *Broker) { require.NoError(t, b.DeleteTopic(t.Context(), "t")) }, ErrUnknownTopic},
		// A cut of the log start past the offset, as retention makes
		// one of a topic both compacted and deleted (the broker's
		// DeleteRecords refuses a compacted topic).
		{"cut", func(t *testing.T, b *Broker) {
			_, p, err := b.topicPartition(t.Context(), "t", 0, false)
			require.NoError(t, err)
			_, err = p.Log().DeleteRecordsBefore(t.Context(), 2)
			require.NoError(t, err)
		}, log.ErrOffsetOutOfRange},
		{"TruncateTo", func(t *testing.T, b *Broker) {
			_, p, err := b.topicPartition(t.Context(), "t", 0, false)
			require.NoError(t, err)
			_, err = p.Log().TruncateTo(0)
			require.NoError(t, err)
		}, log.ErrOffsetOutOfRange},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, put := compactedFetchTopic(t)
				require.NoError(t, b.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 1}))
				put("a", "x")
				put("b", "y")
				produce(t, b, "u", 0, "v")
				var (
					armed atomic.Bool
					reads atomic.Int32
				)
				setFetchReadHook(func() {
					// The wake's look reads t-0 (1), then u-0 (2).
					if armed.Load() && reads.Add(1) == 2 {
						c.change(t, b)
					}
				})
				defer func() { setFetchReadHook(nil) }()
				t0 := time.Now()
				done := goFetch(context.Background(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
					Partitions: []api.FetchPartition{{Topic: "t", Offset: 1}, {Topic: "u"}}})
				synctest.Wait() // it holds t-0's "y" and u-0's "v", and waits
				armed.Store(true)
				produce(t, b, "u", 0, "w") // a wake
				synctest.Wait()
				a := answeredNow(t, done, "t-0 changed at the wake, and the fetch waits on (until MaxWait)")
				require.NoError(t, a.err)
				require.Equal(t, t0, a.at, "answered at the wake")
				require.ErrorIs(t, a.resp.Partitions[0].Err, c.err)
			})
		})
	}
}

// TestFetchWaitCountsAFirstBatchWhole: a fetch that holds
// records and waits, woken by a batch larger than its partition's
// MaxBytes on a partition it names before the one with records, answers
// at that wake: a fetch made then returns that batch whole (it is the
// first partition with data, KIP-74), which holds MinBytes. Kills: the
// wake's count of whole batches (pr.bound) limited to each partition's
// room (c58: it waited until MaxWait).
func TestFetchWaitCountsAFirstBatchWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
		produce(t, b, "t", 0, "a")
		big := strings.Repeat("b", 1000)
		done := goFetch(context.Background(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 500,
			Partitions: []api.FetchPartition{{Topic: "t", Partition: 1, MaxBytes: 1}, {Topic: "t", Partition: 0}}})
		synctest.Wait() // it read "a" and waits
		t0 := time.Now()
		produce(t, b, "t", 1, big)
		synctest.Wait()
		a := answeredNow(t, done, "the partitions hold MinBytes, and the fetch waits on (until MaxWait)")
		require.NoError(t, a.err)
		require.Equal(t, t0, a.at, "answered at the append")
		require.Equal(t, []string{big}, values(t, a.resp.Partitions[0].Records))
		require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[1].Records))
	})
}

// TestFetchCtxEndAnswersWhatItFound: a fetch waiting for MinBytes
// whose ctx ends answers the records it found, not ctx's error (Fetch
// fails with ctx's error only when it found nothing): the caller gets
// them, and its position moves (mutant: ctx's error whatever was found).
func TestFetchCtxEndAnswersWhatItFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		produce(t, b, "t", 0, "a")
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		t0 := time.Now()
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "t"}}})
		require.NoError(t, err)
		require.Equal(t, t0.Add(time.Minute), time.Now(), "the fetch did not wait until ctx ended")
		require.Equal(t, []string{"a"}, values(t, resp.Partitions[0].Records))

		// Nothing found: ctx's error.
		ctx, cancel = context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		_, err = b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "t", Offset: 1}}})
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

// TestFetchWaitCompactionOfAPartitionItHoldsNothingOfReadsNoMore: a
// fetch that holds records of a compacted partition (t-1) and nothing of
// another (t-0, read at its end), and waits for MinBytes, is not made
// again at the wake after a compaction of t-0: it found no batch of t-0
// that the compaction could have removed or made larger, so the wake's
// look (a read of each partition) and the count of what was appended
// since are all it reads (firstMoved passes a partition whose first
// batch the fetch did not find). Kills: firstMoved looking at the marks
// of every compacted partition (the fetch made again at that wake, a
// read of each partition more).
func TestFetchWaitCompactionOfAPartitionItHoldsNothingOfReadsNoMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2, Config: log.Config{
			CleanupPolicy: log.Compact, SegmentBytes: 1000, MinCleanableDirtyRatio: 0.01}}))
		put := func(p int32, kv ...string) {
			_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Partition: p, Acks: api.AcksAll, Batches: keyed(t, kv...)})
			require.NoError(t, err)
		}
		y := strings.Repeat("y", 100)
		put(0, "a", strings.Repeat("x", 100)) // 0: superseded by 2
		put(0, "b", y)                        // 1
		put(0, "a", "z")                      // 2
		put(0, "c", strings.Repeat("w", 800)) // 3: rolls, 0-2 are in a sealed segment
		put(1, "k", "v")                      // t-1's one segment: nothing to compact
		done := goFetch(context.Background(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "t", Offset: 4}, {Topic: "t", Partition: 1}}})
		synctest.Wait() // it holds t-1's "v", nothing of t-0, and waits
		require.NoError(t, b.Maintain(t.Context()))
		resp, err := b.Fetch(t.Context(), &api.FetchRequest{MaxBytes: 1, Partitions: []api.FetchPartition{{Topic: "t"}}})
		require.NoError(t, err)
		require.Equal(t, []string{y}, values(t, resp.Partitions[0].Records), "offset 0 was compacted away")
		reads := countFetchReads(t)
		put(1, "k", "w") // a wake (t-1 is compacted: any append to it)
		synctest.Wait()
		select {
		case a := <-done:
			t.Fatalf("answered early: %+v", a)
		default:
		}
		require.EqualValues(t, 2, reads.Load(), "the wake's look of t-0 and t-1, and no fetch made again")
	})
}

// TestFetchWaitCompactedDuringItsLookSeenAtTheNextAppend is
// TestFetchWaitCompactedFirstBatchWokenByAnotherPartition with the
// compaction made as the wake's look reads t-0, after it took t-0's
// mark: that look's marks do not show it, and the fetch waits again, but
// for any append to any of its partitions (it found a compacted
// partition's first batch: see byteWait), and answers at the next, whose
// look's marks show it. A compaction wakes no one: one made just after
// the look is seen so too. Kills: byteWait's anyAppend dropped (the
// append to u-0, below its share, does not wake the fetch, which sleeps
// until MaxWait).
func TestFetchWaitCompactedDuringItsLookSeenAtTheNextAppend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, first, _, big := compactedFirstBatches(t)
		require.NoError(t, b.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 1}))
		var (
			armed atomic.Bool
			reads atomic.Int32
		)
		setFetchReadHook(func() {
			// The wake's look reads t-0 (1), after it took t-0's mark.
			if armed.Load() && reads.Add(1) == 1 {
				require.NoError(t, b.Maintain(t.Context()))
			}
		})
		defer func() { setFetchReadHook(nil) }()
		done := goFetch(context.Background(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: big, MaxBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: 1}, {Topic: "u"}}})
		synctest.Wait() // it holds t-0's first batch, small, and waits
		armed.Store(true)
		produce(t, b, "u", 0, "v") // a wake, whose look the compaction overtakes
		synctest.Wait()
		armed.Store(false)
		require.Equal(t, []string{strings.Repeat("y", 400)}, values(t, first()), "offset 0 was not compacted away")
		time.Sleep(time.Second)
		t1 := time.Now()
		produce(t, b, "u", 0, "w") // the next append
		synctest.Wait()
		a := answeredNow(t, done, "the compaction is not seen at the next append, and the fetch waits on (until MaxWait)")
		require.NoError(t, a.err)
		require.False(t, a.at.After(t1), "answered by the next append")
		require.Equal(t, []string{strings.Repeat("y", 400)}, values(t, a.resp.Partitions[0].Records))
	})
}

// TestFetchOnceAnswersIntoAReusedSliceAsIntoANewOne: fetchOnce's answer
// made in reuse (the last look's, which a wake's look passes) is the
// answer it makes in a new slice, whatever reuse held: every field that
// fetchAt leaves as it finds it (a partition's Err, its Records and
// TopicID where the read fails or reads nothing) is cleared first. It
// checks a look (check) and a read, of a partition holding records, one
// empty, and one of an unknown topic, into a slice of the same length
// holding junk in every field, and that a slice too short is left alone.
// Kills: the reused answer not cleared (a partition's Err of an earlier
// look stayed, and the wake's look then passed over that partition's
// truncation or a topic created again), which the fetch tests passed.
func TestFetchOnceAnswersIntoAReusedSliceAsIntoANewOne(t *testing.T) {
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
	produce(t, b, "t", 0, "a", "b")
	req := &api.FetchRequest{MinBytes: 1 << 20, Partitions: []api.FetchPartition{
		{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}, {Topic: "nosuch"}}}
	junk := func(n int) []api.FetchedPartition {
		ps := make([]api.FetchedPartition, n)
		for i := range ps {
			ps[i] = api.FetchedPartition{Topic: "junk", TopicID: log.TopicID{1, 2, 3}, Partition: 9,
				HighWatermark: 99, LogStartOffset: 99, Records: []byte("junk"), Err: api.ErrInvalidRequest}
		}
		return ps
	}
	for _, check := range []bool{true, false} {
		marks := make([]log.Mark, len(req.Partitions))
		want, _, wantTotal, wantFailed, err := b.fetchOnce(t.Context(), req, 1<<20, check, false, marks, nil)
		require.NoError(t, err)
		require.True(t, wantFailed, "the premise: the unknown topic fails")
		require.Equal(t, check, wantTotal == 0, "the premise: a read (not a look) reads records")

		reuse := junk(len(req.Partitions) + 1)
		got, _, total, failed, err := b.fetchOnce(t.Context(), req, 1<<20, check, false, marks, reuse)
		require.NoError(t, err)
		require.Same(t, &reuse[0], &got.Partitions[0], "the premise: reuse holds the answer")
		require.Equal(t, want.Partitions, got.Partitions, "check %v: the answer in a reused slice", check)
		require.Equal(t, wantTotal, total)
		require.Equal(t, wantFailed, failed)

		short := junk(len(req.Partitions) - 1)
		got, _, _, _, err = b.fetchOnce(t.Context(), req, 1<<20, check, false, marks, short)
		require.NoError(t, err)
		require.Equal(t, want.Partitions, got.Partitions, "check %v: the answer where reuse has no room", check)
		require.Equal(t, junk(len(short)), short, "a slice too short is left as it was")
	}
}

// TestFetchCtxEndDuringALookAfterTheFetchWasMadeAgainAnswersRecords: a
// fetch that holds records and waits, made again at a wake (a topic of
// it created again: the look found another topic ID), and whose ctx
// then ends while the third wake's look (the second's found nothing
// changed) waits for a partition held exclusively, answers what the
// fetch made again read: the answer it returns is never a look's (which
// the next look reuses, and clears).
// The first wake (the deletion's) is held at the look's first read,
// by testHookFetchRead, until the topic is created again, as in
// TestFetchWaitSeesATopicCreatedAgain. Kills: the fetch made again
// into the last look's slice (reuse passed where it makes resp): the
// next look cleared the answer, and the records were dropped, which the
// fetch tests passed; and the answer kept for the next look in place
// of the look's own (look = resp.Partitions), which they passed too.
func TestFetchCtxEndDuringALookAfterTheFetchWasMadeAgainAnswersRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		cancel, done := fetchOverATopicCreatedAgain(t, b, "v") // made again, it read "a" and "x", and waits

		_, pv, err := b.topicPartition(t.Context(), "v", 0, false)
		require.NoError(t, err)
		wakeByV := func() { // a change other than an append: a wake, and its look
			t.Helper()
			kv, err := pv.Lock(t.Context())
			require.NoError(t, err)
			kv.Unlock()
		}
		wakeByV()
		synctest.Wait() // a look that found nothing changed: the fetch waits again
		// Its look waits for u:
		a := ctxEndsDuringALook(t, b, "u", cancel, done, wakeByV)
		require.NoError(t, a.err, "the fetch found records")
		require.Len(t, a.resp.Partitions, 3)
		for i, want := range [][]string{{"a"}, {"x"}, nil} {
			fp := a.resp.Partitions[i]
			require.NoError(t, fp.Err, "partition %d", i)
			require.Equal(t, want, values(t, fp.Records), "partition %d", i)
		}
		require.Equal(t, "t", a.resp.Partitions[1].Topic)
	})
}
