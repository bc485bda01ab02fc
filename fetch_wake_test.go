package runnel

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// fetchAnswer is a Fetch's answer, with the (fake) time it came at.
type fetchAnswer struct {
	resp api.FetchResponse
	err  error
	at   time.Time
}

// longFetch starts, on a goroutine of the bubble's, a Fetch of topic t's
// partition 0 from offset that waits up to maxWait for more bytes than
// the test ever appends (goFetch).
func longFetch(b *Broker, offset int64, maxWait time.Duration) <-chan fetchAnswer {
	return goFetch(context.Background(), b, &api.FetchRequest{
		MaxWait: maxWait, MinBytes: 1 << 20,
		Partitions: []api.FetchPartition{{Topic: "t", Offset: offset}},
	})
}

// goFetch starts b.Fetch(ctx, req) on a goroutine (of the bubble's, in a
// synctest test) and returns the channel its answer comes on, with the
// (fake) time it came at.
func goFetch(ctx context.Context, b *Broker, req *api.FetchRequest) <-chan fetchAnswer {
	done := make(chan fetchAnswer, 1)
	go func() {
		resp, err := b.Fetch(ctx, req)
		done <- fetchAnswer{resp, err, time.Now()}
	}()
	return done
}

// answeredNow returns the answer on done, which must have come by now (a
// bubble's test looks after synctest.Wait): else it fails t with what,
// the fetch asleep past what should have answered it (until MaxWait).
func answeredNow(t *testing.T, done <-chan fetchAnswer, what string) fetchAnswer {
	t.Helper()
	select {
	case a := <-done:
		return a
	default:
		t.Fatal(what)
		return fetchAnswer{}
	}
}

// countFetchReads counts the partition reads of every Fetch
// (testHookFetchRead) until t ends.
func countFetchReads(t testing.TB) *atomic.Int32 {
	reads := new(atomic.Int32)
	setFetchReadHook(func() { reads.Add(1) })
	t.Cleanup(func() { setFetchReadHook(nil) })
	return reads
}

// A fetch waiting for MinBytes whose offset a DeleteRecords, or
// retention, leaves below the log start answers at once, out of range,
// rather than at MaxWait (an hour, or more: a consumer's FetchMaxWait has
// no bound), with the log start the client resets to; so does one whose
// topic is deleted. Before the fix only appends (and a reopen or close of
// the log) woke a waiting fetch: the first two answered at MaxWait.
func TestFetchWokenByLogStartMove(t *testing.T) {
	t.Run("DeleteRecords", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := open(t, Config{})
			require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
			produce(t, b, "t", 0, "a")
			produce(t, b, "t", 0, "b")
			produce(t, b, "t", 0, "c")
			t0 := time.Now()
			done := longFetch(b, 1, 100*time.Hour)
			synctest.Wait() // the fetch waits for MinBytes
			_, err := b.DeleteRecords(t.Context(), "t", 0, 2)
			require.NoError(t, err)
			a := <-done
			require.NoError(t, a.err)
			require.Equal(t, t0, a.at, "the fetch waited for MaxWait")
			fp := a.resp.Partitions[0]
			require.ErrorIs(t, fp.Err, log.ErrOffsetOutOfRange)
			require.EqualValues(t, 2, fp.LogStartOffset)
			require.EqualValues(t, 3, fp.HighWatermark)
		})
	})
	t.Run("retention", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := open(t, Config{MaintenanceInterval: time.Minute})
			require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: log.Config{RetentionTime: time.Hour}}))
			t0 := time.Now()
			produce(t, b, "t", 0, "a")
			produce(t, b, "t", 0, "b")
			done := longFetch(b, 0, 100*time.Hour)
			a := <-done
			require.NoError(t, a.err)
			// The broker's maintenance deletes the records at its first
			// run past retention.ms (see TestSynctestMaintenanceRetention).
			require.Equal(t, t0.Add(time.Hour+time.Minute), a.at, "the fetch was not answered when retention moved the log start")
			fp := a.resp.Partitions[0]
			require.ErrorIs(t, fp.Err, log.ErrOffsetOutOfRange)
			require.EqualValues(t, 2, fp.LogStartOffset)
		})
	})
	t.Run("DeleteTopic", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := open(t, Config{})
			require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
			produce(t, b, "t", 0, "a")
			t0 := time.Now()
			done := longFetch(b, 0, 100*time.Hour)
			synctest.Wait()
			require.NoError(t, b.DeleteTopic(t.Context(), "t"))
			a := <-done
			require.NoError(t, a.err)
			require.Equal(t, t0, a.at, "the fetch waited for MaxWait")
			require.ErrorIs(t, a.resp.Partitions[0].Err, ErrUnknownTopic)
		})
	})
}

// A cut that leaves a waiting fetch's offset in range wakes it all the
// same (the log does not know the readers' offsets): the fetch reads
// again, finds less than MinBytes still, and goes back to waiting until
// MaxWait, the records it found then in the answer; with one partition
// and with two (a log.Wake of two waits). A truncation below a
// waiting fetch's offset answers it at once, out of range; and so does a
// DeleteRecords after a config change reopened the log (the new log wakes
// the partition's readers too).
func TestFetchWokenByCutInRange(t *testing.T) {
	for _, parts := range []int32{1, 2} {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: int(parts)}))
				for p := range parts {
					for _, v := range []string{"a", "b", "c"} {
						produce(t, b, "t", p, v) // a batch each
					}
				}
				reads := countFetchReads(t)
				t0 := time.Now()
				req := &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20}
				for p := range parts {
					req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "t", Partition: p, Offset: 2})
				}
				done := goFetch(context.Background(), b, req)
				synctest.Wait()
				_, err := b.DeleteRecords(t.Context(), "t", parts-1, 1)
				require.NoError(t, err)
				synctest.Wait()
				select {
				case a := <-done:
					t.Fatalf("a cut below the offset answered the fetch early: %+v", a)
				default:
				}
				require.EqualValues(t, 2*parts, reads.Load(), "the cut did not wake the fetch")
				a := <-done
				require.NoError(t, a.err)
				require.Equal(t, t0.Add(time.Hour), a.at, "the fetch did not wait for MaxWait")
				for p, fp := range a.resp.Partitions {
					require.NoError(t, fp.Err)
					require.Equal(t, []string{"c"}, values(t, fp.Records), p)
				}
				require.EqualValues(t, 1, a.resp.Partitions[parts-1].LogStartOffset)
			})
		})
	}
	t.Run("TruncateTo", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := open(t, Config{})
			require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
			produce(t, b, "t", 0, "a", "b", "c")
			t0 := time.Now()
			done := longFetch(b, 3, 100*time.Hour)
			synctest.Wait()
			_, p, err := b.topicPartition(t.Context(), "t", 0, false)
			require.NoError(t, err)
			_, err = p.Log().TruncateTo(1)
			require.NoError(t, err)
			a := <-done
			require.NoError(t, a.err)
			require.Equal(t, t0, a.at, "the fetch waited for MaxWait")
			require.ErrorIs(t, a.resp.Partitions[0].Err, log.ErrOffsetOutOfRange)
		})
	})
	t.Run("reopened", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := open(t, Config{})
			require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
			produce(t, b, "t", 0, "a", "b", "c")
			require.NoError(t, b.AlterTopicConfig(t.Context(), "t", log.Config{RetentionTime: 2 * time.Hour}))
			t0 := time.Now()
			done := longFetch(b, 1, 100*time.Hour)
			synctest.Wait()
			_, err := b.DeleteRecords(t.Context(), "t", 0, 2)
			require.NoError(t, err)
			a := <-done
			require.NoError(t, a.err)
			require.Equal(t, t0, a.at, "the fetch waited for MaxWait")
			require.ErrorIs(t, a.resp.Partitions[0].Err, log.ErrOffsetOutOfRange)
		})
	})
}

