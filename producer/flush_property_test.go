package producer_test

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestFlushWaitsForWhatCameBeforeItConcurrently: goroutines produce
// rounds of records (some with ctxs that end, some to topics the producer
// looks up for the first time, with a small buffer that makes Produce
// calls wait for space, batches lingering or not, through a client that
// fails and retries requests, with one request at a time and several in
// flight) and flush after each round, while the others go on producing:
// whenever Flush returns nil, the promise of every record its goroutine
// produced before it has run — whatever the other goroutines do — and
// every promise runs once.
func TestFlushWaitsForWhatCameBeforeItConcurrently(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 6
	}
	for _, tc := range []struct {
		inFlight int
		linger   time.Duration
	}{{1, 0}, {5, 0}, {1, time.Hour}, {5, time.Hour}} {
		t.Run(fmt.Sprintf("MaxInFlight=%d/linger=%v", tc.inFlight, tc.linger), func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 3}))
			c := &faultClient{Broker: b, dice: newDice(*flushSeed, uint64(tc.inFlight))}
			p, err := producer.New(c, producer.MaxInFlight(tc.inFlight), producer.Linger(tc.linger),
				producer.DeliveryTimeout(2*time.Hour), producer.RetryBackoff(100*time.Microsecond),
				producer.MaxBufferedRecords(8), producer.BatchMaxBytes(300))
			require.NoError(t, err)
			defer p.Close()
			ctx := testCtx(t)
			const goroutines = 4
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				problems []string
			)
			problem := func(f string, args ...any) {
				mu.Lock()
				problems = append(problems, fmt.Sprintf(f, args...))
				mu.Unlock()
			}
			for g := range goroutines {
				rnd := newDice(*flushSeed, uint64(10+g))
				wg.Add(1)
				go func() {
					defer wg.Done()
					var later []context.CancelFunc
					defer func() {
						for _, cancel := range later {
							cancel()
						}
					}()
					for round := range rounds {
						if g == 0 && round%3 == 0 {
							// A topic not written to yet: its records wait for
							// the partition count, holding buffer space.
							topic := fmt.Sprintf("new-%d", round)
							if err := b.CreateTopic(ctx, topic, log.TopicConfig{Partitions: 2}); err != nil {
								problem("CreateTopic: %v", err)
								return
							}
						}
						n := 1 + rnd.roll(12)
						ran := make([]atomic.Int32, n)
						for i := range n {
							topic := "t"
							if g == 0 && rnd.roll(3) == 0 {
								topic = fmt.Sprintf("new-%d", round/3*3)
							}
							rctx := ctx
							var cancel context.CancelFunc = func() {}
							if rnd.roll(6) == 0 {
								rctx, cancel = context.WithCancel(ctx)
							}
							r := &record.Record{Topic: topic, Key: []byte(fmt.Sprint(g, i%3)), Value: []byte(fmt.Sprintf("%d-%d-%d", g, round, i))}
							p.Produce(rctx, r, func(r *record.Record, err error) {
								if ran[i].Add(1) != 1 {
									problem("promise of %s ran again", r.Value)
								}
							})
							if rnd.roll(2) == 0 {
								cancel() // while buffered, or in flight
							} else {
								later = append(later, cancel)
							}
						}
						if err := p.Flush(ctx); err != nil {
							problem("Flush: %v", err)
							return
						}
						for i := range n {
							if ran[i].Load() != 1 {
								problem("goroutine %d round %d: record %d's promise had not run when Flush returned", g, round, i)
							}
						}
					}
				}()
			}
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			require.Empty(t, problems)
			require.Zero(t, p.BufferedRecords())
		})
	}
}

var flushSeed = flag.Uint64("flushseed", 13, "seed of TestFlushWaitsForWhatCameBeforeItConcurrently")
