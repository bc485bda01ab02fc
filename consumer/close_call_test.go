package consumer_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
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
	case <-time.After(testkit.HangGuard):
		close(release)
		t.Fatalf("neither Close returned, nor did both wait, within %v", testkit.HangGuard)
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

// TestCloseRacingLoops: a Close at any point of a Poll loop or
// a Records loop leaves Position at the offset after the last record the
// loop got, and the loop got every record before it once, in order.
func TestCloseRacingLoops(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	for i := range 20 {
		values(t, b, "t", 0, seq("v", i*10, 10)...)
	}
	iters := 300
	if testing.Short() {
		iters = 50
	}
	for iter := range iters {
		c, err := consumer.New(b, consumer.FetchMaxPartitionBytes(300), consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, err)
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		usePoll := iter%2 == 1
		done := make(chan []*record.Record)
		go func() {
			var out []*record.Record
			if usePoll {
				for {
					fs, err := c.Poll(testCtx(t))
					if err != nil {
						break
					}
					for r := range fs.Records() {
						out = append(out, r)
					}
				}
			} else {
				for r, err := range c.Records(testCtx(t)) {
					if err == nil {
						out = append(out, r)
					}
				}
			}
			done <- out
		}()
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond) // where Close lands; not a sync
		require.NoError(t, c.Close())
		out := testkit.Await(t, done, "the loops' goroutine's answer")
		for i, r := range out {
			require.EqualValues(t, i, r.Offset)
		}
		p, ok := c.Position("t", 0)
		if !ok {
			require.Empty(t, out)
			continue
		}
		require.EqualValues(t, len(out), p, "iter %d poll %v", iter, usePoll)
	}
}

// A Close that lands while a Poll looks up a position (here: from inside
// the Client's ListOffset, once the broker answered, where Close returns
// without waiting for the Poll) makes that Poll return ErrClosed, as
// Close's and Poll's docs say, whichever of the Poll's checks sees it
// first. Many rounds: the Poll's ctx ends on a goroutine of its own
// (context.AfterFunc), and the bug showed when the Poll went on before it
// had.
func TestCloseDuringAPollsLookUp(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	ctx := testCtx(t)
	for range 200 {
		h := &listHookClient{Broker: b}
		c := newConsumer(t, h, consumer.FetchMaxWait(time.Hour))
		require.NoError(t, c.AssignTopic(ctx, "t", consumer.End()))
		h.afterNext(func() { require.NoError(t, c.Close()) })
		fs, err := c.Poll(ctx)
		require.ErrorIs(t, err, consumer.ErrClosed, "Poll's answer when Close interrupted its look-up: %v", fs)
	}
}

// callCountingClient is a broker that counts the consumer's calls in
// flight, and notes a call that begins once closed is set.
type callCountingClient struct {
	*runnel.Broker
	inFlight atomic.Int32
	closed   atomic.Bool
	late     atomic.Int32 // calls begun after closed was set
}

func (c *callCountingClient) begin() func() {
	c.inFlight.Add(1)
	if c.closed.Load() {
		c.late.Add(1)
	}
	return func() { c.inFlight.Add(-1) }
}

func (c *callCountingClient) Partitions(ctx context.Context, topic string) (int, error) {
	defer c.begin()()
	return c.Broker.Partitions(ctx, topic)
}

func (c *callCountingClient) ListOffset(ctx context.Context, topic string, p int32, ts int64) (api.ListedOffset, error) {
	defer c.begin()()
	return c.Broker.ListOffset(ctx, topic, p, ts)
}

func (c *callCountingClient) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	defer c.begin()()
	return c.Broker.Fetch(ctx, req)
}

// TestNoClientCallAfterClose: goroutines Poll, range over Records,
// call AssignTopic and Seek on one consumer while another closes it at
// varying points. Once Close has returned no call to the Client is in
// flight, and none begins afterwards (Close's doc: it waits for a Poll or
// AssignTopic in progress, "so that no call to the Client is in flight
// afterwards"; later calls return ErrClosed).
func TestNoClientCallAfterClose(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 3})
	for p := range int32(3) {
		values(t, b, "t", p, seq("v", 0, 20)...)
	}
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	for round := range rounds {
		cl := &callCountingClient{Broker: b}
		c, err := consumer.New(cl, consumer.FetchMaxWait(time.Millisecond), consumer.FetchMaxPartitionBytes(1))
		require.NoError(t, err)
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		var wg sync.WaitGroup
		started := make(chan struct{}, 4)
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				started <- struct{}{}
				ctx := context.Background()
				for k := 0; ; k++ {
					var err error
					switch g {
					case 0:
						_, err = c.Poll(ctx)
					case 1:
						for _, e := range c.Records(ctx) {
							if e != nil {
								err = e
								break
							}
							if k++; k%5 == 0 {
								break
							}
						}
						if c.Assign("t", 1, consumer.End()) != nil {
							return
						}
					case 2:
						err = c.AssignTopic(ctx, "t", consumer.At(int64(k%20)))
					case 3:
						err = c.Seek("t", 0, consumer.Start())
						if err == nil {
							runtime.Gosched()
						}
					}
					if errors.Is(err, consumer.ErrClosed) {
						return
					}
					if err != nil && !errors.Is(err, consumer.ErrNotAssigned) {
						t.Errorf("goroutine %d: %v", g, err)
						return
					}
				}
			}()
		}
		for range 4 {
			testkit.Await(t, started, "a calling goroutine's start")
		}
		for range round % 20 {
			runtime.Gosched()
		}
		require.NoError(t, c.Close())
		cl.closed.Store(true)
		require.Zero(t, cl.inFlight.Load(), "round %d: calls to the Client in flight after Close returned", round)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(testkit.HangGuard):
			t.Fatalf("round %d: calls still going %v after Close", round, testkit.HangGuard)
		}
		require.Zero(t, cl.late.Load(), "round %d: calls to the Client begun after Close returned", round)
	}
}
