package producer_test

import (
	"context"
	"errors"
	"sync/atomic"
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

// slowLookup is a producer.Client whose Partitions answers only when its
// ctx ends (a broker that waits, say for an admin call, to auto-create
// the topic); it produces nothing.
type slowLookup struct{ entered chan struct{} }

func (c *slowLookup) Partitions(ctx context.Context, _ string) (int, error) {
	c.entered <- struct{}{}
	<-ctx.Done()
	return 0, ctx.Err()
}

func (c *slowLookup) InitProducerID(context.Context) (int64, int16, error) {
	return 0, 0, errors.New("unexpected InitProducerID")
}

func (c *slowLookup) Produce(context.Context, *api.ProduceRequest) (api.ProduceResponse, error) {
	return api.ProduceResponse{}, errors.New("unexpected Produce")
}

// A Produce that waits for the broker's answer to its topic's partition
// count (a topic it has not written to yet) is ended by Close, as one
// waiting for buffer space is: its promise gets ErrClosed — not the
// error of a ctx, which would say that the record's own ctx ended. It
// waited for the record's ctx alone, for ever with one that never ends.
func TestCloseEndsAProduceWaitingForItsTopic(t *testing.T) {
	c := &slowLookup{entered: make(chan struct{}, 1)}
	p, err := producer.New(c)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends the call if Close does not
	got := make(chan error, 1)
	go p.Produce(ctx, &record.Record{Topic: "t", Value: []byte("v")}, func(_ *record.Record, err error) { got <- err })
	testkit.AwaitHold(t, c.entered, got, "the Produce")
	require.NoError(t, p.Close())
	select {
	case err := <-got:
		require.ErrorIs(t, err, producer.ErrClosed)
		require.NotErrorIs(t, err, context.Canceled)
	case <-testCtx(t).Done():
		t.Fatal("Close does not end a Produce waiting for its topic's partition count")
	}
}

// A Produce waiting for its topic's partition count heeds its ctx: the
// promise gets ctx's error (the record was not written), nothing is
// buffered, and the record is left as it was.
func TestCtxEndsAProduceWaitingForItsTopic(t *testing.T) {
	c := &slowLookup{entered: make(chan struct{}, 1)}
	p := newProducer(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	r := &record.Record{Topic: "t", Value: []byte("v")}
	go p.Produce(ctx, r, func(_ *record.Record, err error) { got <- err })
	testkit.AwaitHold(t, c.entered, got, "the Produce")
	cancel()
	select {
	case err := <-got:
		require.ErrorIs(t, err, context.Canceled)
	case <-testCtx(t).Done():
		t.Fatal("a Produce waiting for its topic's partition count does not heed its ctx")
	}
	require.NoError(t, p.Flush(testCtx(t))) // the space is freed after the promise
	require.Zero(t, p.BufferedRecords())
	require.True(t, r.Timestamp.IsZero())
}

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

// TestLookUpCutByCloseEndsWithErrClosed: a partition-count look-up
// that Close cuts short answers with a retriable error (a Client that
// does not return ctx's error); the look-up is not retried, the record
// fails with ErrClosed (with the look-up's error beside it, not as a
// delivery timeout), once.
func TestLookUpCutByCloseEndsWithErrClosed(t *testing.T) {
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
	case <-time.After(testkit.HangGuard):
		t.Fatal("the look-up never began")
	}
	require.NoError(t, p.Close())
	select {
	case err := <-got:
		require.ErrorIs(t, err, producer.ErrClosed)
		require.ErrorIs(t, err, api.ErrRequestTimedOut, "the look-up's error, beside ErrClosed")
		require.NotErrorIs(t, err, producer.ErrDeliveryTimeout)
	case <-time.After(testkit.HangGuard):
		t.Fatal("the record's promise never ran")
	}
	require.Equal(t, int32(1), c.calls.Load(), "look-ups: one, not retried after Close")
}
