package log

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// failCreateFS returns a MemFS under an injector that fails the
// Create of a file whose name ends in suffix while *on is set, counting
// the calls it failed in *n.
func failCreateFS(suffix string, on *atomic.Bool, n *atomic.Int32) vfs.FS {
	return vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && on.Load() && strings.HasSuffix(name, suffix) {
			n.Add(1)
			return vfs.ErrInjected
		}
		return nil
	}))
}

// requireWhole requires l's records to be those at offsets
// [start, end), each once, in order.
func requireWhole(t *testing.T, l *Log) {
	t.Helper()
	start, end := l.LogStartOffset(), l.LogEndOffset()
	require.LessOrEqual(t, start, end)
	recs := readAll(t, l, start)
	require.Len(t, recs, int(end-start), "start %d end %d", start, end)
	for i, r := range recs {
		require.EqualValues(t, start+int64(i), r.Offset)
	}
}

// TestTruncateToBelowStartCheckpointFails: a truncation into the
// batch holding the log start offset (DeleteRecordsBefore moved it inside
// that batch) cuts at the batch's base, below the start, and must move the
// start down to it; when that checkpoint cannot be written, TruncateTo
// fences the log (its doc: a failed file-system step fences it), and the
// reopened log is whole, start at most end.
func TestTruncateToBelowStartCheckpointFails(t *testing.T) {
	e := newEnv(t)
	var on atomic.Bool
	var n atomic.Int32
	e.fs = failCreateFS(logStartFile+tmpSuffix, &on, &n)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a", "b", "c"))
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "d", "e", "f")) // 3..5
	start, err := l.DeleteRecordsBefore(context.Background(), 4)
	require.NoError(t, err)
	require.EqualValues(t, 4, start)

	on.Store(true)
	_, err = l.TruncateTo(4) // the batch holding 4 begins at 3
	require.ErrorIs(t, err, ErrLogFenced)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.Positive(t, n.Load())
	o := l.Offsets()
	require.LessOrEqual(t, o.Start, o.End)
	_, err = l.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "g"), AppendOptions{})
	require.ErrorIs(t, err, ErrLogFenced)
	on.Store(false)
	l.Close()

	l = e.open(cfg)
	defer l.Close()
	require.LessOrEqual(t, l.LogEndOffset(), int64(4))
	requireWhole(t, l)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "g"))
	requireWhole(t, l)
}

// TestTruncateToRecoveryCheckpointFails: a truncation below the
// recovery point lowers it, on disk too; when that checkpoint cannot be
// written TruncateTo fences the log, and the reopened log (its recovery
// checkpoint past its end) holds what the truncation kept, whole.
func TestTruncateToRecoveryCheckpointFails(t *testing.T) {
	e := newEnv(t)
	var on atomic.Bool
	var n atomic.Int32
	e.fs = failCreateFS(recoveryPointFile+tmpSuffix, &on, &n)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for i := range 9 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, string(rune('a'+i))))
		if i%3 == 2 {
			require.NoError(t, l.Roll()) // segments at 0, 3, 6, 9; recovery point 9
		}
	}
	on.Store(true)
	_, err := l.TruncateTo(4)
	require.ErrorIs(t, err, ErrLogFenced)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.Positive(t, n.Load())
	on.Store(false)
	l.Close()

	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 4, l.LogEndOffset())
	requireWhole(t, l)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "x"))
	requireWhole(t, l)
}

// TestDeleteRecordsSecondCheckpointFails: DeleteRecordsBefore
// whose start checkpoint could not be written deletes the whole segments
// below the offset first (to make room) and writes it again; when that
// second write fails too, it returns the error without fencing the log,
// whose start is then the first kept segment's base, and a retry moves it.
func TestDeleteRecordsSecondCheckpointFails(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	e.fs = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && strings.HasSuffix(name, logStartFile+tmpSuffix) {
			// The first (offset) and third (offset again) fail, the
			// second (the segment's base, in deleteSegmentsLocked) not.
			switch calls.Add(1) {
			case 1, 3:
				return vfs.ErrInjected
			}
		}
		return nil
	}))
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	defer l.Close()
	for i := range 9 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, string(rune('a'+i))))
		if i%3 == 2 {
			require.NoError(t, l.Roll())
		}
	}
	_, err := l.DeleteRecordsBefore(context.Background(), 7)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.NotErrorIs(t, err, ErrLogFenced)
	require.EqualValues(t, 3, calls.Load())
	require.EqualValues(t, 6, l.LogStartOffset())
	requireWhole(t, l)
	start, err := l.DeleteRecordsBefore(context.Background(), 7)
	require.NoError(t, err)
	require.EqualValues(t, 7, start)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "x"))
	requireWhole(t, l)
}

