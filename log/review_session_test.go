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
// its batch below the end appended again (a duplicate); with some left,
// the retry of an older one was refused as out of order.
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
	for seq := range int32(5) {
		appendOK(t, l, idemBatch(t, 2, 0, seq, 1)) // offsets 5-9
	}
	require.NoError(t, l.Flush(ctx)) // 0-9 synced
	for seq := int32(5); seq < 10; seq++ {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 10-14, never synced
	}
	for seq := int32(5); seq < 7; seq++ {
		appendOK(t, l, idemBatch(t, 2, 0, seq, 1)) // 15-16, never synced
	}
	// The snapshot, at 17: producer 1's batches 5-9, producer 2's 2-6.
	require.NoError(t, l.Roll())

	mem = mem.CrashClone(vfs.CrashOptions{})
	e.fs = mem
	l.Close()
	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 10, l.LogEndOffset(), "%+v", l.Recovery())
	dup := appendOK(t, l, idemBatch(t, 1, 0, 4, 1))
	require.True(t, dup.Duplicate, "producer 1's batch of sequence 4 is at offset 4")
	require.EqualValues(t, 4, dup.FirstOffset)
	dup = appendOK(t, l, idemBatch(t, 2, 0, 1, 1))
	require.True(t, dup.Duplicate, "producer 2's batch of sequence 1 is at offset 6")
	require.EqualValues(t, 6, dup.FirstOffset)
	next := appendOK(t, l, idemBatch(t, 1, 0, 5, 1))
	require.False(t, next.Duplicate)
	require.EqualValues(t, 10, next.FirstOffset)
	next = appendOK(t, l, idemBatch(t, 2, 0, 5, 1))
	require.False(t, next.Duplicate)
	require.EqualValues(t, 11, next.FirstOffset)
}
