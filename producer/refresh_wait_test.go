package producer_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// holdingPartitions is a Client whose Partitions answers as the broker
// until hold is set; from then on each call announces itself on entered
// and waits for its ctx to end, as a broker that does not answer.
type holdingPartitions struct {
	*runnel.Broker
	hold    atomic.Bool
	entered chan struct{}
}

func (c *holdingPartitions) Partitions(ctx context.Context, topic string) (int, error) {
	if !c.hold.Load() {
		return c.Broker.Partitions(ctx, topic)
	}
	c.entered <- struct{}{}
	<-ctx.Done()
	return 0, ctx.Err()
}

// A record for a partition past the count the producer knows makes
// Produce ask the broker again (see Produce). A Produce waiting for that
// answer is one waiting "for the broker's answer to its topic's partition
// count": Close ends it with ErrClosed, and the end of the record's ctx
// with ctx's error (see Close and Produce), not ErrInvalidPartition,
// which would say that the topic has no such partition when the producer
// never learnt whether it has.
func TestProduceWaitingForARefreshEndsWithCloseOrCtx(t *testing.T) {
	for _, end := range []string{"close", "ctx"} {
		t.Run(end, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			c := &holdingPartitions{Broker: b, entered: make(chan struct{}, 1)}
			p := newProducer(t, c, producer.RecordPartitioner(producer.ManualPartitioner()))
			require.NoError(t, p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("0")}))
			// Its batch frees its space once its promises have returned,
			// maybe after ProduceSync does (see BufferedRecords): a Flush
			// waits for that, so that the count below is the held record's.
			require.NoError(t, p.Flush(testCtx(t)))
			require.Zero(t, p.BufferedRecords())

			c.hold.Store(true)
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			r := &record.Record{Topic: "t", Partition: 3, Value: []byte("3")}
			got := make(chan error, 2)
			returned := make(chan struct{})
			go func() {
				defer close(returned)
				p.Produce(ctx, r, func(_ *record.Record, err error) { got <- err })
			}()
			<-c.entered // Produce waits for the broker's answer
			if end == "close" {
				require.NoError(t, p.Close())
			} else {
				cancel()
			}
			<-returned
			require.Len(t, got, 1, "promise runs once, before Produce returns")
			err := <-got
			if end == "close" {
				require.ErrorIs(t, err, producer.ErrClosed)
			} else {
				require.ErrorIs(t, err, context.Canceled)
			}
			require.False(t, errors.Is(err, producer.ErrInvalidPartition), "%v", err)
			require.Equal(t, int32(3), r.Partition, "the record is left as it was")
			require.Zero(t, p.BufferedRecords())
		})
	}
}

// A broker that does not answer the look-up of a topic's partition count
// holds a Produce with a ctx that never ends no longer than
// DeliveryTimeout: the record fails with ErrDeliveryTimeout, unwritten
// (as Kafka's send fails once max.block.ms passed waiting for metadata),
// whether the topic is new to the producer or a partition past the count
// it knows is asked for. A retriable error answered at once was already
// bounded so; a call that hangs was bounded only by the record's ctx.
func TestHangingPartitionCountBoundedByDeliveryTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		partition int32
	}{{"new topic", 0}, {"past the count", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			c := &holdingPartitions{Broker: b, entered: make(chan struct{}, 1)}
			p := newProducer(t, c, producer.RecordPartitioner(producer.ManualPartitioner()),
				producer.DeliveryTimeout(50*time.Millisecond))
			if tc.partition > 0 {
				require.NoError(t, p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("0")}))
			}
			c.hold.Store(true)
			got := make(chan error, 1)
			go p.Produce(context.Background(), &record.Record{Topic: "t", Partition: tc.partition, Value: []byte("x")},
				func(_ *record.Record, err error) { got <- err })
			<-c.entered
			select {
			case err := <-got:
				require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
				require.NotErrorIs(t, err, context.DeadlineExceeded, "the record's ctx did not end")
			case <-time.After(30 * time.Second): // a hang guard, not a timing check
				t.Fatal("Produce still waits for the partition count, past its DeliveryTimeout")
			}
			require.NoError(t, p.Flush(testCtx(t)))
			recs := runneltest.ConsumeAll(t, b, "t")
			for _, r := range recs {
				require.NotEqual(t, "x", string(r.Value), "a record failed before it was partitioned was written")
			}
		})
	}
}
