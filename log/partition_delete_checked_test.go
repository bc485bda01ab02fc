package log

import (
	"errors"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
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
	low, err := p.DeleteRecordsChecked(func(Config, int64) (int64, error) { return 2, refuse })
	require.ErrorIs(t, err, refuse)
	require.Zero(t, low)
	require.Zero(t, p.LogStartOffset(), "nothing deleted")

	reopened := make(chan error, 1)
	low, err = p.DeleteRecordsChecked(func(cfg Config, hw int64) (int64, error) {
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
	require.NoError(t, <-reopened)
	require.Equal(t, Compact, p.Log().Config().CleanupPolicy)
	require.EqualValues(t, 2, p.LogStartOffset(), "deleted from the old log, kept by the new")
}
