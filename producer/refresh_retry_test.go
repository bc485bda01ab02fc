package producer_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// failingPartitions is a Client whose Partitions answers with err the
// next fail calls, then as the broker.
type failingPartitions struct {
	*runnel.Broker
	err   error
	fail  atomic.Int32
	calls atomic.Int32
}

func (c *failingPartitions) Partitions(ctx context.Context, topic string) (int, error) {
	c.calls.Add(1)
	if c.fail.Add(-1) >= 0 {
		return 0, c.err
	}
	return c.Broker.Partitions(ctx, topic)
}

// The look-up of a partition past the count the producer knows retries
// an error Kafka's table calls retriable, as the look-up of a new
// topic's count does and as Kafka's producer waits for its metadata
// (max.block.ms): a record for a partition added since the producer last
// looked goes there, where a broker's passing timeout failed it with
// ErrInvalidPartition (the topic has that partition). A refusal that is
// not retriable still fails it at once, and TryProduce does not wait.
func TestPastTheCountLookUpRetriesRetriableErrors(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &failingPartitions{Broker: b, err: api.ErrRequestTimedOut}
	p := newProducer(t, c, producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("0")}))
	require.NoError(t, b.CreatePartitions(testCtx(t), "t", 2))

	c.fail.Store(2)
	require.NoError(t, p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Partition: 1, Value: []byte("1")}))
	require.Equal(t, int32(4), c.calls.Load(), "the first look-up, two failures, the answer")
	recs := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, recs, 2)
	require.Equal(t, int32(1), recs[1].Partition)

	t.Run("not retriable", func(t *testing.T) {
		c.err = api.ErrInvalidRequest
		c.fail.Store(1)
		err := p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Partition: 2, Value: []byte("2")})
		require.ErrorIs(t, err, producer.ErrInvalidPartition)
	})
	t.Run("TryProduce", func(t *testing.T) {
		c.err = api.ErrRequestTimedOut
		c.fail.Store(1)
		got := make(chan error, 1)
		p.TryProduce(testCtx(t), &record.Record{Topic: "t", Partition: 2, Value: []byte("2")},
			func(_ *record.Record, err error) { got <- err })
		require.ErrorIs(t, <-got, producer.ErrInvalidPartition)
		c.fail.Store(0)
	})
}
