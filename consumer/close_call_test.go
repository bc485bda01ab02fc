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
	case <-waitForCloses(t, 2):
		close(release)
		require.NoError(t, recv(t, first))
		require.NoError(t, recv(t, second))
		require.Zero(t, inFlight.Load())
	}
	require.ErrorIs(t, recv(t, polled), consumer.ErrClosed)
}

// waitForCloses returns a channel closed once want goroutines wait in
// Consumer.Close (or never, until the test ends).
func waitForCloses(t *testing.T, want int) <-chan struct{} {
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
			if waiting >= want {
				close(ch)
				return
			}
			runtime.Gosched()
		}
	}()
	return ch
}

// A Client's method that closes the consumer (a Client of the
// application's that gives up on a broker for good, say): Close cannot
// wait for the call in flight, its own caller's, so it closes the
// consumer and returns, and the Poll, the Records loop or the
// AssignTopic that made the call returns ErrClosed (ends) once the
// method returns. A second Close from elsewhere then waits for nothing.
// Before the fix Close waited for the call, that is for itself, for
// ever.
func TestCloseFromAClientMethod(t *testing.T) {
	for _, via := range []string{"Poll", "Records", "AssignTopic", "second Close"} {
		t.Run(via, func(t *testing.T) {
			var c *consumer.Consumer
			closed := make(chan error, 1)
			closeIt := func() { closed <- c.Close() }
			fc := &fakeClient{t: t,
				fetch: func(context.Context, *api.FetchRequest) (api.FetchResponse, error) {
					closeIt()
					return api.FetchResponse{}, api.ErrRequestTimedOut
				},
				partitions: func(context.Context, string) (int, error) {
					closeIt()
					return 1, nil
				},
			}
			var err error
			c, err = consumer.New(fc)
			require.NoError(t, err)
			ctx := testCtx(t)
			if via != "AssignTopic" {
				require.NoError(t, c.Assign("t", 0, consumer.At(0)))
			}
			var second <-chan error
			if via == "second Close" {
				// Close from elsewhere first, its wait for the Poll under
				// way; the Fetch's Close comes second.
				entered, release := make(chan struct{}), make(chan struct{})
				fc.fetch = func(ctx context.Context, _ *api.FetchRequest) (api.FetchResponse, error) {
					close(entered)
					<-release
					closeIt()
					return api.FetchResponse{}, ctx.Err()
				}
				polled := async(func() error { _, err := c.Poll(ctx); return err })
				recv(t, entered)
				second = async(func() error { return c.Close() })
				recv(t, async(func() struct{} { return <-waitForCloses(t, 1) }))
				close(release)
				require.ErrorIs(t, recv(t, polled), consumer.ErrClosed)
			} else {
				done := async(func() error {
					switch via {
					case "Poll":
						_, err := c.Poll(ctx)
						return err
					case "Records":
						for _, err := range c.Records(ctx) {
							return err
						}
						return consumer.ErrClosed // it ended
					default:
						return c.AssignTopic(ctx, "t", consumer.Start())
					}
				})
				require.ErrorIs(t, recv(t, done), consumer.ErrClosed)
			}
			require.NoError(t, recv(t, closed), "the Client's Close")
			if second != nil {
				require.NoError(t, recv(t, second), "the first Close")
			}
			require.NoError(t, c.Close())
			_, err = c.Poll(ctx)
			require.ErrorIs(t, err, consumer.ErrClosed)
		})
	}
}