// TestFetchWakeOfALongPollReadsOnce: the common long poll, a
// fetch of MinBytes 1 that found nothing and waits, reads once more at
// the wake an append makes the partition appended to, and answers with
// it: the wake of a fetch that read nothing makes the fetch again, which
// reads only what was appended since, of the partitions whose wait
// fired (each of the others answers as its first read did; it read
// every partition again before: four reads of two partitions, where
// three do). (The look at each wake that
// TestUntrustedFetchWakeReadsOnlyNewBytes pins, a read of no bytes and a
// count of the bytes appended before the fetch is made again, is for a
// fetch whose answer holds records already: it made this wake three
// reads, where one does.)
func TestFetchWakeOfALongPollReadsOnce(t *testing.T) {
	for _, parts := range []int32{1, 2} {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: int(parts)}))
				reads := countFetchReads(t)
				req := &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1}
				for p := range parts {
					req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "t", Partition: p})
				}
				done := goFetch(context.Background(), b, req)
				synctest.Wait()
				require.EqualValues(t, parts, reads.Load(), "the first read")
				t0 := time.Now()
				produce(t, b, "t", parts-1, "a")
				a := <-done
				require.NoError(t, a.err)
				require.Equal(t, t0, a.at, "answered at the append")
				require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[parts-1].Records))
				require.EqualValues(t, parts+1, reads.Load(), "one read, of the partition appended to, at the wake")
			})
		})
	}
}

// TestFetchOfManyPartitionsReadsAgainOnlyWhatChanged: a long poll of
// many partitions that read nothing reads again, at a wake, only the
// partitions whose wait fired (their change channels closed, before
// 2026-12-07); the others answer as their
// first read did. The answer is that of
// a fetch made then, each partition's high watermark and log start
// those of now (a cut in range, which wakes the poll and leaves it
// waiting, shows in the answer). Before, each wake read every partition
// again: a consumer of P partitions read 2P of them at each append. An
// append made between a partition's look-up and its read (after the
// fetch took its mark) wakes the fetch too (mutant: the mark, as the
// channel before 2026-12-07, taken after the read waits for MaxWait, and
// answers without the record).
func TestFetchOfManyPartitionsReadsAgainOnlyWhatChanged(t *testing.T) {
	const parts = 40
	setup := func(t *testing.T) (*Broker, *api.FetchRequest, *atomic.Int32) {
		b := open(t, Config{})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: parts}))
		req := &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1}
		for p := range int32(parts) {
			if p%3 == 0 {
				produce(t, b, "t", p, "x", "y")
				produce(t, b, "t", p, "z")
			}
			hw, err := b.ListOffset(t.Context(), "t", p, api.Latest)
			require.NoError(t, err)
			req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "t", Partition: p, Offset: hw.Offset})
		}
		_, err := b.DeleteRecords(t.Context(), "t", 6, 2)
		require.NoError(t, err)
		reads := countFetchReads(t)
		return b, req, reads
	}
	// same checks that a is what a fetch of req made now answers, but
	// for the records of partition with, which a holds.
	same := func(t *testing.T, b *Broker, req *api.FetchRequest, a api.FetchResponse, with int, records ...string) {
		setFetchReadHook(nil)
		now, err := b.Fetch(t.Context(), &api.FetchRequest{Partitions: req.Partitions})
		require.NoError(t, err)
		require.Len(t, a.Partitions, parts)
		for i, fp := range a.Partitions {
			want := now.Partitions[i]
			if i == with {
				require.Equal(t, records, values(t, fp.Records))
				want.Records = fp.Records
			}
			require.Equal(t, want, fp, "partition %d", i)
		}
	}
	t.Run("append", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, req, reads := setup(t)
			done := goFetch(t.Context(), b, req)
			synctest.Wait()
			require.EqualValues(t, parts, reads.Load(), "the first read")
			// A cut that leaves the offset in range wakes the fetch,
			// which reads the partition again and waits on.
			_, err := b.DeleteRecords(t.Context(), "t", 9, 1)
			require.NoError(t, err)
			synctest.Wait()
			require.EqualValues(t, parts+1, reads.Load(), "the cut's wake")
			t0 := time.Now()
			produce(t, b, "t", 31, "a")
			a := <-done
			require.NoError(t, a.err)
			require.Equal(t, t0, a.at, "answered at the append")
			require.EqualValues(t, parts+2, reads.Load(), "one read, of the partition appended to, at the wake")
			require.EqualValues(t, 1, a.resp.Partitions[9].LogStartOffset, "the cut's log start")
			require.EqualValues(t, 2, a.resp.Partitions[6].LogStartOffset)
			same(t, b, req, a.resp, 31, "a")
		})
	})
	t.Run("append during the first read", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, req, reads := setup(t)
			var produced error
			setFetchReadHook(func() {
				if reads.Add(1) == 18 { // partition 17's, after its look-up
					_, produced = b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Partition: 17, Acks: api.AcksAll, Batches: batch(t, "a")})
				}
			})
			t0 := time.Now()
			a := <-goFetch(t.Context(), b, req)
			require.NoError(t, produced)
			require.NoError(t, a.err)
			require.Equal(t, t0, a.at, "the append's wake was lost")
			require.EqualValues(t, parts+1, reads.Load())
			same(t, b, req, a.resp, 17, "a")
		})
	})
	t.Run("DeleteTopic", func(t *testing.T) {
		// The deletion takes the topic from the broker first, then
		// discards its partitions one by one: the first one's wake
		// answers the fetch while the others' channels are still open,
		// and the answer says every partition is gone, as a fetch made
		// then says (mutant: the others answered as their first read
		// did, as if the topic were there; the answer of a partition
		// read again not cleared first, the deleted topic's ID left in
		// it).
		synctest.Test(t, func(t *testing.T) {
			b, req, reads := setup(t)
			done := goFetch(t.Context(), b, req)
			synctest.Wait()
			answered := make(chan fetchAnswer, 1)
			testHookDeletePartition = func(_ string, id int) {
				if id == 1 { // t-0 discarded, and its readers woken
					answered <- <-done
				}
			}
			defer func() { testHookDeletePartition = nil }()
			require.NoError(t, b.DeleteTopic(t.Context(), "t"))
			a := <-answered
			require.NoError(t, a.err)
			for i, fp := range a.resp.Partitions {
				require.ErrorIs(t, fp.Err, ErrUnknownTopic, "partition %d", i)
				require.EqualValues(t, -1, fp.HighWatermark, "partition %d", i)
				require.True(t, fp.TopicID.IsZero(), "partition %d: the deleted topic's ID, as a fetch made then does not say", i)
			}
			require.EqualValues(t, parts, reads.Load(), "a partition of no topic was read")
		})
	})
	t.Run("MaxWait", func(t *testing.T) {
		// Its last look reads every partition, as before (a reopen
		// begun during the poll is waited for: see
		// TestFetchHeedsItsCtxBehindAReopenBegunDuringIt).
		synctest.Test(t, func(t *testing.T) {
			b, req, reads := setup(t)
			t0 := time.Now()
			a := <-goFetch(t.Context(), b, req)
			require.NoError(t, a.err)
			require.Equal(t, t0.Add(time.Hour), a.at)
			require.EqualValues(t, 2*parts, reads.Load())
			same(t, b, req, a.resp, -1)
		})
	})
}

