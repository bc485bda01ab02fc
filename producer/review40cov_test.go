package producer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// Tests of session 40's coverage pass: each drives a statement no test
// ran (see review40cov_internal_test.go for those that need the
// producer's insides).

// heldPartitions is a Client whose Partitions, once entered is closed,
// waits for its ctx to end and then answers with a retriable error.
type heldPartitions struct {
	*runnel.Broker
	entered chan struct{}
	calls   atomic.Int32
}

func (c *heldPartitions) Partitions(ctx context.Context, _ string) (int, error) {
	if c.calls.Add(1) == 1 {
		close(c.entered)
	}
	<-ctx.Done()
	return 0, api.ErrRequestTimedOut
}

// TestReview40LookUpCutByCloseEndsWithErrClosed: a partition-count look-up
// that Close cuts short answers with a retriable error (a Client that
// does not return ctx's error); the look-up is not retried, the record
// fails with ErrClosed (with the look-up's error beside it, not as a
// delivery timeout), once.
func TestReview40LookUpCutByCloseEndsWithErrClosed(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &heldPartitions{Broker: b, entered: make(chan struct{})}
	p, err := producer.New(c, producer.RetryBackoff(time.Millisecond))
	require.NoError(t, err)
	got := make(chan error, 2)
	go p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("v")}, func(_ *record.Record, err error) {
		got <- err
	})
	select {
	case <-c.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the look-up never began")
	}
	require.NoError(t, p.Close())
	select {
	case err := <-got:
		require.ErrorIs(t, err, producer.ErrClosed)
		require.ErrorIs(t, err, api.ErrRequestTimedOut, "the look-up's error, beside ErrClosed")
		require.NotErrorIs(t, err, producer.ErrDeliveryTimeout)
	case <-time.After(10 * time.Second):
		t.Fatal("the record's promise never ran")
	}
	require.Equal(t, int32(1), c.calls.Load(), "look-ups: one, not retried after Close")
}

// outOfOrderOnce is a Client that answers its first produce request with
// ErrOutOfOrderSequence, as no broker does for a batch without a
// producer id; the others go to the broker.
type outOfOrderOnce struct {
	*runnel.Broker
	produces atomic.Int32
}

func (c *outOfOrderOnce) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	if c.produces.Add(1) == 1 {
		return api.ProduceResponse{}, producer.ErrOutOfOrderSequence
	}
	return c.Broker.Produce(ctx, req)
}

func (c *outOfOrderOnce) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	if c.produces.Add(1) == 1 {
		return api.ProduceResponse{}, nil, producer.ErrOutOfOrderSequence
	}
	return c.Broker.ProduceAsync(ctx, req)
}

// TestReview40NonIdempotentOutOfOrderFailsBatchOnly: a producer without
// idempotence whose Client answers ErrOutOfOrderSequence (which it cannot
// retry under a new producer id: it has none) fails that batch's records
// with it, not retried, and stays usable: the next record is delivered.
func TestReview40NonIdempotentOutOfOrderFailsBatchOnly(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	for _, tc := range []struct {
		name string
		opts []producer.Opt
	}{
		{"one in flight", []producer.Opt{producer.DisableIdempotence(), producer.MaxInFlight(1)}},
		{"default", []producer.Opt{producer.DisableIdempotence()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &outOfOrderOnce{Broker: b}
			p := newProducer(t, c, tc.opts...)
			ctx := testCtx(t)
			err := p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("refused")})
			require.ErrorIs(t, err, producer.ErrOutOfOrderSequence)
			require.Equal(t, int32(1), c.produces.Load(), "attempts of the refused batch")
			r := &record.Record{Topic: "t", Value: []byte("next")}
			require.NoError(t, p.ProduceSync(ctx, r))
			require.Equal(t, int32(2), c.produces.Load())
		})
	}
}