// TestDeleteRecordsCheckpointAfterRemovalFails: when the start
// checkpoint could not be written at all, the segments below the new
// start go first (to make room) and the checkpoint is written after them;
// when that write fails past the point of leaving the old checkpoint in
// place (its rename), the log is fenced — and the reopened log starts at
// a segment's base with what it held whole.
func TestDeleteRecordsCheckpointAfterRemovalFails(t *testing.T) {
	e := newEnv(t)
	var creates atomic.Int32
	e.fs = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if !strings.HasSuffix(name, logStartFile+tmpSuffix) {
			return nil
		}
		switch {
		case op == vfs.OpCreate && creates.Add(1) <= 2:
			return vfs.ErrInjected // DeleteRecordsBefore's, deleteSegmentsLocked's
		case op == vfs.OpRename && creates.Load() == 3:
			return vfs.ErrInjected // deleteSegmentsLocked's after the removal
		}
		return nil
	}))
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for i := range 9 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, string(rune('a'+i))))
		if i%3 == 2 {
			require.NoError(t, l.Roll()) // segments at 0, 3, 6, 9
		}
	}
	_, err := l.DeleteRecordsBefore(context.Background(), 7)
	require.ErrorIs(t, err, ErrLogFenced)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.EqualValues(t, 3, creates.Load())
	o := l.Offsets()
	require.LessOrEqual(t, o.Start, o.End)
	l.Close()

	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 9, l.LogEndOffset())
	require.Contains(t, []int64{0, 6}, l.LogStartOffset())
	requireWhole(t, l)
}

// TestDeleteRecordsSnapshotRenameFails: moving the log start
// past the producers' batches needs a producer-state snapshot at or past
// it first; one whose write failed at its rename (not a full disk: the
// snapshot may or may not be in place) fences the log, the start where it
// was, and the reopened log keeps the producer's state.
func TestDeleteRecordsSnapshotRenameFails(t *testing.T) {
	e := newEnv(t)
	var on atomic.Bool
	var n atomic.Int32
	e.fs = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpRename && on.Load() && strings.HasSuffix(name, snapshotSuffix+tmpSuffix) {
			n.Add(1)
			return vfs.ErrInjected
		}
		return nil
	}))
	cfg := Config{Sync: SyncAlways, RetentionTime: -1}
	l := e.open(cfg)
	for seq := range int32(3) {
		appendOK(t, l, keyedProducerBatch(t, seq, "k"))
	}
	on.Store(true)
	_, err := l.DeleteRecordsBefore(context.Background(), 2)
	require.ErrorIs(t, err, ErrLogFenced)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.Positive(t, n.Load())
	require.EqualValues(t, 0, l.LogStartOffset())
	on.Store(false)
	l.Close()

	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 0, l.LogStartOffset())
	requireWhole(t, l)
	requireDuplicate(t, l, keyedProducerBatch(t, 2, "k"), 2)
	appendOK(t, l, keyedProducerBatch(t, 3, "k"))
}

// TestDeleteRecordsEpochCheckpointNotWritten: once the log start offset's
// checkpoint is written, a leader epoch checkpoint that cannot be written
// at all (its temporary file: a full disk, as on ext4 just after the
// segments below the start were removed, whose blocks come back only at
// the journal's next commit) fails nothing: the start has moved, the
// epochs below it are dropped in memory, and the checkpoint keeps them
// until its next write, as after a crash between the two writes, which
// Open mends. It used to fence the log (a flake of
// TestDiskFullFreeSpace/ext4 showed it: "DeleteRecords on a full disk").
func TestDeleteRecordsEpochCheckpointNotWritten(t *testing.T) {
	e := newEnv(t)
	var on atomic.Bool
	var n atomic.Int32
	e.fs = failCreateFS(leaderEpochFile+tmpSuffix, &on, &n)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a", "b", "c"))
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "d", "e", "f")) // 3..5
	require.Equal(t, []EpochEntry{{Epoch: 0, StartOffset: 0}}, l.LeaderEpochs())

	on.Store(true)
	start, err := l.DeleteRecordsBefore(context.Background(), 4)
	require.NoError(t, err)
	require.EqualValues(t, 4, start)
	require.Positive(t, n.Load(), "the epochs' checkpoint was not tried")
	require.Equal(t, []EpochEntry{{Epoch: 0, StartOffset: 4}}, l.LeaderEpochs())
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "g")) // not fenced
	requireWhole(t, l)
	on.Store(false)
	require.NoError(t, l.Close())

	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 4, l.LogStartOffset())
	require.EqualValues(t, 7, l.LogEndOffset())
	require.Equal(t, []EpochEntry{{Epoch: 0, StartOffset: 4}}, l.LeaderEpochs())
	requireWhole(t, l)
}
