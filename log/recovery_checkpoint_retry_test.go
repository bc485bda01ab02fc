package log

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestMaintainRetriesFailedCheckpoint: a recovery-point checkpoint whose
// write failed (a full disk: its temp file cannot be created) is written
// at the next Maintain, though the durable offset has not moved since:
// the failure moved the recovery point in memory (as it must, for a
// truncation below it to write a lower one), and the next Maintain found
// it there and skipped the write, leaving the older checkpoint on disk.
func TestMaintainRetriesFailedCheckpoint(t *testing.T) {
	t.Run("Maintain", func(t *testing.T) {
		e, l, on, n := checkpointFailLog(t, Config{Sync: SyncAlways}, 5)
		defer l.Close()
		on.Store(true)
		err := l.Maintain(t.Context())
		require.ErrorIs(t, err, vfs.ErrInjected)
		require.NotErrorIs(t, err, ErrLogFenced)
		require.EqualValues(t, 1, n.Load())
		require.Zero(t, recoveryPointOnDisk(t, e.fs, e.dir))
		on.Store(false)
		require.NoError(t, l.Maintain(t.Context()))
		require.EqualValues(t, 5, recoveryPointOnDisk(t, e.fs, e.dir))
	})
	// Under SyncNever the fsync after a roll moves the recovery point to
	// the active segment's base; a failed write there is logged, and the
	// next Maintain's checkpoint (the durable offset at that base) writes
	// it.
	t.Run("SyncNeverRoll", func(t *testing.T) {
		e, l, on, n := checkpointFailLog(t, Config{Sync: SyncNever}, 3)
		defer l.Close()
		require.NoError(t, l.Roll())
		on.Store(true)
		require.NoError(t, l.Flush(t.Context())) // the checkpoint's failure is logged
		require.EqualValues(t, 1, n.Load())
		require.EqualValues(t, 3, l.DurableOffset())
		require.Zero(t, recoveryPointOnDisk(t, e.fs, e.dir))
		on.Store(false)
		require.NoError(t, l.Maintain(t.Context()))
		require.EqualValues(t, 3, recoveryPointOnDisk(t, e.fs, e.dir))
	})
}

// TestFailedCheckpointThenTruncation: after a failed checkpoint write a
// truncation below the offset it chose still lowers the checkpoint on
// disk to at most its cut, and the next Maintain writes the durable
// offset after the cut, not the offset the failed write chose.
func TestFailedCheckpointThenTruncation(t *testing.T) {
	e, l, on, _ := checkpointFailLog(t, Config{Sync: SyncAlways}, 5)
	defer l.Close()
	on.Store(true)
	require.ErrorIs(t, l.Maintain(t.Context()), vfs.ErrInjected)
	on.Store(false)
	_, err := l.TruncateTo(3)
	require.NoError(t, err)
	require.LessOrEqual(t, recoveryPointOnDisk(t, e.fs, e.dir), int64(3))
	require.NoError(t, l.Maintain(t.Context()))
	require.EqualValues(t, 3, recoveryPointOnDisk(t, e.fs, e.dir))
}

// checkpointFailLog opens a log of cfg on an FS where the recovery-point
// checkpoint's temporary file cannot be created while on is set (n counts
// the failures), and appends count batches.
func checkpointFailLog(t *testing.T, cfg Config, count int) (e *env, l *Log, on *atomic.Bool, n *atomic.Int32) {
	t.Helper()
	e = newEnv(t)
	on, n = new(atomic.Bool), new(atomic.Int32)
	e.fs = failCreateFS(recoveryPointFile+tmpSuffix, on, n)
	l = e.open(cfg)
	for i := range count {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), "v"))
	}
	return e, l, on, n
}
