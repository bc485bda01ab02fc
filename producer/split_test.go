package producer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// The halves of a batch refused as too large were sent (as the batch):
// their records are fixed, whatever their ctx, also when a half waits for
// a place among the requests in flight and a record's ctx ends meanwhile
// (the pipeline's look at the ctxs after that wait is for batches never
// sent). As Produce says: once r's batch was sent, even once, ctx no
// longer matters.
func TestSplitHalfWaitingForAPlaceKeepsItsRecords(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newAckClient(b)
	c.fault = func(attempt int) (bool, error) {
		if attempt == 1 { // the batch {x, y}
			return false, fmt.Errorf("%w: refused", producer.ErrRecordTooLarge)
		}
		return false, nil
	}
	size := func(n int) int { return record.SizeWithDeltas(record.BodySize(nil, make([]byte, n), nil), 0, 0) }
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.MaxInFlight(2), producer.Linger(time.Minute),
		producer.BatchMaxBytes(record.HeaderSize+size(100)))
	ctx := testCtx(t)
	o := newOrder()
	first := &record.Record{Value: make([]byte, 100)} // fills its batch alone
	p.Produce(ctx, first, o.promise())
	x, y := &record.Record{Value: []byte("x")}, &record.Record{Value: []byte("y")}
	p.Produce(ctx, x, o.promise()) // queues first's batch, which goes at once
	yctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.Produce(yctx, y, o.promise())
	held := c.next(t, ctx) // first's, handed to the acker: {x, y} is buffered
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(ctx) }()
	// {x, y} is refused, and split: {x} goes, {y} waits for a place.
	xAck := c.next(t, ctx)
	cancel()
	held.answer <- nil
	xAck.answer <- nil
	stop := c.answerAll(nil) // {y}'s, if it is sent
	require.NoError(t, testkit.Await(t, flushed, "Flush's answer"))
	stop()
	o.wg.Wait()
	require.NoError(t, o.errs["y"], "a record of a batch sent once is fixed")
	require.Equal(t, []string{string(first.Value), "x", "y"}, values(readRecords(t, b, "t", 0)))
}

// As TestSplitHalfWaitingForAPlaceKeepsItsRecords, one request at a time:
// the second half's record whose ctx ends while the first half is sent
// is sent all the same (its batch was sent, as the batch refused).
func TestSplitHalfKeepsItsRecords(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	ctx := testCtx(t)
	yctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.setHook(func(_ context.Context, call int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		switch call {
		case 0:
			return api.ProduceResponse{}, fmt.Errorf("%w: refused", producer.ErrRecordTooLarge)
		case 1: // {x}
			cancel()
		}
		return next()
	})
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.MaxInFlight(1), producer.Linger(time.Minute))
	o := newOutcome()
	x, y := value("x"), value("y")
	p.Produce(ctx, x, o.promise())
	p.Produce(yctx, y, o.promise())
	require.NoError(t, p.Flush(ctx))
	o.wait()
	require.NoError(t, o.err(x))
	require.NoError(t, o.err(y), "a record of a batch sent once is fixed")
	require.Equal(t, []string{"x", "y"}, values(readRecords(t, b, "t", 0)))
	require.Len(t, c.requests(), 3)
}
