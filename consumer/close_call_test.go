package consumer_test

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/api"
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

// Close is idempotent, and returns once no call to the Client is in
// flight. A second Close while the first waited for a Poll returned nil
// at once, with the Poll's Fetch still in flight: a caller that closes
// from two places could then close the broker under it.
func TestSecondCloseWaitsForTheFirst(t *testing.T) {
	var inFlight atomic.Int32
	entered, release := make(chan struct{}, 1), make(chan struct{})
	fc := &fakeClient{t: t, fetch: func(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		entered <- struct{}{}
		<-ctx.Done()
		<-release // a Client slow to return once its ctx ended
		return api.FetchResponse{}, ctx.Err()
	}}
	c, err := consumer.New(fc)
	require.NoError(t, err)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	polled := async(func() error { _, err := c.Poll(testCtx(t)); return err })
	recv(t, entered)
	first := async(func() error { return c.Close() })
	second := async(func() error { return c.Close() })
	// One of the two Closes waits for the Poll; the other must not
	// return before it does.
	select {
	case err := <-first:
		require.NoError(t, err)
		t.Error("a Close returned while the Poll's Fetch was in flight")
		close(release)
		recv(t, second)
	case err := <-second:
		require.NoError(t, err)
		t.Error("a Close returned while the Poll's Fetch was in flight")
		close(release)
		recv(t, first)
	case <-waitForCloses(t):
		close(release)
		require.NoError(t, recv(t, first))
		require.NoError(t, recv(t, second))
		require.Zero(t, inFlight.Load())
	}
	require.ErrorIs(t, recv(t, polled), consumer.ErrClosed)
}

// waitForCloses returns a channel closed once two goroutines wait in
// Consumer.Close (or never, until the test ends).
func waitForCloses(t *testing.T) <-chan struct{} {
	ctx := testCtx(t)
	ch := make(chan struct{})
	go func() {
		buf := make([]byte, 1<<20)
		for ctx.Err() == nil {
			n := runtime.Stack(buf, true)
			waiting := 0
			for _, g := range strings.Split(string(buf[:n]), "\n\n") {
				if strings.Contains(g, "consumer.(*Consumer).Close(") &&
					(strings.Contains(g, "[chan receive") || strings.Contains(g, "[sync.WaitGroup.Wait") || strings.Contains(g, "[semacquire")) {
					waiting++
				}
			}
			if waiting >= 2 {
				close(ch)
				return
			}
			runtime.Gosched()
		}
	}()
	return ch
}
