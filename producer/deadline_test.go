package producer_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// stuckInitClient is a broker whose InitProducerID does not answer until
// its ctx ends (a broker busy with a long admin operation, say).
type stuckInitClient struct {
	*runnel.Broker
	calls atomic.Int32
}

func (c *stuckInitClient) InitProducerID(ctx context.Context) (int64, int16, error) {
	c.calls.Add(1)
	<-ctx.Done()
	return 0, 0, ctx.Err()
}

// DeliveryTimeout bounds the wait for a producer id too: the records of
// every partition waiting for one fail with ErrDeliveryTimeout (not a
// ctx's error: their ctx did not end) by their deadline, not when Close
// comes.
func TestDeliveryTimeoutWhileWaitingForAProducerID(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 2))
	c := &stuckInitClient{Broker: b}
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.DeliveryTimeout(50*time.Millisecond),
		producer.RecordPartitioner(producer.RoundRobinPartitioner()))
	ctx := testCtx(t)
	o := newOrder()
	a, b2 := value("a"), value("b")
	p.Produce(ctx, a, o.promise())
	p.Produce(ctx, b2, o.promise())
	waitOrFatal(t, ctx, o, "records wait for a producer id past their delivery timeout")
	for _, r := range []*record.Record{a, b2} {
		err := o.errs[string(r.Value)]
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout, "partition %d", r.Partition)
		require.NotErrorIs(t, err, context.DeadlineExceeded)
		require.NotErrorIs(t, err, context.Canceled)
	}
	require.NotEqual(t, a.Partition, b2.Partition)
}

// stuckLookupClient is a broker that answers the first look-up of a
// topic's partition count, and no later one until its ctx ends.
type stuckLookupClient struct {
	*hookClient
	calls atomic.Int32
}

func (c *stuckLookupClient) Partitions(ctx context.Context, topic string) (int, error) {
	if c.calls.Add(1) == 1 {
		return c.hookClient.Partitions(ctx, topic)
	}
	<-ctx.Done()
	return 0, ctx.Err()
}

// The periodic look-up of a topic's partition count (MetadataMaxAge),
// which a partition's goroutine makes between two batches, does not hold
// the next batch past its delivery deadline when the broker does not
// answer: it is cut short, and the batch goes. In a synctest bubble: on
// the real clock, a loaded machine could miss the 100 ms DeliveryTimeout
// with the first record, which must be written.
func TestStuckPartitionsLookupDoesNotHoldTheNextBatch(t *testing.T) {
	synctest.Test(t, testStuckPartitionsLookupDoesNotHoldTheNextBatch)
}

func testStuckPartitionsLookupDoesNotHoldTheNextBatch(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &stuckLookupClient{hookClient: &hookClient{b: b}}
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.MetadataMaxAge(time.Nanosecond),
		producer.DeliveryTimeout(100*time.Millisecond))
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, value("first")))
	o := newOrder()
	p.Produce(ctx, value("second"), o.promise())
	waitOrFatal(t, ctx, o, "the batch waits for a look-up past its delivery deadline")
	// Whether it made it in time depends on the scheduler; it must not
	// have waited for Close.
	if err := o.errs["second"]; err != nil {
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
	}
}

// The look-up after a batch refused for an unknown topic or partition is
// bounded by the batch's delivery deadline too.
func TestStuckPartitionsLookupAfterUnknownTopic(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &stuckLookupClient{hookClient: &hookClient{b: b}}
	c.setHook(func(context.Context, int, *api.ProduceRequest, func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		return api.ProduceResponse{}, api.ErrUnknownTopicOrPartition
	})
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.DeliveryTimeout(50*time.Millisecond))
	ctx := testCtx(t)
	o := newOrder()
	p.Produce(ctx, value("v"), o.promise())
	waitOrFatal(t, ctx, o, "the batch waits for a look-up past its delivery deadline")
	require.ErrorIs(t, o.errs["v"], producer.ErrDeliveryTimeout)
}

// The backoff before a batch's retry is cut at its delivery deadline:
// with a RetryBackoff far longer than DeliveryTimeout, a batch whose
// request keeps failing with a retriable error fails with
// ErrDeliveryTimeout at its deadline, not after the whole backoff.
func TestSendBackoffEndsAtDeliveryTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		c.fail = func(int) error { return fmt.Errorf("%w: busy", api.ErrNotEnoughReplicas) }
		const timeout = time.Second
		p, err := producer.New(c, producer.DeliveryTimeout(timeout), producer.RetryBackoff(time.Hour), producer.MaxInFlight(1))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		o := <-produceAt(t, p, "a")
		require.ErrorIs(t, o.err, producer.ErrDeliveryTimeout)
		require.ErrorIs(t, o.err, api.ErrNotEnoughReplicas)
		require.Equal(t, t0.Add(timeout), o.at, "failed at its delivery deadline")
		require.Equal(t, []time.Time{t0}, c.sent(), "one attempt: the backoff reaches the deadline")
	})
}
