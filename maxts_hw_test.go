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

// stamped encodes one batch of records with the given timestamps.
func stamped(t testing.TB, tss ...int64) []byte {
	t.Helper()
	var bl record.Builder
	bl.Reset()
	for _, ts := range tss {
		bl.Append(ts, []byte("k"), []byte("v"), nil)
	}
	data, err := bl.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return data
}

// TestListOffsetMaxTimestampBelowHighWatermark: ListOffset(MaxTimestamp)
// answers the first record with the largest timestamp among those a
// consumer can read, below the high watermark. A record with a larger
// timestamp appended above it (under SyncAlways, appended and not yet
// fsynced: its ProduceAsync acknowledgement not waited for) does not turn
// the answer into the high watermark; once it is fsynced, it is the
// answer.
func TestListOffsetMaxTimestampBelowHighWatermark(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{Sync: log.SyncAlways}}))
	_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: stamped(t, 10, 30, 20)}) // 0-2
	require.NoError(t, err)
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: stamped(t, 30, 5)}) // 3-4
	require.NoError(t, err)

	// 5-6 appended, not fsynced: above the high watermark.
	_, ack, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: stamped(t, 25, 99)})
	require.NoError(t, err)
	require.NotNil(t, ack)
	hw, err := b.ListOffset(ctx, "t", 0, api.Latest)
	require.NoError(t, err)
	require.EqualValues(t, 5, hw.Offset, "the unsynced records are above the high watermark")

	off, err := b.ListOffset(ctx, "t", 0, api.MaxTimestamp)
	require.NoError(t, err)
	require.EqualValues(t, 1, off.Offset, "the first 30, the largest timestamp below the high watermark")

	require.NoError(t, ack.Wait(ctx))
	off, err = b.ListOffset(ctx, "t", 0, api.MaxTimestamp)
	require.NoError(t, err)
	require.EqualValues(t, 6, off.Offset, "99, fsynced now")

	// Nothing readable below the high watermark: the high watermark.
	require.NoError(t, b.CreateTopic(ctx, "u", log.TopicConfig{Partitions: 1}))
	_, ack, err = b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "u", Acks: api.AcksAll, Batches: stamped(t, 7)})
	require.NoError(t, err)
	off, err = b.ListOffset(ctx, "u", 0, api.MaxTimestamp)
	require.NoError(t, err)
	require.Zero(t, off.Offset, "no record below the high watermark")
	require.NoError(t, ack.Wait(ctx))
}
