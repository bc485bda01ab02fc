package runnel

// A review of the long poll of several partitions on one log.Wake
// (2026-12-07): what its waits leave behind, and what a fetch of MinBytes
// 1 does when its ctx ends. Each test names the change to the code (the
// mutant) that it fails with.

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// waitsHeld returns how many waits of Wakes (or ChangedPast) p's heap
// holds, read under p's notifyMu (both unexported: read through reflect,
// as package runnel cannot see them).
func waitsHeld(t *testing.T, p *log.Partition) int {
	t.Helper()
	v := reflect.ValueOf(p).Elem()
	mu := v.FieldByName("notifyMu")
	require.True(t, mu.IsValid(), "log.Partition has no notifyMu")
	lock := (*sync.Mutex)(unsafe.Pointer(mu.UnsafeAddr()))
	lock.Lock()
	defer lock.Unlock()
	w := v.FieldByName("waiters")
	require.True(t, w.IsValid(), "log.Partition has no waiters")
	return w.Len()
}

// TestFetchLongPollLeavesNoWaits: fetches of several partitions that wait
// on a log.Wake (MinBytes 1, and more) leave none of their waits in the
// partitions' heaps once they answered, however their wait ended: their
// ctx, MaxWait, an append to one partition (the others' waits were not
// met), the broker's closing not looked at here (it closes the
// partitions, which empties the heaps). A wait left there is looked at by
// every append to the partition after it, and holds its Wake. Kills:
// Wake.Stop not called where the wait ended with ctx or MaxWait (only at
// a wake), and Stop leaving the waits that did not fire in their heaps.
func TestFetchLongPollLeavesNoWaits(t *testing.T) {
	const parts, fetches = 3, 20
	for _, c := range []struct {
		name     string
		minBytes int
		end      string // "ctx", "MaxWait" or "append"
	}{
		{"a byte/ctx", 1, "ctx"},
		{"a byte/MaxWait", 1, "MaxWait"},
		{"a byte/append", 1, "append"},
		{"more/ctx", 1 << 20, "ctx"},
		{"more/MaxWait", 1 << 20, "MaxWait"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: parts}))
				ps := make([]*log.Partition, parts)
				req := &api.FetchRequest{MaxWait: time.Hour, MinBytes: c.minBytes}
				for i := range int32(parts) {
					produce(t, b, "t", i, fmt.Sprint("x", i))
					_, p, err := b.topicPartition(t.Context(), "t", i, false)
					require.NoError(t, err)
					ps[i] = p
					req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "t", Partition: i, Offset: 1})
				}
				// The same partition twice too: two waits on it.
				req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "t", Partition: 0, Offset: 1})
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				dones := make([]<-chan fetchAnswer, fetches)
				for i := range dones {
					dones[i] = goFetch(ctx, b, req)
				}
				synctest.Wait()
				held := 0
				for _, p := range ps {
					held += waitsHeld(t, p)
				}
				require.Equal(t, fetches*len(req.Partitions), held, "the fetches wait, each partition of each in its heap")
				switch c.end {
				case "ctx":
					cancel()
				case "MaxWait":
					time.Sleep(time.Hour)
				case "append":
					produce(t, b, "t", 1, "a")
				}
				synctest.Wait()
				for i, done := range dones {
					a := answeredNow(t, done, fmt.Sprintf("fetch %d did not answer at its end (%s)", i, c.end))
					switch c.end {
					case "ctx":
						require.ErrorIs(t, a.err, context.Canceled)
					case "append":
						require.NoError(t, a.err)
						require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[1].Records))
					default:
						require.NoError(t, a.err)
					}
				}
				for i, p := range ps {
					require.Zero(t, waitsHeld(t, p), "partition %d holds waits of fetches that answered", i)
				}
			})
		})
	}
}

