package log

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
)

// TestCompactionStopsAtHighWatermark: compaction cleans no segment that
// ends past the high watermark, as Kafka's cleaner stops at the first
// uncleanable offset (at most the last stable offset, below the high
// watermark). Under SyncAlways a segment rolled by an append whose fsync
// has not come yet holds records above it: a newer value of a key there,
// not yet acknowledged, removed the acknowledged older one below it —
// should the newer one be lost (a truncation, once replicas exist), the
// key's value is gone. Once the fsync comes, the pass cleans it.
func TestCompactionStopsAtHighWatermark(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	l := e.open(Config{Sync: SyncAlways, CleanupPolicy: Compact, SegmentBytes: 100})
	defer l.Close()
	p := NewPartition("t", 0, l)
	const ts = 1_700_000_000_000
	rec := func(k, v string) []byte {
		return batchOf(t, compression.None, kv{key: []byte(k), value: []byte(v), ts: ts})
	}
	appendOK(t, l, rec("k", "v1")) // 0, acknowledged
	// Each append rolls the segment before it (100 bytes a segment):
	// 1 and 2 are written, sealed in rolled segments, not yet fsynced
	// as far as the high watermark knows.
	_, _, err := l.AppendAsync(ctx, rec("k", "v2"), AppendOptions{})
	require.NoError(t, err)
	_, d, err := l.AppendAsync(ctx, rec("x", "x1"), AppendOptions{})
	require.NoError(t, err)
	_, _, err = l.AppendAsync(ctx, rec("y", "y1"), AppendOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 1, p.HighWatermark())
	require.Greater(t, len(*l.segs.Load()), 2, "segments rolled")

	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.Zero(t, res.RecordsRemoved, "nothing above the high watermark may clean what is below it")
	require.LessOrEqual(t, res.FirstUncleanable, p.HighWatermark())
	require.Equal(t, "v1", string(readAll(t, l, 0)[0].Value))

	require.NoError(t, d.Wait(ctx))
	require.GreaterOrEqual(t, p.HighWatermark(), int64(3))
	res, err = l.Compact(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsRemoved, "v1, once v2 is below the high watermark")
	recs := readAll(t, l, 0)
	require.Equal(t, "v2", string(recs[0].Value))
}
