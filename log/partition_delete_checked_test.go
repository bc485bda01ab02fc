package log

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/internal/testkit"
)

// TestPartitionDeleteRecordsChecked: the check sees the configuration and
// high watermark of the log it deletes from; a Reopen that starts during
// the check waits until the deletion is done; the check's error is
// returned with nothing deleted.
func TestPartitionDeleteRecordsChecked(t *testing.T) {
	e := newEnv(t)
	p := NewPartition("t", 0, e.open(Config{CleanupPolicy: Delete}))
	appendOK(t, p.Log(), valueBatch(t, 1, "a"))
	appendOK(t, p.Log(), valueBatch(t, 1, "b"))
	appendOK(t, p.Log(), valueBatch(t, 1, "c"))

	refuse := errors.New("refused")
	low, err := p.DeleteRecordsChecked(context.Background(), func(Config, int64) (int64, error) { return 2, refuse })
	require.ErrorIs(t, err, refuse)
	require.Zero(t, low)
	require.Zero(t, p.LogStartOffset(), "nothing deleted")

	reopened := make(chan error, 1)
	low, err = p.DeleteRecordsChecked(context.Background(), func(cfg Config, hw int64) (int64, error) {
		require.Equal(t, Delete, cfg.CleanupPolicy)
		require.EqualValues(t, 3, hw)
		go func() {
			reopened <- p.Reopen(func() (*Log, error) { return e.open(Config{CleanupPolicy: Compact}), nil })
		}()
		// The Reopen waits for this hold: once it does, new readers are
		// held back too, which TryRLock tells.
		for p.mu.TryRLock() {
			p.mu.RUnlock()
			runtime.Gosched()
		}
		return 2, nil
	})
	require.NoError(t, err)
	require.EqualValues(t, 2, low)
	require.NoError(t, testkit.Await(t, reopened, "Reopen's answer"))
	require.Equal(t, Compact, p.Log().Config().CleanupPolicy)
	require.EqualValues(t, 2, p.LogStartOffset(), "deleted from the old log, kept by the new")
}

// TestPartitionDeleteRecordsAboveHighWatermark: a partition refuses to
// delete records above its high watermark — under SyncAlways, records
// appended and not yet fsynced, which no consumer can read yet — with
// ErrOffsetOutOfRange, as Kafka's UnifiedLog.maybeIncrementLogStartOffset
// does, through DeleteRecordsBefore and through DeleteRecordsChecked
// whatever its check returns; it took them, up to the log end.
func TestPartitionDeleteRecordsAboveHighWatermark(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncAlways})
	p := NewPartition("t", 0, l)
	appendOK(t, l, valueBatch(t, 1, "a", "b")) // 0-1, fsynced
	_, d, err := l.AppendAsync(context.Background(), valueBatch(t, 1, "c"), AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, PartitionOffsets{LogStart: 0, HighWatermark: 2, LogEnd: 3}, p.Offsets())

	_, err = p.DeleteRecordsBefore(context.Background(), 3)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	_, err = p.DeleteRecordsChecked(context.Background(), func(Config, int64) (int64, error) { return 3, nil })
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	require.Zero(t, p.LogStartOffset(), "nothing deleted")

	low, err := p.DeleteRecordsBefore(context.Background(), 2) // at the high watermark
	require.NoError(t, err)
	require.EqualValues(t, 2, low)
	require.NoError(t, d.Wait(context.Background()))
	low, err = p.DeleteRecordsBefore(context.Background(), 3)
	require.NoError(t, err, "once fsynced, below the high watermark")
	require.EqualValues(t, 3, low)
	require.NoError(t, l.Close())
}
