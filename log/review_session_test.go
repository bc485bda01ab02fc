package log

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
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
	e := newEnv(t)
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

	l = e.crashReopen(l, cfg)
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

// TestProducerSnapshotPastTheEndAfterACompactedBatch: a producer whose
// snapshot batches past the recovered end were all lost, and whose batch
// before them compaction removed, is not given the state replayed from
// the log, which ends at an older batch: the retries of its lost batches
// are appended, not refused as out of order (what a merge without that
// check did: found by TestCrashSim, seed 500772).
func TestProducerSnapshotPastTheEndAfterACompactedBatch(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever, CleanupPolicy: Compact}
	l := e.open(cfg)
	ctx := context.Background()
	keyed := func(seq int32, key string) []byte { return keyedProducerBatch(t, seq, key) }
	appendOK(t, l, keyed(0, "a"))                                                     // 0
	appendOK(t, l, keyed(1, "b"))                                                     // 1: compaction removes it
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("b"), []byte("newer"), 1})) // 2
	require.NoError(t, l.Roll())
	require.NoError(t, l.Flush(ctx))
	var lost [][]byte
	for seq := int32(2); seq < 7; seq++ { // 3-7, never synced
		lost = append(lost, keyed(seq, fmt.Sprint("k", seq)))
		appendOK(t, l, bytes.Clone(lost[len(lost)-1]))
		if seq == 2 {
			// Batch 1 is not the producer's last: compaction removes it.
			res, err := l.Compact(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, res.RecordsRemoved)
		}
	}
	require.NoError(t, l.Roll()) // the snapshot, at 8: producer 1's batches 2-6

	l = e.crashReopen(l, cfg)
	defer l.Close()
	require.EqualValues(t, 3, l.LogEndOffset(), "%+v", l.Recovery())
	for i, data := range lost {
		res := appendOK(t, l, data)
		require.False(t, res.Duplicate)
		require.EqualValues(t, 3+i, res.FirstOffset)
	}
}
