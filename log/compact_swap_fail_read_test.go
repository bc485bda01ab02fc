package log

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestSwapFailedReadsAreNotOutOfRange: a compaction swap that fails once
// it has begun to delete the segments it replaces (their removal, the
// directory's fsync, the rename of the cleaned segment to its final
// name) fences the log with those segments closed, and the cleaned one
// not yet in their place (the next Open completes the swap). A read of
// their offsets then fails with the log's ErrLogFenced (Kafka's
// retriable KAFKA_STORAGE_ERROR), as the log start and end still say
// those offsets are there, and so does a look-up by time that reads them:
// before, both failed with ErrOffsetOutOfRange, on which a consumer at
// the log start resets its position to the log start again, for ever, or
// past the records to the end. The failed swap calls OnCut's f (once),
// so that a partition's readers waiting on it are woken to find so
// (TestFetchWaitHoldingRecordsSeesAFailedSwap in the root package).
func TestSwapFailedReadsAreNotOutOfRange(t *testing.T) {
	for _, step := range []struct {
		op   vfs.Op
		name string
	}{
		{vfs.OpRemove, segment.FileName(0, segment.LogSuffix)},
		{vfs.OpSyncDir, ""}, // the one after the removals
		{vfs.OpRename, segment.FileName(0, segment.LogSuffix+swapSuffix)},
	} {
		t.Run(fmt.Sprintf("%v %s", step.op, step.name), func(t *testing.T) {
			e := newEnv(t)
			var armed, deleting atomic.Bool
			e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if !armed.Load() {
					return nil
				}
				if op == vfs.OpRemove && filepath.Ext(name) == segment.LogSuffix {
					deleting.Store(true) // a replaced segment's: past the swap's commit point
				}
				if deleting.Load() && op == step.op && (step.name == "" || filepath.Base(name) == step.name) {
					armed.Store(false)
					return vfs.ErrInjected
				}
				return nil
			}))
			l := e.open(Config{SegmentBytes: 1000, CleanupPolicy: Compact})
			defer l.Close()
			now := e.clock.Now().UnixMilli()
			for i := range 6 {
				appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: fmt.Appendf(nil, "v%d", i), ts: now}))
				if i%2 == 1 {
					require.NoError(t, l.Roll())
				}
			}
			var cuts atomic.Int32
			l.OnCut(func() { cuts.Add(1) })
			armed.Store(true)
			_, err := l.Compact(context.Background())
			require.ErrorIs(t, err, ErrLogFenced)
			require.ErrorIs(t, err, vfs.ErrInjected)
			require.EqualValues(t, 1, cuts.Load(), "OnCut not called: a reader waiting on the partition is not told its offsets fail now")

			_, err = l.Read(l.LogStartOffset(), 1<<20, math.MaxInt64)
			require.NotErrorIs(t, err, ErrOffsetOutOfRange, "offset %d is the log start", l.LogStartOffset())
			require.ErrorIs(t, err, ErrLogFenced)
			_, _, err = l.OffsetForTime(now)
			require.NotErrorIs(t, err, ErrOffsetOutOfRange, "a look-up by time")
			require.ErrorIs(t, err, ErrLogFenced, "a look-up by time")

			// The next Open completes the swap: the key's last value is there.
			require.NoError(t, l.Close())
			l = e.open(Config{SegmentBytes: 1000, CleanupPolicy: Compact})
			var last string
			for _, b := range batchesOf(t, l) {
				for r, err := range b.Records() {
					require.NoError(t, err)
					last = string(r.Value)
				}
			}
			require.Equal(t, "v5", last)
		})
	}
}

// TestReadOvertakenByASwapWaitsForItsListing: a read, and a search by
// time, overtaken by a compaction's swap that has closed the segments it
// replaces (their offsets still the log's) and not yet listed the cleaned
// one (here held in the rename of the cleaned segment to its final name,
// the writer lock held, the segments no longer pinned) wait for the swap
// to list it, and answer from it: the listing holds closed segments, so
// it is not settled (listingSettled), and the read does not look again
// at once, as it does behind a removal (885c5008). Looking again at once,
// each attempt would find the same closed segments, and the read would
// answer ErrOffsetOutOfRange for offsets the log holds. It passes; it
// fails with listingSettled always true.
func TestReadOvertakenByASwapWaitsForItsListing(t *testing.T) {
	for _, search := range []bool{false, true} {
		t.Run(map[bool]string{false: "read", true: "search"}[search], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t)
				var armed, deleting atomic.Bool
				entered, release := make(chan struct{}), make(chan struct{})
				e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
					if !armed.Load() {
						return nil
					}
					if op == vfs.OpRemove && filepath.Ext(name) == segment.LogSuffix {
						deleting.Store(true) // a replaced segment's
					}
					if deleting.Load() && op == vfs.OpRename && filepath.Base(name) == segment.FileName(0, segment.LogSuffix+swapSuffix) {
						armed.Store(false)
						close(entered)
						<-release
					}
					return nil
				}))
				var once sync.Once
				unstick := func() { once.Do(func() { close(release) }) }
				l := e.open(Config{CleanupPolicy: Compact, MinCleanableDirtyRatio: -1, RetentionTime: -1})
				defer l.Close()
				defer unstick()    // before the Close, which waits for the swap
				for i := range 2 { // the second round supersedes the first
					for _, k := range []string{"a", "b", "c"} {
						appendOK(t, l, batchOf(t, compression.None, kv{[]byte(k), []byte("v"), int64(100 + 10*i)}))
					}
					require.NoError(t, l.Roll())
				}

				armed.Store(true)
				compacted := make(chan error, 1)
				go func() {
					_, err := l.Compact(context.Background())
					compacted <- err
				}()
				<-entered // the replaced segments closed, the cleaned one not listed

				type answer struct {
					data []byte
					off  int64
					ok   bool
					err  error
				}
				done := make(chan answer, 1)
				go func() {
					var a answer
					if search {
						a.off, a.ok, a.err = l.OffsetForTime(0) // in the replaced segments
					} else {
						a.data, a.err = l.ReadInto(nil, 0, 1<<20, math.MaxInt64)
					}
					done <- a
				}()
				synctest.Wait()
				select {
				case a := <-done:
					t.Fatalf("answered (%v, %v) while the swap had not listed the cleaned segment", a.err, a.ok)
				default: // waits for the swap
				}
				unstick()
				require.NoError(t, <-compacted)
				a := <-done
				require.NoError(t, a.err)
				if search {
					require.True(t, a.ok)
					require.EqualValues(t, 3, a.off, "the first record the cleaned segment kept")
				} else {
					require.NotEmpty(t, a.data)
					require.EqualValues(t, 3, record.Batch(a.data).BaseOffset(), "the first batch the cleaned segment kept")
				}
			})
		})
	}
}
