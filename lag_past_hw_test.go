package runnel

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestConsumerLagPastHighWatermark pins what consumer.Lag's doc now says:
// a position given with At past the high watermark (an offset appended,
// its fsync still to come, under the default SyncAlways) reports a
// negative lag, as Kafka's currentLag does, though no record was lost. The
// doc said it was negative only when the log lost records past the
// position. TestHighWatermarkRealTime checks that a consumer positioned
// by Start, and by its reads, never reports one.
func TestConsumerLagPastHighWatermark(t *testing.T) {
	ctx := context.Background()
	b, err := Open(Config{FS: vfs.NewMem(), Dir: "/d", MaintenanceInterval: time.Hour})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	data, err := crashBatch([]string{"x", "y"}, -1, 0)
	require.NoError(t, err)
	// Appended, its acknowledgement (the fsync) not waited for: above the
	// high watermark.
	resp, ack, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: data})
	require.NoError(t, err)
	require.NotNil(t, ack)
	c, err := consumer.New(b, consumer.FetchMaxWait(0), consumer.FetchMinBytes(0))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Assign("t", 0, consumer.At(resp.BaseOffset+1)))
	fs, err := c.Poll(ctx)
	require.NoError(t, err)
	require.Zero(t, fs.NumRecords())
	lag, ok := c.Lag("t", 0)
	require.True(t, ok)
	require.Equal(t, int64(-1), lag, "the position is one past the high watermark 0")

	require.NoError(t, ack.Wait(ctx))
	fs, err = c.Poll(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, fs.NumRecords(), "the record at the position")
	lag, ok = c.Lag("t", 0)
	require.True(t, ok)
	require.Zero(t, lag)
}
