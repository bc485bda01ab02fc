package producer_test

import (
	"math"
	"testing"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestMaxInFlightAboveFiveWithoutIdempotence: as Kafka's producer takes
// max.in.flight.requests.per.connection above 5 once idempotence is off,
// New takes MaxInFlight above 5 with DisableIdempotence or acks other
// than all, and that many requests of a partition are then in flight at
// once, their records still delivered in order; an idempotent producer
// (the default) still refuses it.
func TestMaxInFlightAboveFiveWithoutIdempotence(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	_, err := producer.New(b, producer.MaxInFlight(6))
	require.ErrorIs(t, err, producer.ErrInvalidOption, "idempotent")
	for _, opts := range [][]producer.Opt{
		{producer.DisableIdempotence()},
		{producer.Acks(producer.AcksLeader)},
		{producer.Acks(producer.AcksNone)},
	} {
		for _, n := range []int{6, math.MaxInt} {
			p, err := producer.New(b, append(opts, producer.MaxInFlight(n))...)
			require.NoError(t, err, n)
			require.NoError(t, p.Close())
		}
	}

	c := newAckClient(b)
	p := newProducer(t, c, append(oneRecordBatches(), producer.DisableIdempotence(),
		producer.MaxInFlight(8), producer.DefaultTopic("t"))...)
	// Eleven full batches are queued (the twelfth lingers): eight go out
	// before any is acknowledged.
	requireInFlight(t, b, c, p, 12, 8)
}

// TestMaxInFlightUnbounded: MaxInFlight without a bound of its own (no
// idempotence) keeps more requests in flight than the acker's hand-off
// queue holds, and every record is still delivered, in order.
func TestMaxInFlightUnbounded(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newAckClient(b)
	p := newProducer(t, c, append(oneRecordBatches(), producer.DisableIdempotence(),
		producer.MaxInFlight(math.MaxInt), producer.DefaultTopic("t"))...)
	ctx := testCtx(t)
	stop := c.answerAll(nil)
	recs := fiveByteRecords(300)
	o := newOrder()
	for _, r := range recs {
		p.Produce(ctx, r, o.promise())
	}
	require.NoError(t, p.Flush(ctx))
	o.wg.Wait()
	stop()
	requireInOrder(t, b, o, recs)
}

// TestMaxInFlightUnboundedClose: Close while more requests are in flight
// than the acker's hand-off queue holds (the partition's goroutine waits
// to hand over the last one appended) ends the waits: Close returns, and
// every promise runs once, in produce order, with ErrClosed.
func TestMaxInFlightUnboundedClose(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newAckClient(b)
	p, err := producer.New(c, append(oneRecordBatches(), producer.DisableIdempotence(),
		producer.MaxInFlight(math.MaxInt), producer.DefaultTopic("t"))...)
	require.NoError(t, err)
	ctx := testCtx(t)
	recs := fiveByteRecords(200)
	o := newOrder()
	for _, r := range recs {
		p.Produce(ctx, r, o.promise())
	}
	// One in the acker's wait, 64 in its queue, one being handed over.
	for range 66 {
		c.next(t, ctx)
	}
	require.NoError(t, p.Close())
	o.wg.Wait()
	require.Equal(t, values(recs), o.seen, "promises in produce order")
	for _, r := range recs {
		require.ErrorIs(t, o.errs[string(r.Value)], producer.ErrClosed, "%s", r.Value)
	}
}