// TestFetchWakeReadsAPartitionWhoseHighWatermarkMovedBeforeItsWake: a
// long poll of two partitions that read nothing, woken by an append to
// one, reads the other again too when its high watermark moved and its
// wake has not come yet (fetchStands' offsets). A log.Partition.Append
// under flush.messages moves the high watermark (the log end) with its
// write, then waits for the flush, and wakes the readers only after it:
// the hook holds that fsync until the wake's read of the second
// partition has begun (mutant: the offsets not looked at, its first,
// empty, answer stood, the record left to the next fetch; 22deffd7's
// message had no test reach that window, the broker's own appends
// waking the readers right after the write).
func TestFetchWakeReadsAPartitionWhoseHighWatermarkMovedBeforeItsWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newStuckFS(vfs.NewMem())
		b := open(t, Config{FS: fs, Dir: "/data", MaintenanceInterval: time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2,
			Config: log.Config{Sync: log.SyncPeriodic, FlushMessages: 1}}))
		_, p1, err := b.topicPartition(t.Context(), "t", 1, false)
		require.NoError(t, err)
		var reads atomic.Int32
		entered, release := fs.arm(t, vfs.OpSync, "/t-1/00000000000000000000.log")
		setFetchReadHook(func() {
			if reads.Add(1) == 4 { // the wake's read of t-1, after t-0's
				release()
			}
		})
		defer func() { setFetchReadHook(nil) }()
		done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1,
			Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}})
		synctest.Wait() // it read both, and waits
		require.EqualValues(t, 2, reads.Load())
		appended := make(chan error, 1)
		go func() {
			_, err := p1.Append(t.Context(), batch(t, "b"), log.AppendOptions{})
			appended <- err
		}()
		<-entered // t-1's high watermark moved; its readers not woken yet
		produce(t, b, "t", 0, "a")
		a := <-done
		require.NoError(t, a.err)
		require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[0].Records))
		require.Equal(t, []string{"b"}, values(t, a.resp.Partitions[1].Records), "t-1's record, below its high watermark")
		release()
		require.NoError(t, <-appended)
	})
}

// TestFetchWakeReadsAPartitionWhoseLogStartMovedBeforeItsWake: as
// TestFetchWakeReadsAPartitionWhoseHighWatermarkMovedBeforeItsWake, for a
// DeleteRecords that moved the log start to the fetch's offset (in
// range still) and wakes the readers once it is done, after its leader
// epochs' checkpoint, which the hook holds: the answer tells the log
// start of now, as a fetch made then (mutant: the log start not looked
// at, the first read's stood).
func TestFetchWakeReadsAPartitionWhoseLogStartMovedBeforeItsWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newStuckFS(vfs.NewMem())
		b := open(t, Config{FS: fs, Dir: "/data", MaintenanceInterval: time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
		produce(t, b, "t", 1, "b")
		var reads atomic.Int32
		entered, release := fs.arm(t, vfs.OpWrite, "/t-1/leader-epoch-checkpoint")
		setFetchReadHook(func() {
			if reads.Add(1) == 4 { // the wake's read of t-1, after t-0's
				release()
			}
		})
		defer func() { setFetchReadHook(nil) }()
		done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1,
			Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1, Offset: 1}}})
		synctest.Wait() // it read both, and waits
		require.EqualValues(t, 2, reads.Load())
		deleted := make(chan error, 1)
		go func() {
			_, err := b.DeleteRecords(t.Context(), "t", 1, 1)
			deleted <- err
		}()
		<-entered // t-1's log start moved; its readers not woken yet
		produce(t, b, "t", 0, "a")
		a := <-done
		require.NoError(t, a.err)
		require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[0].Records))
		got := a.resp.Partitions[1]
		require.NoError(t, got.Err)
		require.EqualValues(t, 1, got.LogStartOffset, "t-1's log start now")
		release()
		require.NoError(t, <-deleted)
	})
}

// TestFetchWokenByAppend: a fetch waiting for MinBytes is woken
// by the append that brings them, not by MaxWait: on a topic that
// acknowledges without an fsync (SyncNever, SyncPeriodic), where the
// high watermark moves with the append itself (mutant: no wake-up there,
// only the fsync's, which such a topic may not run for long), and under
// SyncAlways after a config change reopened the partition's log, whose
// fsyncs move the high watermark (mutant: the new log's fsyncs wake no
// one).
func TestFetchWokenByAppend(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    log.Config
		reopen bool
	}{
		{"SyncNever", log.Config{Sync: log.SyncNever}, false},
		{"SyncPeriodic", log.Config{Sync: log.SyncPeriodic}, false},
		{"SyncAlways_reopened", log.Config{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: c.cfg}))
				if c.reopen {
					require.NoError(t, b.AlterTopicConfig(t.Context(), "t", log.Config{RetentionTime: 2 * time.Hour}))
				}
				t0 := time.Now()
				done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour,
					Partitions: []api.FetchPartition{{Topic: "t"}}})
				synctest.Wait() // the fetch waits
				produce(t, b, "t", 0, "a")
				a := <-done
				require.NoError(t, a.err)
				require.Equal(t, t0, a.at, "the fetch waited for MaxWait")
				require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[0].Records))
			})
		})
	}
}

