package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// Close documents that no call to the Client is in flight once it has
// returned. AssignTopic's call of the Client's Partitions was neither
// interrupted nor waited for: Close returned while it was still in
// flight (and would have stayed so, with a ctx that never ends), and
// AssignTopic then failed with the Client's error rather than
// ErrClosed. Close now ends that call, waits for it, and AssignTopic
// returns ErrClosed.
func TestCloseEndsAndWaitsForAssignTopic(t *testing.T) {
	var inFlight atomic.Int32
	entered := make(chan struct{}, 1)
	fc := &fakeClient{t: t, partitions: func(ctx context.Context, topic string) (int, error) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		entered <- struct{}{}
		<-ctx.Done() // a Client that answers only when its ctx ends
		return 0, ctx.Err()
	}}
	c, err := consumer.New(fc)
	require.NoError(t, err)
	// A ctx that the test ends only after Close returned: the call must
	// end with Close, not with it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := async(func() error { return c.AssignTopic(ctx, "t", consumer.Start()) })
	recv(t, entered)
	closed := async(func() error { return c.Close() })
	require.NoError(t, recv(t, closed))
	require.Zero(t, inFlight.Load(), "Close returned with a call of AssignTopic's to the Client in flight")
	cancel()
	require.ErrorIs(t, recv(t, done), consumer.ErrClosed)
	require.Empty(t, c.Assigned())
}
