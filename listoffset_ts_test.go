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

// TestListOffsetTimestamp: ListOffset answers, as Kafka's ListOffsets
// does, the timestamp of the record at the offset it found for a
// timestamp or MaxTimestamp — also in a compressed batch, and the
// broker's time on a LogAppendTime topic — and -1 for Latest, Earliest
// and a timestamp no record reaches. Before, the answer had no timestamp.
func TestListOffsetTimestamp(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produceBatch := func(topic string, codec compression.Codec, tss ...int64) {
		t.Helper()
		var bl record.Builder
		bl.Reset()
		for _, ts := range tss {
			bl.Append(ts, []byte("k"), []byte("v"), nil)
		}
		data, err := bl.AppendTo(nil, codec)
		require.NoError(t, err)
		_, err = b.Produce(ctx, &api.ProduceRequest{Topic: topic, Acks: api.AcksAll, Batches: data})
		require.NoError(t, err)
	}
	produceBatch("t", compression.None, 10, 30, 20) // 0-2
	produceBatch("t", compression.Zstd, 40, 35)     // 3-4
	for _, c := range []struct {
		ts      int64
		off, at int64
		what    string
	}{
		{5, 0, 10, "the first record"},
		{25, 1, 30, "the first record stamped 25 or later"},
		{31, 3, 40, "in the compressed batch"},
		{api.MaxTimestamp, 3, 40, "the largest"},
		{41, 5, -1, "no record: the end, no timestamp"},
		{api.Latest, 5, -1, "Latest"},
		{api.Earliest, 0, -1, "Earliest"},
	} {
		lo, err := b.ListOffset(ctx, "t", 0, c.ts)
		require.NoError(t, err, c.what)
		require.Equal(t, c.off, lo.Offset, c.what)
		require.Equal(t, c.at, lo.Timestamp, c.what)
	}

	clock := &stepClock{}
	clock.ns.Store(1_700_000_000_000 * 1e6)
	b2 := open(t, Config{Clock: clock})
	require.NoError(t, b2.CreateTopic(ctx, "lat", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampType: log.LogAppendTime}}))
	b = b2
	produceBatch("lat", compression.None, 10, 20)
	lo, err := b2.ListOffset(ctx, "lat", 0, api.MaxTimestamp)
	require.NoError(t, err)
	require.EqualValues(t, int64(1_700_000_000_000), lo.Timestamp, "the broker's append time")
}
