package log

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// batchesOf returns every batch of the log, in order.
func batchesOf(t *testing.T, l *Log) []record.Batch {
	t.Helper()
	var out []record.Batch
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		data, err := l.Read(off, 1<<20, math.MaxInt64)
		require.NoError(t, err)
		if len(data) == 0 {
			break
		}
		for b, err := range record.Batches(data) {
			require.NoError(t, err)
			out = append(out, append(record.Batch(nil), b...))
			off = b.NextOffset()
		}
	}
	return out
}

// TestCompactionSetsHorizonWhenRebuiltBatchIsSameSize: a tombstone's batch
// gets its delete horizon on the first cleaning even when the rebuilt batch
// happens to be as long as the original (here: delete.retention.ms 0 and a
// record as old as the clock, so that its timestamp delta keeps its
// length). Before, the group counted as unchanged, the rewrite was thrown
// away, and the tombstone had no horizon yet after a pass that should have
// set it, so the next pass kept it again.
func TestCompactionSetsHorizonWhenRebuiltBatchIsSameSize(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 1000, CleanupPolicy: Compact, DeleteRetentionTime: -1} // 0: remove at the next pass
	l := e.open(cfg)
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("1"), ts: now}))
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("gone"), ts: now})) // tombstone
	require.NoError(t, l.Roll())

	_, err := l.Compact(context.Background())
	require.NoError(t, err)
	bs := batchesOf(t, l)
	require.Len(t, bs, 2)
	require.True(t, bs[1].HasDeleteHorizon(), "the first pass sets the tombstone's delete horizon")
	require.EqualValues(t, now, bs[1].BaseTimestamp())

	e.clock.Advance(time.Millisecond)
	_, err = l.Compact(context.Background())
	require.NoError(t, err)
	recs := readAll(t, l, 0)
	require.Len(t, recs, 1, "the tombstone goes once its horizon has passed")
	require.Equal(t, "a", string(recs[0].Key))
}
