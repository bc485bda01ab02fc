package runnel

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestRetentionEmptiesQuietTopic: the broker's maintenance applies
// retention.ms to a topic that went quiet, as Kafka does: once its every
// record is older, the log is empty (its start offset at its end, no
// record readable), a fetch at an offset it held is out of range, and
// the offsets go on from the end.
func TestRetentionEmptiesQuietTopic(t *testing.T) {
	clock := &stepClock{}
	clock.ns.Store(time.Now().UnixNano())
	b := open(t, Config{Clock: clock})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{RetentionTime: time.Hour}}))
	produce(t, b, "t", 0, "a", "b", "c")

	clock.ns.Add(int64(59 * time.Minute))
	require.NoError(t, b.Maintain(ctx))
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Zero(t, info.Partitions[0].LogStartOffset)

	clock.ns.Add(int64(2 * time.Minute))
	require.NoError(t, b.Maintain(ctx))
	info, err = b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	p := info.Partitions[0]
	require.EqualValues(t, 3, p.LogStartOffset, "records past retention.ms are still there")
	require.EqualValues(t, 3, p.HighWatermark)
	lo, err := b.ListOffset(ctx, "t", 0, api.Earliest)
	require.NoError(t, err)
	require.EqualValues(t, 3, lo.Offset)
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Offset: 1}}})
	require.NoError(t, err)
	require.ErrorIs(t, resp.Partitions[0].Err, log.ErrOffsetOutOfRange)

	r := produce(t, b, "t", 0, "d")
	require.EqualValues(t, 3, r.BaseOffset)
}
