package producer_test

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// The producer's doc says a nil ctx is taken for context.Background by
// Produce, ProduceSync and Flush: records produced with one are
// delivered, lingering included (the linger's watch of a record's ctx
// skips it), and neither call panics.
func TestNilCtxIsBackground(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := runneltest.NewProducer(t, b, producer.Linger(time.Millisecond))
	var nilCtx context.Context
	done := make(chan error, 1)
	p.Produce(nilCtx, &record.Record{Topic: "t", Value: []byte("a")}, func(_ *record.Record, err error) { done <- err })
	require.NoError(t, p.ProduceSync(nilCtx, &record.Record{Topic: "t", Value: []byte("b")}))
	require.NoError(t, p.Flush(nilCtx))
	require.NoError(t, testkit.Await(t, done, "the record's promise"))
	require.Len(t, runneltest.ConsumeAll(t, b, "t"), 2)
}

// TestFlushNilCtxWaits: Flush's doc (with Produce's and
// ProduceSync's) takes a nil ctx for context.Background, but Flush
// selected on ctx.Done() once it had to wait for a batch: a nil pointer
// dereference whenever the records were not delivered at its first look
// (TestNilCtxIsBackground failed so, now and then, under -race).
// Here every Flush has a lingering batch to wait for.
func TestFlushNilCtxWaits(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := runneltest.NewProducer(t, b, producer.Linger(time.Minute))
	var nilCtx context.Context
	for i := range 20 {
		done := make(chan error, 1)
		p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte{byte(i)}}, func(_ *record.Record, err error) { done <- err })
		require.NoError(t, p.Flush(nilCtx))
		require.NoError(t, testkit.Await(t, done, "a record's promise"))
	}
	require.Len(t, runneltest.ConsumeAll(t, b, "t"), 20)
}
