package log

import (
	"bytes"
	"context"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// An append whose roll cannot create the new segment's files fails with
// ErrRollFailed having written nothing, and, as Append's doc promises of
// every refusal but a failed write, leaves the caller's bytes as they
// were: a producer that retries the same bytes (ErrRollFailed is
// retriable, KAFKA_STORAGE_ERROR) has them appended. The old code
// assigned the offsets (and the LogAppendTime, with the CRC) before the
// roll, so the retry was refused as a batch whose base offset is not 0
// (ErrInvalidRecord, not retriable).
func TestReview28RollFailedLeavesDataAsItWas(t *testing.T) {
	for _, ts := range []TimestampType{CreateTime, LogAppendTime} {
		t.Run(ts.String(), func(t *testing.T) {
			var armed atomic.Bool
			fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if armed.Load() && op == vfs.OpCreate && filepath.Ext(name) == ".log" {
					return syscall.EMFILE
				}
				return nil
			}))
			cfg := Config{SegmentBytes: 200, TimestampType: ts}
			l, err := Open("/p", cfg, Options{FS: fsys, Clock: newClock()})
			require.NoError(t, err)
			defer l.Close()
			appendOK(t, l, valueBatch(t, 1, string(make([]byte, 150))))
			// A max timestamp the log corrects on a CreateTime topic (the
			// records' largest is 2), so that every kind of rewrite is
			// tried.
			data := valueBatch(t, 2, "two")
			record.Batch(data).SetCreateTime(-1)
			orig := bytes.Clone(data)
			armed.Store(true)
			_, err = l.Append(context.Background(), data, AppendOptions{LeaderEpoch: 3})
			require.ErrorIs(t, err, ErrRollFailed)
			require.Equal(t, orig, data, "the refused append changed the caller's bytes")
			armed.Store(false)
			res, err := l.Append(context.Background(), data, AppendOptions{LeaderEpoch: 3})
			require.NoError(t, err, "the retry of the same bytes")
			require.Equal(t, int64(1), res.FirstOffset)
		})
	}
}