// TestFetchLongPollCtxEndReadsNothingAgain: a fetch of several partitions
// that wants a byte (a consumer's long poll), found nothing and waits,
// answers ctx's error when its ctx ends, without reading its partitions
// again: any append would have woken it, so a read then finds nothing it
// was not woken for (a fetch that wants more than a byte reads once more,
// as the appends that did not bring MinBytes did not wake it:
// TestFetchCtxEndAnswersWhatTheWakesFound). Since 2026-12-07 such a fetch
// takes its partitions' marks as one that wants more does, and the read
// again depends on want, not on marks. Kills: the read again at ctx's end
// made where marks is not nil (as before 2026-12-07), or always.
func TestFetchLongPollCtxEndReadsNothingAgain(t *testing.T) {
	const parts = 4
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: parts}))
		req := &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1}
		for i := range int32(parts) {
			produce(t, b, "t", i, fmt.Sprint("x", i))
			req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "t", Partition: i, Offset: 1})
		}
		reads := countFetchReads(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := goFetch(ctx, b, req)
		synctest.Wait()
		require.EqualValues(t, parts, reads.Load(), "the first read")
		cancel()
		synctest.Wait()
		a := answeredNow(t, done, "the fetch did not answer at its ctx's end")
		require.ErrorIs(t, a.err, context.Canceled)
		require.EqualValues(t, parts, reads.Load(), "reads after ctx's end")
	})
}

// TestFetchOfNoPartitionWaitsMaxWaitOrCtx: a fetch that names no
// partition (nothing to read, nothing to be woken by) waits until its
// MaxWait, and answers then with nothing and no error, or until its ctx
// ends, and answers ctx's error (TestFetchEndsWithClose: or until the
// broker closes). Its wait is waitOne's on no channel (a nil one), since
// 2026-12-07 as before in waitAny. Kills: a fetch of no partition waiting
// on a channel that is closed (it spins, reading nothing), or answering
// at once.
func TestFetchOfNoPartitionWaitsMaxWaitOrCtx(t *testing.T) {
	for _, minBytes := range []int{1, 1 << 20} {
		t.Run(fmt.Sprint("MinBytes=", minBytes), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
				req := &api.FetchRequest{MaxWait: time.Hour, MinBytes: minBytes}
				start := time.Now()
				done := goFetch(t.Context(), b, req)
				synctest.Wait()
				select {
				case a := <-done:
					t.Fatalf("answered before MaxWait: %+v", a)
				default:
				}
				time.Sleep(time.Hour)
				synctest.Wait()
				a := answeredNow(t, done, "no answer at MaxWait")
				require.NoError(t, a.err)
				require.Empty(t, a.resp.Partitions)
				require.Equal(t, time.Hour, a.at.Sub(start), "answered at MaxWait")

				ctx, cancel := context.WithCancel(t.Context())
				done = goFetch(ctx, b, req)
				synctest.Wait()
				cancel()
				synctest.Wait()
				a = answeredNow(t, done, "no answer at ctx's end")
				require.ErrorIs(t, a.err, context.Canceled)
			})
		})
	}
}