// TestFetchNotWokenByFlushTick: a long poll at the log end of a
// SyncPeriodic topic sleeps through the flush.ms flushes of the broker's
// maintenance, made at its timer ticks: they move no high watermark (the
// log end, which the append moved). Only the append wakes it. Before,
// each flush that advanced the durable offset woke every fetch waiting
// on the partition, to read it again and find nothing (mutant: the read
// count is 2 after the ticks).
func TestFetchNotWokenByFlushTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: time.Second})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1,
			Config: log.Config{Sync: log.SyncPeriodic, FlushInterval: time.Second}}))
		produce(t, b, "t", 0, "a")
		p, err := b.partition(t.Context(), "t", 0, false)
		require.NoError(t, err)
		require.Zero(t, p.Log().DurableOffset(), "not flushed yet")
		reads := countFetchReads(t)
		done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1,
			Partitions: []api.FetchPartition{{Topic: "t", Offset: 1}}})
		synctest.Wait()
		require.EqualValues(t, 1, reads.Load(), "the first read")
		time.Sleep(10 * time.Second) // ten maintenance ticks
		synctest.Wait()
		require.EqualValues(t, 1, p.Log().DurableOffset(), "a tick flushed the append")
		require.EqualValues(t, 1, reads.Load(), "a tick woke the fetch")
		t0 := time.Now()
		produce(t, b, "t", 0, "b")
		a := <-done
		require.NoError(t, a.err)
		require.Equal(t, t0, a.at)
		require.Equal(t, []string{"b"}, values(t, a.resp.Partitions[0].Records))
		require.EqualValues(t, 2, reads.Load(), "one read at the append's wake")
	})
}

// TestFetchOfOnePartitionWokenAtMinBytes: a fetch of one partition that
// waits for MinBytes, whether it read nothing or holds records, is woken
// by the append that brings them (under SyncAlways the fsync of it), not
// by those before: each of those woke it, to look, count and wait again
// (1,000 such fetches cost about 7 ms of CPU an append). Mutants: every
// append waking it (the reads), a count one byte past MinBytes (the
// answer at MaxWait), a byte count under SyncAlways made at the append
// (before its fsync moved the high watermark: woken early, or, with
// the count then read, never).
func TestFetchOfOnePartitionWokenAtMinBytes(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  log.Config
		held int // batches below the high watermark past the fetch's offset
	}{
		{"SyncNever/at_the_end", log.Config{Sync: log.SyncNever}, 0},
		{"SyncNever/records_held", log.Config{Sync: log.SyncNever}, 2},
		{"SyncAlways/at_the_end", log.Config{}, 0},
		{"SyncAlways/records_held", log.Config{}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: c.cfg}))
				produce(t, b, "t", 0, "x00") // below the fetch's offset
				size := len(batch(t, "v00"))
				for i := range c.held {
					produce(t, b, "t", 0, fmt.Sprintf("h%02d", i))
				}
				reads := countFetchReads(t)
				t0 := time.Now()
				done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: (c.held + 3) * size,
					Partitions: []api.FetchPartition{{Topic: "t", Offset: 1}}})
				synctest.Wait()
				first := reads.Load()
				for i := range 2 {
					produce(t, b, "t", 0, fmt.Sprintf("v%02d", i))
					synctest.Wait()
					require.Equal(t, first, reads.Load(), "woken by append %d, MinBytes not reached", i)
				}
				time.Sleep(time.Minute)
				produce(t, b, "t", 0, "v02")
				a := <-done
				require.NoError(t, a.err)
				require.Equal(t, t0.Add(time.Minute), a.at, "not woken by the append that brought MinBytes")
				require.Len(t, values(t, a.resp.Partitions[0].Records), c.held+3)
			})
		})
	}
}

// TestFetchOfOnePartitionCtxEndReadsAgain: a fetch of one partition that
// holds records, fewer than MinBytes, and whose ctx ends answers what a
// read finds then, with the high watermark of then: the appends since
// its read, which do not bring MinBytes, did not wake it to look (mutant:
// it answers its first read, with the high watermark of then, as a fetch
// that no wake found more for does).
func TestFetchOfOnePartitionCtxEndReadsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		produce(t, b, "t", 0, "a")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := goFetch(ctx, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "t"}}})
		synctest.Wait()
		produce(t, b, "t", 0, "b")
		synctest.Wait()
		cancel()
		a := <-done
		require.NoError(t, a.err)
		require.EqualValues(t, 2, a.resp.Partitions[0].HighWatermark)
		require.Equal(t, []string{"a", "b"}, values(t, a.resp.Partitions[0].Records))
	})
}

// TestFetchOfOnePartitionAtTheEndCtxEndReadsAgain: a fetch of one
// partition that read nothing, at the end of the partition, and waits
// for MinBytes answers, when its ctx ends, what a read finds then, with
// no error: records appended since its read that did not bring MinBytes
// did not wake it, and before 2026-12-06 their append woke it to read
// them, so that ctx's end answered them (a consumer's Poll whose ctx
// ends returns what the fetch found: see consumer.Client.Poll). With
// nothing appended, ctx's error as before.
// Mutant: ctx's end reading again only a fetch that holds records (it
// answered nothing and ctx's error, the records appended left to the
// next fetch).
func TestFetchOfOnePartitionAtTheEndCtxEndReadsAgain(t *testing.T) {
	for _, c := range []struct {
		name   string
		sync   log.SyncPolicy
		append bool
	}{
		{"SyncNever/appended", log.SyncNever, true},
		{"SyncAlways/appended", log.SyncAlways, true},
		{"nothing_appended", log.SyncNever, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: log.Config{Sync: c.sync}}))
				produce(t, b, "t", 0, "a")
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := goFetch(ctx, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
					Partitions: []api.FetchPartition{{Topic: "t", Offset: 1}}})
				synctest.Wait()
				if c.append {
					produce(t, b, "t", 0, "b")
					synctest.Wait()
				}
				cancel()
				a := <-done
				if !c.append {
					require.ErrorIs(t, a.err, context.Canceled)
					return
				}
				require.NoError(t, a.err, "records appended during the wait, not answered at ctx's end")
				require.EqualValues(t, 2, a.resp.Partitions[0].HighWatermark)
				require.Equal(t, []string{"b"}, values(t, a.resp.Partitions[0].Records))
			})
		})
	}
}

