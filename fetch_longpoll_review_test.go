package runnel

// A review of the long poll of several partitions on one log.Wake
// (2026-12-07): what its waits leave behind, and what a fetch of MinBytes
// 1 does when its ctx ends. Each test names the change to the code (the
// mutant) that it fails with.

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
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
