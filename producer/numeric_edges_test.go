package producer_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestTimestampPastInt64Millis: a Timestamp whose Unix milliseconds do not
// fit an int64 (time.Time reaches far past them) is refused with
// ErrInvalidTimestamp, as one before the epoch is: its UnixMilli wraps, and
// the record was stored with whatever the wrap gave (384 ms for the first
// case: 1970). The largest Kafka timestamp, math.MaxInt64 ms, is kept as
// it is.
func TestTimestampPastInt64Millis(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b)
	ctx := testCtx(t)
	for _, ts := range []time.Time{
		time.Unix(2*(math.MaxInt64/1000+1), 0),              // UnixMilli wraps to 384
		time.Unix(math.MaxInt64/1000+1, 0),                  // UnixMilli wraps negative
		time.UnixMilli(math.MaxInt64).Add(time.Millisecond), // UnixMilli wraps negative
		time.Unix(-2*(math.MaxInt64/1000+1)+1, 0),           // before the epoch, UnixMilli wraps positive
	} {
		err := p.ProduceSync(ctx, &record.Record{Topic: "t", Timestamp: ts, Value: []byte("far")})
		require.ErrorIs(t, err, producer.ErrInvalidTimestamp, "%v (UnixMilli %d)", ts, ts.UnixMilli())
	}
	// The largest Kafka timestamp, also from a time within its
	// millisecond (UnixMilli truncates, as for any other).
	for _, ts := range []time.Time{time.UnixMilli(math.MaxInt64), time.UnixMilli(math.MaxInt64).Add(time.Millisecond - 1)} {
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Timestamp: ts, Value: []byte("last")}))
	}
	got := readRecords(t, b, "t", 0)
	require.Len(t, got, 2)
	for _, r := range got {
		require.Equal(t, int64(math.MaxInt64), r.Timestamp.UnixMilli())
	}
}

// hugeCountClient is a Client that reports a partition count past an
// int32, which no Kafka topic has.
type hugeCountClient struct {
	*runnel.Broker
	n int
}

func (c hugeCountClient) Partitions(context.Context, string) (int, error) { return c.n, nil }

// TestPartitionCountPastInt32: a Client that reports more partitions than
// an int32 numbers breaks its contract: the record fails with
// api.ErrInvalidRequest, and the producer goes on. It made a partition of
// each: make panicked ("len out of range") for a count past memory, and a
// count past math.MaxInt32 that fits took it all, with int32 ids wrapping.
func TestPartitionCountPastInt32(t *testing.T) {
	if math.MaxInt == math.MaxInt32 {
		t.Skip("an int holds no count past an int32")
	}
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, hugeCountClient{Broker: b, n: testkit.PastInt32(1 << 46)})
	err := testkit.NoPanic(t, "produce", func() error {
		return p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("v")})
	})
	require.ErrorIs(t, err, api.ErrInvalidRequest)
	require.Empty(t, readRecords(t, b, "t", 0))
}
