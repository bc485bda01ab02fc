package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestReview37PanicInRecordsBodyLosesNothing: a Records loop body that
// panics ends the loop as a break does, the record in hand counting as
// yielded (per Records' doc): a caller that recovers and goes on — with
// Records again, or with Poll — reads every record of every partition
// once, in offset order, whichever record of a batch (first, middle,
// last of a fetch) the panic came at.
func TestReview37PanicInRecordsBodyLosesNothing(t *testing.T) {
	const parts, batches, per = 3, 6, 5
	b := openBroker(t, map[string]int{"t": parts})
	for p := range int32(parts) {
		for k := range batches {
			var rs []rec
			for j := range per {
				rs = append(rs, rec{value: fmt.Sprintf("%d-%02d", p, k*per+j)})
			}
			produce(t, b, "t", p, compression.None, rs...)
		}
	}
	c := newConsumer(t, b, consumer.FetchMaxBytes(1)) // a batch a fetch: many fetches
	for p := range int32(parts) {
		require.NoError(t, c.Assign("t", p, consumer.Start()))
	}
	got := map[int32][]string{}
	n, seen := 0, 0
	// loop runs one Records loop that panics at the record after every
	// 7th, and reports whether it panicked.
	loop := func() (panicked bool) {
		defer func() {
			if v := recover(); v != nil {
				require.Equal(t, "review37", v)
				panicked = true
			}
		}()
		for r, err := range c.Records(testCtx(t)) {
			require.NoError(t, err)
			got[r.Partition] = append(got[r.Partition], string(r.Value))
			n++
			pos, ok := c.Position(r.Topic, r.Partition)
			require.True(t, ok)
			require.Greater(t, pos, r.Offset, "Position inside the body")
			if n == parts*batches*per {
				return false
			}
			if seen++; seen%7 == 0 {
				panic("review37")
			}
		}
		t.Fatal("the Records loop ended")
		return false
	}
	panics := 0
	for i := 0; ; i++ {
		if !loop() {
			break
		}
		panics++
		if i%2 == 1 {
			// Poll after the panic: it goes on from where the loop was.
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.NoError(t, fs.Err())
			fs.EachRecord(func(r *record.Record) {
				got[r.Partition] = append(got[r.Partition], string(r.Value))
				n++
			})
			if n == parts*batches*per {
				break
			}
			require.Less(t, n, parts*batches*per, "more records than there are")
		}
	}
	require.Greater(t, panics, 5)
	for p := range int32(parts) {
		var want []string
		for k := range batches * per {
			want = append(want, fmt.Sprintf("%d-%02d", p, k))
		}
		require.Equal(t, want, got[p], "partition %d", p)
	}
}

// TestReview37ChangeWakesABlockedRecordsLoop: a Records loop blocked in a
// long poll (FetchMaxWait of an hour: only a wake-up can end it) with
// nothing to read, is woken by a Seek, an Assign, or a Resume made from
// another goroutine, and reads from the new positions (the package doc:
// such calls "take effect at once: Poll returns early"). Bounded waits
// turn a loop left asleep into a failure.
func TestReview37ChangeWakesABlockedRecordsLoop(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(*consumer.Consumer) error
		change func(*consumer.Consumer) error
		want   []string
	}{
		{"seek", func(c *consumer.Consumer) error { return c.Assign("t", 0, consumer.End()) },
			func(c *consumer.Consumer) error { return c.Seek("t", 0, consumer.At(2)) },
			[]string{"0-2", "0-3"}},
		{"assign", func(c *consumer.Consumer) error { return c.Assign("t", 0, consumer.End()) },
			func(c *consumer.Consumer) error { return c.Assign("t", 1, consumer.At(1)) },
			[]string{"1-1", "1-2", "1-3"}},
		{"resume", func(c *consumer.Consumer) error {
			if err := c.Assign("t", 0, consumer.End()); err != nil {
				return err
			}
			if err := c.Assign("t", 1, consumer.At(3)); err != nil {
				return err
			}
			c.Pause(api.TopicPartition{Topic: "t", Partition: 1})
			return nil
		}, func(c *consumer.Consumer) error {
			c.Resume(api.TopicPartition{Topic: "t", Partition: 1})
			return nil
		}, []string{"1-3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openBroker(t, map[string]int{"t": 2})
			for p := range int32(2) {
				values(t, b, "t", p, seq(fmt.Sprintf("%d-", p), 0, 4)...)
			}
			sc := newSignalClient(b)
			c := newConsumer(t, sc, consumer.FetchMaxWait(time.Hour))
			require.NoError(t, tc.setup(c))
			out := make(chan string, 16)
			done := async(func() error {
				for r, err := range c.Records(testCtx(t)) {
					if err != nil {
						return err
					}
					out <- string(r.Value)
					if len(out) == len(tc.want) {
						return nil
					}
				}
				return nil
			})
			recv(t, sc.fetching) // the loop waits in its long poll
			require.NoError(t, tc.change(c))
			require.NoError(t, recv(t, done))
			close(out)
			var got []string
			for v := range out {
				got = append(got, v)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// review37CountingClient is a broker that counts the consumer's calls in
// flight, and notes a call that begins once closed is set.
type review37CountingClient struct {
	*runnel.Broker
	inFlight atomic.Int32
	closed   atomic.Bool
	late     atomic.Int32 // calls begun after closed was set
}

func (c *review37CountingClient) begin() func() {
	c.inFlight.Add(1)
	if c.closed.Load() {
		c.late.Add(1)
	}
	return func() { c.inFlight.Add(-1) }
}

func (c *review37CountingClient) Partitions(ctx context.Context, topic string) (int, error) {
	defer c.begin()()
	return c.Broker.Partitions(ctx, topic)
}

func (c *review37CountingClient) ListOffset(ctx context.Context, topic string, p int32, ts int64) (api.ListedOffset, error) {
	defer c.begin()()
	return c.Broker.ListOffset(ctx, topic, p, ts)
}

func (c *review37CountingClient) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	defer c.begin()()
	return c.Broker.Fetch(ctx, req)
}

// TestReview37NoClientCallAfterClose: goroutines Poll, range over Records,
// call AssignTopic and Seek on one consumer while another closes it at
// varying points. Once Close has returned no call to the Client is in
// flight, and none begins afterwards (Close's doc: it waits for a Poll or
// AssignTopic in progress, "so that no call to the Client is in flight
// afterwards"; later calls return ErrClosed).
func TestReview37NoClientCallAfterClose(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 3})
	for p := range int32(3) {
		values(t, b, "t", p, seq("v", 0, 20)...)
	}
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	for round := range rounds {
		cl := &review37CountingClient{Broker: b}
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
			<-started
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
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: calls still going 10 s after Close", round)
		}
		require.Zero(t, cl.late.Load(), "round %d: calls to the Client begun after Close returned", round)
	}
}
