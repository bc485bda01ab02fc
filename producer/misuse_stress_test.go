package producer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestMisuseStress shares one producer between goroutines that misuse it
// as real applications do: promises that call Produce, ProduceSync,
// Flush, TryProduce and Close (directly and on a goroutine), Flush and
// ProduceSync with ctxs that end, records produced with ctxs that end,
// a topic deleted and created again under the producer, and Close from
// several goroutines at once while all of that runs. What must hold:
// nothing hangs (every call returns once Close has, within the test's
// bound), nothing panics, every promise runs exactly once, and -race
// finds nothing.
//
// A few seeds run by default, with 6 goroutines; RUNNEL_MISUSE_STRESS=N
// runs N seeds (see testkit.Seeds) with 50, RUNNEL_MISUSE_STRESS_BASE=S
// replays seed S.
func TestMisuseStress(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_MISUSE_STRESS", 4, 2, runMisuse)
}

func runMisuse(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	topics := []string{"a", "b", "c"}
	var opts []runneltest.Option
	for _, name := range topics {
		opts = append(opts, runneltest.Topic(name, 1+rng.IntN(3)))
	}
	b := newBroker(t, opts...)
	popts := []producer.Opt{
		producer.MaxBufferedRecords(2 + rng.IntN(40)),
		producer.RetryBackoff(time.Millisecond),
		producer.DeliveryTimeout(5 * time.Second),
	}
	if rng.IntN(2) == 0 {
		popts = append(popts, producer.Linger(time.Millisecond))
	}
	if rng.IntN(2) == 0 {
		popts = append(popts, producer.MaxInFlight(1))
	}
	p, err := producer.New(b, popts...)
	require.NoError(t, err)

	// bound ends every call a goroutine makes: a hang fails the test
	// with the goroutines' stacks, it does not hold up CI.
	bound, cancelBound := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelBound()

	var (
		calls   sync.Map // *record.Record -> *atomic.Int32, promises run
		wg      sync.WaitGroup
		closers sync.WaitGroup
	)
	track := func(r *record.Record) func(*record.Record, error) {
		n := new(atomic.Int32)
		calls.Store(r, n)
		return func(got *record.Record, err error) {
			if got != r {
				t.Errorf("a promise got record %p, want %p", got, r)
			}
			if n.Add(1) != 1 {
				t.Errorf("the promise of %q ran twice (err %v)", r.Value, err)
			}
		}
	}
	var rngMu sync.Mutex // rng is shared by the goroutines
	intn := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(bound, time.Duration(intn(2000))*time.Microsecond)
	}
	newRec := func(g, i int) *record.Record {
		return &record.Record{Topic: topics[intn(len(topics))], Value: fmt.Appendf(nil, "%d-%d", g, i)}
	}
	// reenter is what a promise does on top of returning.
	reenter := func(g, i int) {
		switch intn(8) {
		case 0:
			r := newRec(g, i)
			p.TryProduce(bound, r, track(r))
		case 1:
			ctx, cancel := short()
			defer cancel()
			_ = p.Flush(ctx)
		case 2:
			ctx, cancel := short()
			defer cancel()
			_ = p.ProduceSync(ctx, newRec(g, i))
		case 3:
			ctx, cancel := short()
			defer cancel()
			r := newRec(g, i)
			p.Produce(ctx, r, track(r))
		case 4:
			if intn(20) == 0 {
				_ = p.Close()
			}
		case 5:
			if intn(20) == 0 {
				closers.Add(1)
				go func() {
					defer closers.Done()
					_ = p.Close()
				}()
			}
		}
	}
	goroutines, perG := 6, 60
	if os.Getenv("RUNNEL_MISUSE_STRESS") != "" {
		goroutines = 50 // a producer shared by a server's handlers
	}
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				switch intn(6) {
				case 0, 1, 2:
					r := newRec(g, i)
					promise := track(r)
					p.Produce(bound, r, func(got *record.Record, err error) {
						promise(got, err)
						reenter(g, i)
					})
				case 3:
					ctx, cancel := short()
					r := newRec(g, i)
					p.Produce(ctx, r, track(r))
					cancel()
				case 4:
					ctx, cancel := short()
					_ = p.ProduceSync(ctx, newRec(g, i), newRec(g, i+perG))
					cancel()
				case 5:
					ctx, cancel := short()
					_ = p.Flush(ctx)
					cancel()
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // the admin: a topic deleted and created again
		defer wg.Done()
		for range 2 {
			name := topics[intn(len(topics))]
			if err := b.DeleteTopic(bound, name); err != nil {
				t.Errorf("delete %s: %v", name, err)
				return
			}
			if err := b.CreateTopic(bound, name, log.TopicConfig{Partitions: 1 + intn(3)}); err != nil {
				t.Errorf("create %s: %v", name, err)
				return
			}
		}
	}()
	if intn(2) == 0 {
		// Close while the producers still run, from two goroutines.
		for range 2 {
			closers.Add(1)
			go func() {
				defer closers.Done()
				_ = p.Close()
			}()
		}
	}

	finished := make(chan struct{})
	go func() {
		wg.Wait()
		require.NoError(t, p.Close())
		closers.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-bound.Done():
		buf := make([]byte, 1<<20)
		t.Fatalf("seed %d: the misuse hangs; goroutines:\n%s", seed, buf[:runtime.Stack(buf, true)])
	}
	calls.Range(func(k, v any) bool {
		if n := v.(*atomic.Int32).Load(); n != 1 {
			t.Errorf("the promise of %q ran %d times, want once", k.(*record.Record).Value, n)
		}
		return true
	})
	require.Zero(t, p.BufferedRecords())
}
