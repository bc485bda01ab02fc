package consumer_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// While another goroutine pauses, resumes and reads positions, the
// Records loop sees every offset exactly once, in order.
func TestConcurrentPauseResumeNoLossNoDuplicates(t *testing.T) {
	const total = 2000
	b := openBroker(t, map[string]int{"t": 2})
	for i := 0; i < total; i += 10 {
		values(t, b, "t", 0, seq("v", i, 10)...)
		values(t, b, "t", 1, seq("v", i, 10)...)
	}
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.FetchMaxPartitionBytes(256))
	require.NoError(t, c.AssignTopic(testCtx(t), "t", consumer.Start()))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tp := api.TopicPartition{Topic: "t", Partition: 0}
		for i := 0; ; i++ {
			select {
			case <-stop:
				c.Resume(tp)
				return
			default:
			}
			if i%2 == 0 {
				c.Pause(tp)
			} else {
				c.Resume(tp)
			}
			c.Position("t", 0)
			time.Sleep(50 * time.Microsecond)
		}
	}()

	next := map[int32]int64{}
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	n := 0
	for r, err := range c.Records(ctx) {
		require.NoError(t, err)
		require.Equal(t, next[r.Partition], r.Offset, "partition %d", r.Partition)
		next[r.Partition]++
		if n++; n == 2*total {
			break
		}
		if n == total {
			close(stop)
			wg.Wait()
		}
	}
	require.Equal(t, 2*total, n)
}

// Concurrent Polls never return a record twice.
func TestConcurrentPollsNoDuplicates(t *testing.T) {
	const total = 500
	b := openBroker(t, map[string]int{"t": 1})
	for i := 0; i < total; i += 5 {
		values(t, b, "t", 0, seq("v", i, 5)...)
	}
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.FetchMaxPartitionBytes(1))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	ctx := testCtx(t)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if pos, _ := c.Position("t", 0); pos >= total || ctx.Err() != nil {
					return
				}
				fs, err := c.Poll(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for r, err := range fs.Records() {
					if err != nil {
						t.Error(err)
						continue
					}
					seen[r.Offset]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, seen, total)
	for off, k := range seen {
		require.Equal(t, 1, k, "offset %d", off)
	}
}

// A Poll and a Records loop reading the same partition at once never
// return a record twice: a Poll that fetched from the position a Records
// loop is advancing keeps its answer only if the position is still where
// it fetched from when it takes it (a compare-and-swap, as the loop's own
// steps are), else drops it. CRC checks and batches of many records widen
// the window between the Poll's look at the position and its move.
func TestPollAndRecordsNoDuplicates(t *testing.T) {
	const batches, perBatch = 20, 500
	const total = batches * perBatch
	b := openBroker(t, map[string]int{"t": 1})
	for i := 0; i < total; i += perBatch {
		values(t, b, "t", 0, seq("v", i, perBatch)...)
	}
	rounds := 200
	if testing.Short() {
		rounds = 30
	}
	for round := range rounds {
		c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.CheckCRCs(true))
		require.NoError(t, c.Assign("t", 0, consumer.At(0)))
		ctx, cancel := context.WithCancel(testCtx(t))
		var mu sync.Mutex
		seen := map[int64]int{}
		n := 0
		note := func(r *record.Record) {
			mu.Lock()
			defer mu.Unlock()
			seen[r.Offset]++
			if n++; n >= total {
				cancel()
			}
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			for r, err := range c.Records(ctx) {
				if err != nil {
					if !ctxEnd(ctx, err) {
						t.Error(err)
					}
					return
				}
				note(r)
			}
		}()
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				fs, err := c.Poll(ctx)
				if err != nil {
					if ctx.Err() == nil {
						t.Error(err)
					}
					return
				}
				fs.EachRecord(note)
			}
		}()
		wg.Wait()
		cancel()
		dups := 0
		for _, k := range seen {
			if k > 1 {
				dups++
			}
		}
		require.Zero(t, dups, "round %d: %d offsets returned more than once", round, dups)
		require.Len(t, seen, total)
		require.NoError(t, c.Close())
	}
}

// gatedClient holds the first ListOffset until released, so that a test
// can let another goroutine resolve and read the same partition first.
type gatedClient struct {
	*runnel.Broker
	calls    atomic.Int32
	waiting  chan struct{} // closed when the first ListOffset waits
	released chan struct{} // closed to let it answer
}

func (g *gatedClient) ListOffset(ctx context.Context, topic string, p int32, ts int64) (api.ListedOffset, error) {
	if g.calls.Add(1) == 1 {
		close(g.waiting)
		<-g.released
	}
	return g.Broker.ListOffset(ctx, topic, p, ts)
}

// A Poll whose look-up of Start answers after a Records loop resolved the
// same position and read on from it does not move the position back: the
// records the loop yielded are not returned again.
func TestLateResolveDoesNotRewind(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 10)...)
	g := &gatedClient{Broker: b, waiting: make(chan struct{}), released: make(chan struct{})}
	c := newConsumer(t, g, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	polled := async(func() consumer.Fetches {
		fs, err := c.Poll(testCtx(t))
		if err != nil {
			t.Error(err)
		}
		return fs
	})
	testkit.AwaitHold(t, g.waiting, polled, "the Poll")
	var got []string
	for r, err := range c.Records(testCtx(t)) {
		require.NoError(t, err)
		got = append(got, string(r.Value))
		if len(got) == 5 {
			close(g.released)
			for r := range recv(t, polled).Records() {
				got = append(got, string(r.Value))
			}
		}
		if len(got) >= 10 {
			break
		}
	}
	require.Equal(t, seq("v", 0, 10), got, "each record once, in order")
}