// TestFetchOfOnePartitionWithNoRoomSleepsThroughAppends: a fetch of one
// partition whose first batch took all its MaxBytes (KIP-74: the first
// batch comes whatever its size) counts nothing more, and no append
// answers it before MaxWait: none wakes it (mutant: each woke it to
// look); a change other than an append (here a DeleteRecords past its
// offset) still does, and the fetch answers out of range. A compacted
// topic's appends each wake it: a compaction may change the first batch
// it counted whole (see firstMoved), and wakes no one (mutant: the
// compacted partition's fetch waits for the bytes, and
// TestFetchWaitCompactedFirstBatch's answers at MaxWait).
func TestFetchOfOnePartitionWithNoRoomSleepsThroughAppends(t *testing.T) {
	for _, compact := range []bool{false, true} {
		t.Run(fmt.Sprintf("compact=%v", compact), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var b *Broker
				var put func(v string)
				if compact {
					var kv func(...string)
					b, kv = compactedFetchTopic(t)
					put = func(v string) { kv(v, v) }
				} else {
					b = open(t, Config{})
					require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
					put = func(v string) { produce(t, b, "t", 0, v) }
				}
				put("a")
				reads := countFetchReads(t)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				done := goFetch(ctx, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
					Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: 1}}})
				synctest.Wait()
				first := reads.Load()
				put("b")
				synctest.Wait()
				put("c")
				synctest.Wait()
				if compact {
					require.Equal(t, first+2, reads.Load(), "a compacted partition's appends each wake the fetch")
					// The fetch ends before the test does, rather than
					// read on (at ctx's end) beside countFetchReads's
					// Cleanup, which clears the hook the read calls.
					cancel()
					a := <-done
					require.NoError(t, a.err)
					return
				}
				require.Equal(t, first, reads.Load(), "an append woke a fetch no append answers")
				_, err := b.DeleteRecords(t.Context(), "t", 0, 2)
				require.NoError(t, err)
				a := <-done
				require.NoError(t, a.err)
				require.ErrorIs(t, a.resp.Partitions[0].Err, log.ErrOffsetOutOfRange)
			})
		})
	}
}

// TestFetchOfOnePartitionWithItsRoomSpentExactlySleepsThroughAppends is
// TestFetchOfOnePartitionWithNoRoomSleepsThroughAppends with the
// partition's MaxBytes filled exactly by its first batch (its room 0,
// not below): no append answers the fetch, and none wakes it. Mutant
// (the mutation pass of log.Wake, 2026-12-07): a room of 0 taken as
// one left, the partition taking a share of what the fetch lacks, each
// append of it a wake for nothing.
func TestFetchOfOnePartitionWithItsRoomSpentExactlySleepsThroughAppends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		s := len(batch(t, "a"))
		produce(t, b, "t", 0, "a")
		reads := countFetchReads(t)
		done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 2 * s,
			Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: s}}})
		synctest.Wait()
		first := reads.Load()
		produce(t, b, "t", 0, "b")
		synctest.Wait()
		produce(t, b, "t", 0, "c")
		synctest.Wait()
		require.Equal(t, first, reads.Load(), "an append woke a fetch no append answers")
		_, err := b.DeleteRecords(t.Context(), "t", 0, 2)
		require.NoError(t, err)
		a := testkit.Await(t, done, "the fetch's answer at the cut")
		require.NoError(t, a.err)
		require.ErrorIs(t, a.resp.Partitions[0].Err, log.ErrOffsetOutOfRange)
	})
}

// TestFetchOfOnePartitionWokenAtMinBytesUnderConcurrentAppends: fetches
// of one partition waiting for MinBytes, started while appends from
// several goroutines run, each answer once the appends bring their
// MinBytes, whatever the order of their marks, reads and the appends
// (the bytes of an append count once the high watermark is past them:
// a mark counts nothing its fetch's read does not see); those whose
// MinBytes no append brings still wait. Run it with -race and -count.
func TestFetchOfOnePartitionWokenAtMinBytesUnderConcurrentAppends(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  log.Config
	}{{"SyncNever", log.Config{Sync: log.SyncNever}}, {"SyncAlways", log.Config{}}} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: c.cfg}))
				size := len(batch(t, "v00"))
				const appenders, each = 4, 6
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				type fetch struct {
					want int // batches
					done <-chan fetchAnswer
				}
				var fetches []fetch
				start := make(chan struct{})
				var wg sync.WaitGroup
				for a := range appenders {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						for i := range each {
							produce(t, b, "t", 0, fmt.Sprintf("%d%02d", a, i))
						}
					}()
				}
				for want := 1; want <= appenders*each+2; want++ {
					fetches = append(fetches, fetch{want, goFetch(ctx, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: want*size - size/2,
						Partitions: []api.FetchPartition{{Topic: "t"}}})})
					if want == 3 {
						close(start) // the rest start under the appends
					}
				}
				wg.Wait()
				synctest.Wait()
				for _, f := range fetches {
					select {
					case a := <-f.done:
						require.NoError(t, a.err)
						require.LessOrEqual(t, f.want, appenders*each, "a fetch of %d batches answered", f.want)
						require.GreaterOrEqual(t, len(a.resp.Partitions[0].Records), f.want*size-size/2)
					default:
						require.Greater(t, f.want, appenders*each, "a fetch of %d batches waits, %d appended", f.want, appenders*each)
					}
				}
			})
		})
	}
}

// TestFetchOfOnePartitionWokenAtMinBytesCountedPastASegment: a fetch of
// one partition whose read stopped at the end of a segment, the batches
// after it below the high watermark counted (readable), waits for what
// it lacks past both, and is woken by the append that brings exactly
// that, not by the one before (a MinBytes a byte more: not by that one
// either). Mutants: the wait forgetting the bytes counted past the read
// (woken an append late, at MaxWait here), a wait a byte short (woken an
// append early, to look and wait again).
func TestFetchOfOnePartitionWokenAtMinBytesCountedPastASegment(t *testing.T) {
	for _, c := range []struct {
		name string
		sync log.SyncPolicy
		plus int // bytes past the batches the fetch waits for
	}{
		{"SyncNever", log.SyncNever, 0},
		{"SyncNever/a_byte_more", log.SyncNever, 1},
		{"SyncAlways", log.SyncAlways, 0},
		{"SyncAlways/a_byte_more", log.SyncAlways, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{})
				size := len(batch(t, "v00"))
				// A segment a batch: the fetch's read ends at the
				// end of its first.
				cfg := log.Config{Sync: c.sync, SegmentBytes: int64(size)}
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: cfg}))
				for _, v := range []string{"x00", "h00", "h01"} {
					produce(t, b, "t", 0, v)
				}
				reads := countFetchReads(t)
				t0 := time.Now()
				done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 4*size + c.plus,
					Partitions: []api.FetchPartition{{Topic: "t", Offset: 1}}})
				synctest.Wait()
				first := reads.Load()
				produce(t, b, "t", 0, "v00")
				synctest.Wait()
				require.Equal(t, first, reads.Load(), "woken by an append that does not bring MinBytes")
				time.Sleep(time.Minute)
				produce(t, b, "t", 0, "v01")
				synctest.Wait()
				if c.plus > 0 {
					require.Equal(t, first, reads.Load(), "woken by the append a byte short of MinBytes")
					time.Sleep(time.Minute)
					produce(t, b, "t", 0, "v02")
				}
				a := <-done
				require.NoError(t, a.err)
				require.Equal(t, t0.Add(time.Duration(1+c.plus)*time.Minute), a.at, "not woken by the append that brought MinBytes")
				require.GreaterOrEqual(t, len(values(t, a.resp.Partitions[0].Records)), 1)
			})
		})
	}
}

