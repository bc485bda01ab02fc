package consumer_test

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/stretchr/testify/require"
)

// closingClient is the broker, but for a Fetch that closes the consumer
// first when its turn comes (a Client of the application's that gives up
// for good).
type closingClient struct {
	*runnel.Broker
	mu      sync.Mutex
	c       *consumer.Consumer
	closeAt int // the Fetch call that closes; 0: none
	calls   int
}

func (cc *closingClient) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	cc.mu.Lock()
	cc.calls++
	c, now := cc.c, cc.calls == cc.closeAt
	cc.mu.Unlock()
	if now {
		_ = c.Close()
	}
	return cc.Broker.Fetch(ctx, req)
}

// TestMisuseStress shares one consumer between goroutines that misuse it
// as real applications do: several Records loops and Polls at once,
// Poll, Seek, Pause, Unassign and nested Records loops from inside a
// loop body, breaking out and ranging the same sequence again, changes
// from other goroutines, ctxs that end, records produced and a topic
// deleted meanwhile, and Close from a loop body, from a Client's Fetch
// and from other goroutines. What must hold: nothing hangs (every call
// returns once Close has, within the test's bound), nothing panics, a
// closed consumer yields nothing more, and -race finds nothing. (What
// each loop yields is the chaos test's to check, with its log of the
// changes.)
//
// A few seeds run by default; RUNNEL_CONSUMER_MISUSE=N runs N seeds (see
// testkit.Seeds), RUNNEL_CONSUMER_MISUSE_BASE=S replays seed S.
func TestMisuseStress(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_CONSUMER_MISUSE", 4, 2, runMisuse)
}

func runMisuse(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0xc0ffee))
	var rngMu sync.Mutex
	intn := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}
	b := openBroker(t, map[string]int{"t": 2, "u": 1})
	for i := range 20 {
		produce(t, b, "t", int32(i%2), compression.None, rec{value: "x"})
	}
	cc := &closingClient{Broker: b}
	c, err := consumer.New(cc, consumer.RetryBackoff(time.Millisecond), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, err)
	cc.mu.Lock()
	cc.c = c
	if intn(2) == 0 {
		cc.closeAt = 20 + intn(200)
	}
	cc.mu.Unlock()
	require.NoError(t, c.AssignTopic(testCtx(t), "t", consumer.Start()))
	require.NoError(t, c.Assign("u", 0, consumer.Start()))

	bound, cancelBound := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelBound()
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(bound, time.Duration(intn(3000))*time.Microsecond)
	}
	tps := []api.TopicPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}, {Topic: "u", Partition: 0}}
	change := func() {
		tp := tps[intn(len(tps))]
		switch intn(6) {
		case 0:
			_ = c.Seek(tp.Topic, tp.Partition, consumer.At(int64(intn(10))))
		case 1:
			c.Pause(tp)
		case 2:
			c.Resume(tp)
		case 3:
			c.Unassign(tp.Topic, tp.Partition)
		case 4:
			_ = c.Assign(tp.Topic, tp.Partition, consumer.Start())
		case 5:
			_, _ = c.Lag(tp.Topic, tp.Partition)
			_, _ = c.Position(tp.Topic, tp.Partition)
			_ = c.Assigned()
		}
	}
	// body is what a loop body does with a record on top of taking it.
	var body func(depth int)
	body = func(depth int) {
		switch intn(40) {
		case 0, 1, 2, 3, 4:
			change()
		case 5:
			ctx, cancel := short()
			_, _ = c.Poll(ctx)
			cancel()
		case 6:
			if depth < 2 {
				ctx, cancel := short()
				for range c.Records(ctx) {
					body(depth + 1)
					if intn(3) == 0 {
						break
					}
				}
				cancel()
			}
		case 7:
			if intn(10) == 0 {
				_ = c.Close()
			}
		}
	}

	var wg sync.WaitGroup
	loops := 3
	if os.Getenv("RUNNEL_CONSUMER_MISUSE") != "" {
		loops = 8
	}
	for range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; bound.Err() == nil && i < 30; i++ {
				ctx, cancel := short()
				seq := c.Records(ctx)
				for range 1 + intn(2) { // the same sequence, ranged again
					for _, err := range seq {
						if err != nil {
							break
						}
						body(0)
						if intn(8) == 0 {
							break
						}
					}
				}
				cancel()
				if _, err := c.Poll(bound); err == consumer.ErrClosed {
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // another goroutine: changes, records, a topic deleted
		defer wg.Done()
		for i := 0; i < 100 && bound.Err() == nil; i++ {
			change()
			if intn(5) == 0 {
				produce(t, b, "t", int32(intn(2)), compression.None, rec{value: "y"})
			}
			if i == 50 && intn(2) == 0 {
				if err := b.DeleteTopic(bound, "u"); err != nil {
					t.Errorf("delete u: %v", err)
				}
			}
		}
		if intn(2) == 0 {
			_ = c.Close()
		}
	}()

	finished := make(chan struct{})
	go func() {
		wg.Wait()
		require.NoError(t, c.Close())
		close(finished)
	}()
	select {
	case <-finished:
	case <-bound.Done():
		buf := make([]byte, 1<<20)
		t.Fatalf("seed %d: the misuse hangs; goroutines:\n%s", seed, buf[:runtime.Stack(buf, true)])
	}
	_, err = c.Poll(testCtx(t))
	require.ErrorIs(t, err, consumer.ErrClosed)
	for range c.Records(testCtx(t)) {
		t.Fatal("a closed consumer's Records yields")
	}
}