// TestFetchLongPollStressLosesNoWake: on the real clock, consumers
// long-poll several partitions (MinBytes 1, one partition named twice,
// MaxWait an hour) while producers append to them and a locker takes and
// releases their locks (a long poll goes past a partition held, Busy,
// and its release wakes it): every consumer gets every record, each poll
// answered by the appends and not by its MaxWait. A wake lost in the
// races of the Wake's waits with the appends (a mark taken, the read,
// the wait added, fired, stopped, the partitions read again only where
// their wait fired or their offsets moved) leaves a consumer waiting an
// hour: the test fails at its guard. Under SyncNever and SyncAlways
// (the fsync's wake).
func TestFetchLongPollStressLosesNoWake(t *testing.T) {
	const parts, producers, perProducer, consumers = 5, 3, 400, 3
	for _, sync := range []log.SyncPolicy{log.SyncNever, log.SyncAlways} {
		t.Run(fmt.Sprint("sync=", sync), func(t *testing.T) {
			b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
			require.NoError(t, b.CreateTopic(t.Context(), "s", log.TopicConfig{Partitions: parts, Config: log.Config{Sync: sync}}))
			ps := make([]*log.Partition, parts)
			for i := range ps {
				_, p, err := b.topicPartition(t.Context(), "s", int32(i), false)
				require.NoError(t, err)
				ps[i] = p
			}
			ctx, cancel := context.WithTimeout(t.Context(), testkit.HangGuard)
			defer cancel()
			// Each producer appends perProducer records round the
			// partitions, so that partition i gets perPart[i] of them.
			var perPart [parts]int
			for pr := range producers {
				for j := range perProducer {
					perPart[(pr+j)%parts]++
				}
			}
			produced := make(chan error, producers)
			for pr := range producers {
				go func() {
					for j := range perProducer {
						_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "s", Partition: int32((pr + j) % parts), Acks: api.AcksAll, Batches: batch(t, fmt.Sprint(pr, "-", j))})
						if err != nil {
							produced <- err
							return
						}
					}
					produced <- nil
				}()
			}
			loops := testkit.NewLoops(t)
			loops.Go(func(i int) {
				k, err := ps[i%parts].Lock(ctx)
				if err != nil {
					return
				}
				runtime.Gosched()
				k.Unlock()
			})
			consumed := make(chan error, consumers)
			for range consumers {
				go func() {
					req := &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1}
					for i := range int32(parts) {
						req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "s", Partition: i})
					}
					req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "s", Partition: 2})
					want := make([]int, len(req.Partitions))
					for i, fp := range req.Partitions {
						want[i] = perPart[fp.Partition]
					}
					got := make([]int, len(req.Partitions))
					for !slices.Equal(got, want) {
						resp, err := b.Fetch(ctx, req)
						if err != nil {
							consumed <- fmt.Errorf("got %v of %v: %w", got, want, err)
							return
						}
						n := 0
						for i, fp := range resp.Partitions {
							if fp.Err != nil {
								consumed <- fmt.Errorf("entry %d: %w", i, fp.Err)
								return
							}
							for bt, err := range record.Batches(fp.Records) {
								if err != nil {
									consumed <- fmt.Errorf("entry %d: %w", i, err)
									return
								}
								got[i] += int(bt.NumRecords())
								n += int(bt.NumRecords())
							}
							req.Partitions[i].Offset = nextAfter(fp.Records, req.Partitions[i].Offset)
						}
						if n == 0 {
							consumed <- fmt.Errorf("a poll answered with nothing (got %v of %v)", got, want)
							return
						}
					}
					consumed <- nil
				}()
			}
			for range producers {
				require.NoError(t, testkit.Await(t, produced, "a producer's end"))
			}
			// No change after the last append and lock release wakes a
			// consumer whose wake those lost.
			loops.Stop()
			for range consumers {
				require.NoError(t, testkit.Await(t, consumed, "a consumer's last record (a lost wake leaves it waiting its MaxWait)"))
			}
			for i, p := range ps {
				require.Zero(t, waitsHeld(t, p), "partition %d holds waits of fetches that answered", i)
			}
		})
	}
}

// doneCtx is a ctx of the application's own type whose Done panics.
type doneCtx struct{ context.Context }

func (doneCtx) Done() <-chan struct{} { panic("runnel test: ctx.Done") }

// TestFetchLongPollCtxDonePanicLeavesNoWaits: a fetch of several
// partitions that waits, whose ctx is of the application's own type and
// panics in Done, panics with it (as a select on ctx.Done() would), and
// leaves no wait in the partitions' heaps: it took the ctx's Done
// channel before it added its partitions' waits to its log.Wake. Its
// waits stayed there before (since 2026-12-07 those of a long poll of
// MinBytes 1 too, until the next append to each partition; those of one
// that wants more, until a change other than an append where a wait was
// for no append at all), each holding the fetch's Wake. Fails without
// the fix (ctx.Done() called in waitOne, after byteWait's adds).
func TestFetchLongPollCtxDonePanicLeavesNoWaits(t *testing.T) {
	const parts = 3
	for _, minBytes := range []int{1, 1 << 20} {
		t.Run(fmt.Sprint("MinBytes=", minBytes), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: parts}))
				ps := make([]*log.Partition, parts)
				req := &api.FetchRequest{MaxWait: time.Hour, MinBytes: minBytes}
				for i := range int32(parts) {
					produce(t, b, "t", i, fmt.Sprint("x", i))
					_, p, err := b.topicPartition(t.Context(), "t", i, false)
					require.NoError(t, err)
					ps[i] = p
					req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "t", Partition: i, Offset: 1})
				}
				panicked := make(chan any, 1)
				go func() {
					defer func() { panicked <- recover() }()
					_, _ = b.Fetch(doneCtx{t.Context()}, req)
				}()
				synctest.Wait()
				select {
				case r := <-panicked:
					require.Equal(t, "runnel test: ctx.Done", r, "the fetch's panic")
				default:
					t.Fatal("the fetch did not panic with its ctx's Done")
				}
				for i, p := range ps {
					require.Zero(t, waitsHeld(t, p), "partition %d holds waits of a fetch that panicked", i)
				}
			})
		})
	}
}