// TestFetchOfOnePartitionChangedBetweenMarkAndWait: what changes a
// partition between a fetch's mark (taken before its read) and its wait
// — appends that bring MinBytes made after the fetch looked at the high
// watermark, a DeleteRecords past its offset, a reopen (a config
// change: the new log counts its bytes from 0) followed by appends that
// bring MinBytes — answers the fetch at once, not at MaxWait. Mutants:
// ChangedPast not looking at the count reached since the mark, nor at
// the changes (epoch) since it; the mark taken after the read.
func TestFetchOfOnePartitionChangedBetweenMarkAndWait(t *testing.T) {
	for _, c := range []struct {
		name string
		sync log.SyncPolicy
		do   func(t *testing.T, b *Broker)
		gone bool // the offset is out of range then
	}{
		{"appends/SyncNever", log.SyncNever, func(t *testing.T, b *Broker) { produce(t, b, "t", 0, "a"); produce(t, b, "t", 0, "b") }, false},
		{"appends/SyncAlways", log.SyncAlways, func(t *testing.T, b *Broker) { produce(t, b, "t", 0, "a"); produce(t, b, "t", 0, "b") }, false},
		{"DeleteRecords", log.SyncNever, func(t *testing.T, b *Broker) {
			produce(t, b, "t", 0, "a")
			_, err := b.DeleteRecords(t.Context(), "t", 0, 5)
			require.NoError(t, err)
		}, true},
		{"reopen, appends", log.SyncNever, func(t *testing.T, b *Broker) {
			require.NoError(t, b.UpdateTopicConfig(t.Context(), "t", func(c *log.Config) { c.RetentionTime = 24 * time.Hour }))
			produce(t, b, "t", 0, "a")
			produce(t, b, "t", 0, "b")
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: log.Config{Sync: c.sync}}))
				// Bytes before the mark, which the reopen's new log
				// does not count.
				produce(t, b, "t", 0, "x00", "x01", "x02", "x03")
				size := len(batch(t, "a"))
				once := false
				setFetchReadHook(func() {
					if !once {
						once = true
						c.do(t, b) // after the mark and the look at the high watermark
					}
				})
				defer func() { setFetchReadHook(nil) }()
				t0 := time.Now()
				a := <-goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 2 * size,
					Partitions: []api.FetchPartition{{Topic: "t", Offset: 4}}})
				require.NoError(t, a.err)
				require.Equal(t, t0, a.at, "slept until MaxWait")
				if c.gone {
					require.ErrorIs(t, a.resp.Partitions[0].Err, log.ErrOffsetOutOfRange)
					return
				}
				require.NoError(t, a.resp.Partitions[0].Err)
				require.Equal(t, []string{"a", "b"}, values(t, a.resp.Partitions[0].Records))
			})
		})
	}
}

// TestFetchOfOnePartitionWaitsAcrossAReopen: a fetch of one partition
// that waits for MinBytes, holding records or at the end of the
// partition, woken by a reopen (a config change) looks or reads again,
// takes its mark again (of the new log, whose count starts at 0), and
// waits for what it lacks: the next append that does not bring MinBytes
// leaves it asleep, the one that does answers it. Mutants: the wake's
// look, or the read of a fetch at the end, keeping the mark of before
// the reopen (its wait answered at once, again and again: the test
// hangs).
func TestFetchOfOnePartitionWaitsAcrossAReopen(t *testing.T) {
	for _, c := range []struct {
		name   string
		offset int64
		want   []string
	}{{"records_held", 0, []string{"a", "b", "c"}}, {"at_the_end", 1, []string{"b", "c"}}} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: log.Config{Sync: log.SyncNever}}))
				produce(t, b, "t", 0, "a")
				size := len(batch(t, "a"))
				reads := countFetchReads(t)
				t0 := time.Now()
				done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: len(c.want) * size,
					Partitions: []api.FetchPartition{{Topic: "t", Offset: c.offset}}})
				synctest.Wait()
				require.NoError(t, b.UpdateTopicConfig(t.Context(), "t", func(c *log.Config) { c.RetentionTime = 24 * time.Hour }))
				synctest.Wait()
				looked := reads.Load()
				produce(t, b, "t", 0, "b")
				synctest.Wait()
				require.Equal(t, looked, reads.Load(), "woken by an append that does not bring MinBytes, after the reopen")
				time.Sleep(time.Minute)
				produce(t, b, "t", 0, "c")
				a := <-done
				require.NoError(t, a.err)
				require.Equal(t, t0.Add(time.Minute), a.at, "not woken by the append that brought MinBytes")
				require.Equal(t, c.want, values(t, a.resp.Partitions[0].Records))
			})
		})
	}
}

// TestFetchOfSeveralPartitionsWokenAtMinBytes: a fetch of several
// partitions that waits for MinBytes, at the end of its partitions or
// holding records, is not woken by appends that leave every partition
// below its share of what the fetch lacks (ceil(d/k): d the bytes it
// lacks, k its partitions), and answers at the append that brings
// MinBytes, however the appends spread: all on one partition, evenly,
// the last on a partition that had nothing. s is a batch's size; the
// comments count at the end (holding records, MinBytes is s more, and
// the fetch holds s: the same). Mutants: a share of floor(d/k) or
// ceil(d/(k+1)) (woken by the first append, which cannot bring
// MinBytes), ceil(d/(k-1)) (even and last_on_empty: not woken by the
// append that brings MinBytes, answered at MaxWait), every append
// waking it (before 2026-12-07).
func TestFetchOfSeveralPartitionsWokenAtMinBytes(t *testing.T) {
	for _, c := range []struct {
		name     string
		parts    int
		minBytes func(s int) int
		appends  []int32 // the partition of each append, one batch each
		quiet    int     // the first appends that do not wake the fetch
	}{
		// 2s+1 over 2: s+1 each. 0 and 1 hold s each, below it; 0's
		// second brings 3s.
		{"even", 2, func(s int) int { return 2*s + 1 }, []int32{0, 1, 0}, 2},
		// 3s over 2: ceil(3s/2) each, past s. 0's second (2s) wakes
		// it: it lacks s, ceil(s/2) each; 0's third brings 3s.
		{"one_gets_all", 2, func(s int) int { return 3 * s }, []int32{0, 0, 0}, 1},
		// 4s+1 over 3: ceil((4s+1)/3) each, in (s, 2s]. 0's second
		// wakes it (3s held): it lacks s+1, ceil((s+1)/3) each; 1's
		// second (4s) wakes it, and 2's first brings 5s.
		{"last_on_empty", 3, func(s int) int { return 4*s + 1 }, []int32{0, 1, 0, 1, 2}, 2},
	} {
		for _, held := range []bool{false, true} {
			for _, sync := range []log.SyncPolicy{log.SyncNever, log.SyncAlways} {
				t.Run(fmt.Sprintf("%s/held=%v/%v", c.name, held, sync), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
						require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: c.parts, Config: log.Config{Sync: sync}}))
						s := len(batch(t, "v00"))
						minBytes := c.minBytes(s)
						req := &api.FetchRequest{MaxWait: time.Hour, MinBytes: minBytes}
						for p := range c.parts {
							produce(t, b, "t", int32(p), fmt.Sprintf("x%02d", p)) // below the offsets
							req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "t", Partition: int32(p), Offset: 1})
						}
						if held {
							produce(t, b, "t", 0, "h00")
							req.MinBytes += s
						}
						reads := countFetchReads(t)
						done := goFetch(t.Context(), b, req)
						synctest.Wait()
						first := reads.Load()
						for i, p := range c.appends {
							produce(t, b, "t", p, fmt.Sprintf("v%02d", i))
							synctest.Wait()
							if i < c.quiet {
								require.Equal(t, first, reads.Load(), "append %d (to %d) woke the fetch, no partition past its share", i, p)
							}
							if i < len(c.appends)-1 {
								select {
								case a := <-done:
									t.Fatalf("answered at append %d of %d, before MinBytes: %+v", i, len(c.appends), a)
								default:
								}
							}
						}
						a := answeredNow(t, done, "the partitions hold MinBytes, and the fetch waits on (until MaxWait)")
						require.NoError(t, a.err)
						n := 0
						for _, fp := range a.resp.Partitions {
							require.NoError(t, fp.Err)
							n += len(fp.Records)
						}
						require.GreaterOrEqual(t, n, req.MinBytes)
					})
				})
			}
		}
	}
}

