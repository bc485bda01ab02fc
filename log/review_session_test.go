package log

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestProducerSnapshotPastTheEndKeepsOlderBatches: a producer-state
// snapshot past the end a crash left (a SyncNever roll's, 7b8b4d5) holds a
// producer's last batches as of its offset; the crash lost the newest of
// them, and its batches below the end that those had pushed out of the
// snapshot's window are still in the log. Open took the snapshot's
// batches below the end and replayed from the end only: a producer whose
// snapshot batches all lay past the end was forgotten, and the retry of
// its batch below the end appended again (a duplicate).
func TestProducerSnapshotPastTheEndKeepsOlderBatches(t *testing.T) {
	mem := vfs.NewMem()
	e := newEnv(t)
	e.fs = mem
	cfg := Config{Sync: SyncNever}
	l := e.open(cfg)
	ctx := context.Background()
	for seq := range int32(5) {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // offsets 0-4
	}
	require.NoError(t, l.Flush(ctx)) // 0-4 synced
	for seq := int32(5); seq < 10; seq++ {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 5-9, never synced
	}
	require.NoError(t, l.Roll()) // the snapshot, at 10: batches 5-9 only

	mem = mem.CrashClone(vfs.CrashOptions{})
	e.fs = mem
	l.Close()
	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 5, l.LogEndOffset(), "%+v", l.Recovery())
	dup := appendOK(t, l, idemBatch(t, 1, 0, 4, 1))
	require.True(t, dup.Duplicate, "the batch of sequence 4 is at offset 4")
	require.EqualValues(t, 4, dup.FirstOffset)
	next := appendOK(t, l, idemBatch(t, 1, 0, 5, 1))
	require.False(t, next.Duplicate)
	require.EqualValues(t, 5, next.FirstOffset)
}
