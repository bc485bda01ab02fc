package runnel

import (
	"context"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestTimestampAtCompactedOffset: ListOffset's timestamp read for an
// offset that compaction removed after the look-up found it answers -1
// (no record there any more), not the timestamp of the record after it
// in the cleaned batch (mutation B03, client.go's `r.Offset > off`).
func TestTimestampAtCompactedOffset(t *testing.T) {
	ctx := t.Context()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "c", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact}}))
	put := func(ts int64, kv ...string) {
		var bl record.Builder
		bl.Reset()
		for i := 0; i < len(kv); i += 2 {
			bl.Append(ts+int64(i/2), []byte(kv[i]), []byte(kv[i+1]), nil) // a time of its own each
		}
		data, err := bl.AppendTo(nil, compression.None)
		require.NoError(t, err)
		_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "c", Acks: api.AcksAll, Batches: data})
		require.NoError(t, err)
	}
	// One batch: offset 0 (k, superseded; 1000), offset 1 (other; 1001),
	// offset 2 (k; 1002).
	put(1_000, "k", "old", "other", "x", "k", "new")
	l := b.testLog(t, "c")
	require.NoError(t, l.Roll())
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.NotZero(t, res, "the pass cleaned the sealed segment")

	p, err := b.partition(ctx, "c", 0, false)
	require.NoError(t, err)
	ts, err := timestampAt(context.Background(), p, 0, 3)
	require.NoError(t, err)
	require.EqualValues(t, -1, ts, "offset 0 was compacted away: no record, no timestamp")
	ts, err = timestampAt(context.Background(), p, 1, 3)
	require.NoError(t, err)
	require.EqualValues(t, 1_001, ts, "offset 1 is still there")
}
