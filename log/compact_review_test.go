package log

import (
	"context"
	"math"
	"strings"
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

// TestCompactionEmptiedBatchKeepsMaxTimestamp: a batch compaction empties
// but keeps (an idempotent producer's last) keeps its max timestamp, as
// Kafka's cleaner writes it (writeEmptyHeader with the batch's
// maxTimestamp, uncompressed). Before, it got -1, so a cleaned segment of
// such batches looked infinitely old: time retention deleted it at once,
// and the producer's state with it, so that a retry of the producer's last
// batch, which the log answered as a duplicate before compaction, was
// appended again.
func TestCompactionEmptiedBatchKeepsMaxTimestamp(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			e := newEnv(t)
			cfg := Config{SegmentBytes: 300, CleanupPolicy: Compact | Delete, RetentionTime: time.Hour}
			l := e.open(cfg)
			defer l.Close()
			now := e.clock.Now().UnixMilli()
			var bld record.Builder
			bld.Reset()
			bld.SetProducer(7, 0, 0)
			bld.Append(now, []byte("a"), []byte("old"), []record.Header{{Key: "h", Value: []byte("v")}})
			prod, err := bld.AppendTo(nil, codec)
			require.NoError(t, err)
			appendOK(t, l, append([]byte(nil), prod...))
			require.NoError(t, l.Roll())
			// The newer value, in a segment too large to join the first's group.
			appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte(strings.Repeat("n", 250)), ts: now}))
			require.NoError(t, l.Roll())

			res, err := l.Compact(context.Background())
			require.NoError(t, err)
			require.Equal(t, 1, res.RecordsRemoved)
			bs := batchesOf(t, l)
			require.Len(t, bs, 2)
			empty := bs[0]
			require.Zero(t, empty.NumRecords())
			require.EqualValues(t, 7, empty.ProducerID())
			require.EqualValues(t, now, empty.MaxTimestamp(), "the emptied batch keeps its max timestamp")
			require.Equal(t, compression.None, empty.Codec(), "an empty batch is written uncompressed, as Kafka's")
			require.NoError(t, empty.Validate(0))

			// Within retention.ms nothing goes, and the producer's retry is
			// still a duplicate.
			n, err := l.ApplyRetention()
			require.NoError(t, err)
			require.Zero(t, n, "retention deleted a segment whose records are minutes old")
			dup, err := l.Append(context.Background(), append([]byte(nil), prod...), AppendOptions{})
			require.NoError(t, err)
			require.True(t, dup.Duplicate, "the producer's retry was appended again")
			require.EqualValues(t, 0, dup.FirstOffset)
		})
	}
}
