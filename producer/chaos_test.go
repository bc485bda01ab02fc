package producer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestAdminChaos produces from several goroutines (Produce and
// TryProduce, keyed and not, the promises of some calling TryProduce)
// while the topic grows, is deleted and created again, Flush runs with
// short deadlines, and Close comes in the middle of it all: every promise
// runs once, with nil or an error the producer documents for these
// events, and Close leaves no goroutine (TestMain's goleak).
func TestAdminChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("produces for a while")
	}
	for _, inFlight := range []int{1, 5} {
		t.Run(fmt.Sprint("MaxInFlight=", inFlight), func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Config(runnel.Config{TopicDefaults: log.Config{Sync: log.SyncAlways}}),
				runneltest.Topic("t", 2))
			ctx := testCtx(t)
			p, err := producer.New(b, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight),
				producer.MaxBufferedRecords(200), producer.MetadataMaxAge(time.Millisecond),
				producer.RetryBackoff(time.Millisecond))
			require.NoError(t, err)

			var produced, ran atomic.Int64
			var mu sync.Mutex
			errs := map[string]int{}
			var twice []string
			note := func(err error) {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					errs["nil"]++
				case errors.Is(err, api.ErrUnknownTopicOrPartition):
					errs["unknown"]++
				case errors.Is(err, producer.ErrClosed):
					errs["closed"]++
				case errors.Is(err, producer.ErrMaxBuffered):
					errs["full"]++
				default:
					errs[err.Error()]++
				}
			}
			promise := func() func(*record.Record, error) {
				produced.Add(1)
				var once atomic.Bool
				return func(r *record.Record, err error) {
					if once.Swap(true) {
						mu.Lock()
						twice = append(twice, string(r.Value))
						mu.Unlock()
					}
					note(err)
					ran.Add(1)
				}
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						r := &record.Record{Value: []byte(fmt.Sprintf("%d-%d", w, i))}
						if i%2 == 0 {
							r.Key = []byte(fmt.Sprint("k", i%7))
						}
						if i%3 == 0 {
							p.TryProduce(ctx, r, promise())
							continue
						}
						inner := promise()
						p.Produce(ctx, r, func(r *record.Record, err error) {
							if err == nil && i%5 == 0 {
								p.TryProduce(ctx, &record.Record{Value: []byte("re-" + string(r.Value))}, promise())
							}
							inner(r, err)
						})
					}
				}()
			}
			wg.Add(1)
			go func() { // flushes with short deadlines
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					fctx, cancel := context.WithTimeout(ctx, time.Millisecond)
					p.Flush(fctx)
					cancel()
				}
			}()
			until(t, ctx, func() bool { return ran.Load() > 300 }, "records")
			require.NoError(t, b.CreatePartitions(ctx, "t", 4))
			n := ran.Load()
			until(t, ctx, func() bool { return ran.Load() > n+300 }, "records")
			require.NoError(t, b.DeleteTopic(ctx, "t"))
			n = ran.Load()
			until(t, ctx, func() bool { return ran.Load() > n+100 }, "records")
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3}))
			n = ran.Load()
			until(t, ctx, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return ran.Load() > n+300 && errs["nil"] > 1000
			}, "records after the topic came back")
			require.NoError(t, b.CreatePartitions(ctx, "t", 5))
			n = ran.Load()
			until(t, ctx, func() bool { return ran.Load() > n+300 }, "records")
			require.NoError(t, p.Close())
			close(stop)
			wg.Wait()
			require.Equal(t, produced.Load(), ran.Load(), "promises run")
			require.Zero(t, p.BufferedRecords())
			require.Zero(t, p.BufferedBytes())
			mu.Lock()
			defer mu.Unlock()
			require.Empty(t, twice)
			t.Log(errs)
			for k := range errs {
				require.Contains(t, []string{"nil", "unknown", "closed", "full"}, k)
			}
		})
	}
}
