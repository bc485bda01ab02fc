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

// recvWithin waits for a value from ch, failing the test after testkit.HangGuard: a
// bound that turns a hang into a failure, not a timing assertion.
func recvWithin[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testkit.HangGuard):
		t.Fatalf("%s: still waiting after %v", what, testkit.HangGuard)
		panic("unreachable")
	}
}

// TestCtxEndsProduceWaitingForSpace: a Produce that waits for
// buffer space and whose ctx ends returns, its promise given ctx's error
// on the caller's goroutine before it returns; the record takes no space
// (BufferedRecords), is left as it was, and never reaches the log, while
// the records around it are delivered. A TryProduce meanwhile fails fast
// and takes no space either.
func TestCtxEndsProduceWaitingForSpace(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	hold := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
	p := newProducer(t, f, producer.DefaultTopic("t"), producer.MaxBufferedRecords(1))
	ctx := testCtx(t)

	a := &record.Record{Value: []byte("a")}
	outA := make(chan error, 1)
	p.Produce(ctx, a, func(_ *record.Record, err error) { outA <- err })
	require.NoError(t, hold.Wait(ctx, 1)) // a is in flight, held: the buffer is full

	var tryErr error
	p.TryProduce(ctx, &record.Record{Value: []byte("try")}, func(_ *record.Record, err error) { tryErr = err })
	require.ErrorIs(t, tryErr, producer.ErrMaxBuffered)

	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rb := &record.Record{Value: []byte("b")}
	type result struct {
		err      error
		promised bool
	}
	var bErr error
	bPromised := false
	returned := make(chan result, 1)
	go func() {
		p.Produce(bctx, rb, func(_ *record.Record, err error) { bErr, bPromised = err, true })
		returned <- result{bErr, bPromised}
	}()
	time.Sleep(20 * time.Millisecond) // most likely waiting for space by now; the outcome is the same if not
	cancel()
	res := recvWithin(t, returned, "Produce whose ctx ended")
	require.True(t, res.promised, "the promise did not run before Produce returned")
	require.ErrorIs(t, res.err, context.Canceled)
	require.False(t, producer.MayBeWritten(res.err))
	require.Empty(t, rb.Topic, "a record that failed before it was buffered is left as it was")
	require.True(t, rb.Timestamp.IsZero(), "a record that failed before it was buffered is left as it was")
	require.EqualValues(t, 1, p.BufferedRecords(), "the cancelled record takes space")

	c := &record.Record{Value: []byte("c")}
	outC := make(chan error, 1)
	go p.Produce(ctx, c, func(_ *record.Record, err error) { outC <- err })
	hold.Remove()
	require.NoError(t, recvWithin(t, outA, "a's promise"))
	require.NoError(t, recvWithin(t, outC, "c's promise"))
	require.NoError(t, p.Flush(ctx))
	require.Zero(t, p.BufferedRecords())
	require.Equal(t, []string{"a", "c"}, values(readRecords(t, b, "t", 0)))
}
