package log

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/stretchr/testify/require"
)

// TestTombstoneInBatchStraddlingFullKeyMapKeepsItsTime: a batch holding a
// tombstone before the record whose key did not fit in a full key map and
// one after it. The pass sets no delete horizon past where the map filled
// (see TestTombstonePastFullKeyMapGetsNoHorizonYet): the later tombstone
// must stay delete.retention.ms from the pass that maps it, which also
// removes the older value of its key. A horizon set on the batch for the
// earlier tombstone covered the later one too, which then went in the
// same pass as that older value, without delete.retention.ms of its own:
// a consumer that had read the older value could miss the delete.
func TestTombstoneInBatchStraddlingFullKeyMapKeepsItsTime(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	l, err := Open(e.dir, Config{SegmentBytes: 1000, CleanupPolicy: Compact, DeleteRetentionTime: time.Hour},
		Options{FS: e.fs, Clock: e.clock, CleanerMapBytes: MinCleanerMapBytes})
	require.NoError(t, err)
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("b"), value: []byte("old"), ts: ts})) // 0
	require.NoError(t, l.Roll())
	compactUntilClean(t, l)
	// 1: a's tombstone, mapped; 2: b's, whose key does not fit.
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), ts: ts}, kv{key: []byte("b"), ts: ts}))
	require.NoError(t, l.Roll())
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, res.CleanedTo, "the map filled at b's tombstone")
	require.Equal(t, []string{"b=old", "a=", "b="}, keysOf(t, l))

	e.clock.Advance(50 * time.Minute)
	compactUntilClean(t, l) // maps b's tombstone: b=old goes
	require.Equal(t, []string{"a=", "b="}, keysOf(t, l))
	e.clock.Advance(11 * time.Minute)
	_, err = l.Compact(ctx)
	require.NoError(t, err)
	require.Contains(t, keysOf(t, l), "b=", "b's tombstone stays delete.retention.ms from the pass that removed b=old")
}