// TestFetchOfSeveralPartitionsSharesAmongThoseThatCount: what a fetch
// of several partitions lacks is shared among the partitions whose
// appends it counts. One whose room is spent (its first batch took its
// MaxBytes) counts no append and takes no share, and none of its
// appends wakes the fetch; one of a compacted topic is woken by each
// append to it, as before, and takes no share either. Here one other
// partition counts, and waits for all the fetch lacks. Mutants: the
// share counted over every partition the fetch names (woken by the
// append that brings half), a compacted partition waiting for a share
// (not woken by its append), a partition with no room woken by its
// appends.
func TestFetchOfSeveralPartitionsSharesAmongThoseThatCount(t *testing.T) {
	t.Run("no_room", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
			require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
			s := len(batch(t, "v00"))
			produce(t, b, "t", 0, "h00")
			reads := countFetchReads(t)
			// It holds h00 (s, past partition 0's MaxBytes) and lacks
			// 2s, all partition 1's.
			done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 3 * s,
				Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: 1}, {Topic: "t", Partition: 1}}})
			synctest.Wait()
			first := reads.Load()
			for i, p := range []int32{0, 0, 1} {
				produce(t, b, "t", p, fmt.Sprintf("v%02d", i))
				synctest.Wait()
				require.Equal(t, first, reads.Load(), "append %d (to %d) woke the fetch", i, p)
			}
			produce(t, b, "t", 1, "v03")
			synctest.Wait()
			a := answeredNow(t, done, "the partitions hold MinBytes, and the fetch waits on (until MaxWait)")
			require.NoError(t, a.err)
			require.Equal(t, []string{"h00"}, values(t, a.resp.Partitions[0].Records))
			require.Equal(t, []string{"v02", "v03"}, values(t, a.resp.Partitions[1].Records))
		})
	})
	t.Run("compacted", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := plainAndCompacted(t)
			s := len(batch(t, "v00"))
			produce(t, b, "t", 0, "h00")
			reads := countFetchReads(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			// It holds h00 (s) at the end of both: it lacks 4s, all
			// t's (k is 1).
			done := goFetch(ctx, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 5 * s,
				Partitions: []api.FetchPartition{{Topic: "c"}, {Topic: "t"}}})
			synctest.Wait()
			first := reads.Load()
			for i := range 2 {
				produce(t, b, "t", 0, fmt.Sprintf("v%02d", i))
				synctest.Wait()
				require.Equal(t, first, reads.Load(), "append %d to t woke the fetch, 4s lacking", i)
			}
			for i := range 2 {
				before := reads.Load()
				produce(t, b, "c", 0, fmt.Sprintf("c%02d", i)) // keyed
				synctest.Wait()
				require.Greater(t, reads.Load(), before, "append %d to the compacted partition did not wake the fetch", i)
			}
			cancel()
			a := <-done
			require.NoError(t, a.err)
			require.Equal(t, []string{"c00", "c01"}, values(t, a.resp.Partitions[0].Records))
			require.Equal(t, []string{"h00", "v00", "v01"}, values(t, a.resp.Partitions[1].Records))
		})
	})
	// A fetch that holds nothing is woken by every append to a
	// compacted partition too: a compaction may make what a read finds
	// there larger than the appends made it (see
	// TestFetchWaitCompactedHoldingNothingBatchGrown); the other
	// partition, the one that counts (k is 1), takes its share.
	t.Run("compacted_holding_nothing", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := plainAndCompacted(t)
			s := len(batch(t, "c00"))
			reads := countFetchReads(t)
			// At the end of both: it lacks 4s, all t's.
			done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 4 * s,
				Partitions: []api.FetchPartition{{Topic: "c"}, {Topic: "t"}}})
			synctest.Wait()
			first := reads.Load()
			produce(t, b, "t", 0, "v00")
			synctest.Wait()
			require.Equal(t, first, reads.Load(), "an append below its partition's share woke the fetch")
			produce(t, b, "c", 0, "c00")
			synctest.Wait()
			require.Greater(t, reads.Load(), first, "an append to the compacted partition did not wake the fetch")
			for i := range 2 {
				produce(t, b, "c", 0, fmt.Sprintf("c%02d", i+1))
				synctest.Wait()
			}
			a := answeredNow(t, done, "the partitions hold MinBytes, and the fetch waits on (until MaxWait)")
			require.NoError(t, a.err)
			require.Equal(t, []string{"c00", "c01", "c02"}, values(t, a.resp.Partitions[0].Records))
			require.Equal(t, []string{"v00"}, values(t, a.resp.Partitions[1].Records))
		})
	})
}

// plainAndCompacted opens a broker in memory, its maintenance left to
// the test, with topics t and c of a partition each, c compacted.
func plainAndCompacted(t *testing.T) *Broker {
	t.Helper()
	b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
	require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.CreateTopic(t.Context(), "c", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact}}))
	return b
}

