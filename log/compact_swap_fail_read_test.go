package log

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/compression"
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
// past the records to the end.
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
			armed.Store(true)
			_, err := l.Compact(context.Background())
			require.ErrorIs(t, err, ErrLogFenced)
			require.ErrorIs(t, err, vfs.ErrInjected)

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
