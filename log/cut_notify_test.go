package log

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestOnCutFailedCalls: a call that failed after it moved the log start
// calls OnCut's f all the same — a DeleteRecordsBefore or ApplyRetention
// on a full disk (the segments removed, the checkpoint not written, the
// log not fenced), a DeleteRecordsBefore whose checkpoint is in place but
// whose directory fsync failed (the log fenced) — and one refused before
// it moved anything does not. f runs once the log's lock is released: it
// may call the log's methods, a DeleteRecordsBefore included (under the
// lock it would deadlock).
func TestOnCutFailedCalls(t *testing.T) {
	for _, how := range []string{"retention", "delete-records", "in-place"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			var full, syncDir atomic.Bool
			e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if syncDir.Load() && op == vfs.OpSyncDir {
					return fmt.Errorf("%w: sync dir", vfs.ErrInjected)
				}
				return fullDisk(&full).MaybeError(op, name)
			}))
			l := e.open(Config{SegmentBytes: 400, RetentionBytes: 1000})
			defer l.Close()
			for i := range 30 {
				appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), fmt.Sprint(i)))
			}
			var cuts []Offsets
			l.OnCut(func() {
				o := l.Offsets()
				_, err := l.DeleteRecordsBefore(context.Background(), o.Start) // cuts nothing: no call back
				if how == "in-place" {
					require.ErrorIs(t, err, ErrLogFenced)
				} else {
					require.NoError(t, err)
				}
				cuts = append(cuts, o)
			})
			_, err := l.DeleteRecordsBefore(context.Background(), 31)
			require.ErrorIs(t, err, ErrOffsetOutOfRange)
			require.Empty(t, cuts, "a refused call cut nothing")
			start := l.LogStartOffset()
			switch how {
			case "retention":
				full.Store(true)
				_, err = l.ApplyRetention(context.Background())
				require.ErrorIs(t, err, vfs.ErrInjected)
			case "delete-records":
				full.Store(true)
				_, err = l.DeleteRecordsBefore(context.Background(), 20)
				require.ErrorIs(t, err, vfs.ErrInjected)
			case "in-place":
				syncDir.Store(true)
				_, err = l.DeleteRecordsBefore(context.Background(), 29)
				require.ErrorIs(t, err, ErrLogFenced)
				require.EqualValues(t, 29, l.LogStartOffset())
			}
			require.Greater(t, l.LogStartOffset(), start)
			require.Equal(t, []Offsets{l.Offsets()}, cuts, "the failed call's cut was not told")
		})
	}
}

// TestOnCutRemoved: OnCut(nil) removes the function a truncation
// called.
func TestOnCutRemoved(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	for range 3 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "v"))
	}
	var calls atomic.Int32
	l.OnCut(func() { calls.Add(1) })
	_, err := l.TruncateTo(2)
	require.NoError(t, err)
	require.EqualValues(t, 1, calls.Load())
	l.OnCut(nil)
	_, err = l.TruncateTo(1)
	require.NoError(t, err)
	require.EqualValues(t, 1, calls.Load())
}