// TestFetchOfSeveralPartitionsAnswersAtCtxEndAndMaxWait: a fetch of
// several partitions, at their end, waiting for more than the appends
// bring (which do not wake it), answers at ctx's end, or at MaxWait,
// what a read finds then, the records appended during its wait. Mutant:
// ctx's end reading again only a fetch of one partition (it answered
// ctx's error, the records left to the next fetch).
func TestFetchOfSeveralPartitionsAnswersAtCtxEndAndMaxWait(t *testing.T) {
	for _, byCtx := range []bool{true, false} {
		t.Run(fmt.Sprintf("ctx=%v", byCtx), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 3}))
				reads := countFetchReads(t)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				t0 := time.Now()
				done := goFetch(ctx, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
					Partitions: []api.FetchPartition{{Topic: "t"}, {Topic: "t", Partition: 1}, {Topic: "t", Partition: 2}}})
				synctest.Wait()
				first := reads.Load()
				produce(t, b, "t", 0, "a")
				produce(t, b, "t", 2, "b")
				synctest.Wait()
				require.Equal(t, first, reads.Load(), "an append woke the fetch, MinBytes far")
				if byCtx {
					time.Sleep(time.Minute)
					cancel()
				}
				a := <-done
				require.NoError(t, a.err)
				want := t0.Add(time.Hour)
				if byCtx {
					want = t0.Add(time.Minute)
				}
				require.Equal(t, want, a.at)
				require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[0].Records))
				require.Empty(t, a.resp.Partitions[1].Records)
				require.Equal(t, []string{"b"}, values(t, a.resp.Partitions[2].Records))
				require.EqualValues(t, 1, a.resp.Partitions[2].HighWatermark)
			})
		})
	}
}

// TestFetchOfSeveralPartitionsWakeReadsOnlyTheOneThatChanged: a fetch
// of several partitions at their end, waiting for MinBytes, woken by an
// append that takes one partition past its share, reads again that
// partition alone, not those whose wait is still open and whose offsets
// stand (fetchStands): a consumer of P partitions read P of them at
// each wake (review44dos's cost). Mutant: fetchStands ignoring that the
// wait is the fetch's own ChangedPast channel, not the partition's
// Changed (every partition read again at each wake).
func TestFetchOfSeveralPartitionsWakeReadsOnlyTheOneThatChanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 3}))
		s := len(batch(t, "v00"))
		reads := countFetchReads(t)
		// 2s over 3: ceil(2s/3) each, below s.
		done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 2 * s,
			Partitions: []api.FetchPartition{{Topic: "t"}, {Topic: "t", Partition: 1}, {Topic: "t", Partition: 2}}})
		synctest.Wait()
		first := reads.Load()
		produce(t, b, "t", 1, "v00")
		synctest.Wait()
		require.Equal(t, first+1, reads.Load(), "the wake read again partitions that did not change")
		produce(t, b, "t", 2, "v01")
		synctest.Wait()
		a := <-done
		require.NoError(t, a.err)
		require.Empty(t, a.resp.Partitions[0].Records)
		require.Equal(t, []string{"v00"}, values(t, a.resp.Partitions[1].Records))
		require.Equal(t, []string{"v01"}, values(t, a.resp.Partitions[2].Records))
	})
}

// TestFetchOfSeveralPartitionsWokenByALockReleaseWaitsAgain: a fetch of
// several partitions waiting for MinBytes, which went past t-0 held
// exclusively (as a config change's reopen holds it), is woken when the
// lock is released (a change other than an append), reads t-0 again and
// waits again from a mark taken then: not woken again at once by the
// mark of before the release (a wake storm, until ctx or MaxWait ends
// it), whether its answer holds records (the wake's look retakes every
// mark) or not (fetchChanged retakes the mark of the partition it reads
// again). The hook ends the fetch's ctx should it read on. Mutants: a
// wake that keeps the marks of before (fetchChanged's read of t-0, the
// look of one holding records).
func TestFetchOfSeveralPartitionsWokenByALockReleaseWaitsAgain(t *testing.T) {
	for _, held := range []bool{false, true} {
		t.Run(fmt.Sprintf("held=%v", held), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
				require.NoError(t, b.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 1}))
				var offset int64
				if held {
					produce(t, b, "u", 0, "a")
				} else {
					produce(t, b, "u", 0, "x") // below the offset
					offset = 1
				}
				_, p, err := b.topicPartition(t.Context(), "t", 0, false)
				require.NoError(t, err)
				k, err := p.Lock(t.Context())
				require.NoError(t, err)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				var reads atomic.Int32
				setFetchReadHook(func() {
					if reads.Add(1) > 100 {
						cancel() // a wake storm: end it
					}
				})
				defer func() { setFetchReadHook(nil) }()
				done := goFetch(ctx, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
					Partitions: []api.FetchPartition{{Topic: "u", Offset: offset}, {Topic: "t"}}})
				synctest.Wait() // it went past t-0, and waits
				first := reads.Load()
				k.Unlock()
				synctest.Wait()
				select {
				case a := <-done:
					t.Fatalf("answered at the lock's release, after %d reads: %+v", reads.Load()-first, a)
				default:
				}
				require.LessOrEqual(t, reads.Load()-first, int32(2), "the wake read on")
				cancel()
				a := <-done
				if held {
					require.NoError(t, a.err)
					require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[0].Records))
				} else {
					require.ErrorIs(t, a.err, context.Canceled)
				}
			})
		})
	}
}

// TestFetchOfSeveralPartitionsWakeReadsWhatGrewBelowItsShare: a fetch of
// two partitions at their end, waiting for MinBytes, whose partition 0
// grew below its share (no wake), woken by an append to partition 1
// that brings MinBytes by itself, answers both: the wake reads again
// every partition whose high watermark moved, not only those whose wait
// was closed, as a read at the wake would (fetchStands). Mutant:
// fetchStands taking an open ChangedPast channel for a partition that
// stands, whatever its offsets (partition 0's records left out).
func TestFetchOfSeveralPartitionsWakeReadsWhatGrewBelowItsShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
		s := len(batch(t, "v00"))
		big := strings.Repeat("b", 3*s)
		reads := countFetchReads(t)
		// 2s+1 over 2: s+1 each, past partition 0's append.
		done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 2*s + 1,
			Partitions: []api.FetchPartition{{Topic: "t"}, {Topic: "t", Partition: 1}}})
		synctest.Wait()
		first := reads.Load()
		produce(t, b, "t", 0, "v00")
		synctest.Wait()
		require.Equal(t, first, reads.Load(), "partition 0's append, below its share, woke the fetch")
		produce(t, b, "t", 1, big)
		synctest.Wait()
		a := answeredNow(t, done, "the partitions hold MinBytes, and the fetch waits on (until MaxWait)")
		require.NoError(t, a.err)
		require.Equal(t, []string{"v00"}, values(t, a.resp.Partitions[0].Records))
		require.Equal(t, []string{big}, values(t, a.resp.Partitions[1].Records))
	})
}
