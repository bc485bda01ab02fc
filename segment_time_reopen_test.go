package runnel

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestSegmentTimeWaitOutlivesConfigChange: segment.ms's wall-clock wait
// (for an active segment whose first batch has no timestamp) goes on
// from the segment's creation across a config change, as Kafka changes a
// log's config in place; runnel's reopen of the log for the change started
// it again, so the segment did not roll when Kafka's does (found by
// benchmarks/peers' TestParitySegments, seed 8). Fails on the old code:
// one segment after the last append, not two.
func TestSegmentTimeWaitOutlivesConfigChange(t *testing.T) {
	clock := &stepClock{}
	clock.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	fs := vfs.NewMem()
	b := open(t, Config{Dir: "/data", FS: fs, Clock: clock, MaintenanceInterval: time.Hour})
	ctx := context.Background()
	tc := log.TopicConfig{Partitions: 1}
	tc.SegmentTime = time.Minute
	tc.RetentionTime = -1
	require.NoError(t, b.CreateTopic(ctx, "t", tc))
	produce := func(ts int64) {
		t.Helper()
		var bl record.Builder
		bl.Append(ts, []byte("k"), []byte("v"), nil)
		data, err := bl.AppendTo(nil, compression.None)
		require.NoError(t, err)
		_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: data})
		require.NoError(t, err)
	}
	segments := func() int {
		t.Helper()
		names, err := fs.List("/data/t-0")
		require.NoError(t, err)
		n := 0
		for _, name := range names {
			if strings.HasSuffix(name, ".log") {
				n++
			}
		}
		return n
	}
	produce(-1) // no timestamp: segment.ms counts by the wall clock
	clock.ns.Add(int64(2 * time.Minute))
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.RetentionBytes = 1 << 20 }))
	produce(-1)
	require.Equal(t, 2, segments(), "the segment, created 2 minutes ago, rolls (segment.ms 1 minute)")
}
