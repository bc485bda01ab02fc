package runnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestLoggerHandlerChurn: a Logger handler that, on the lines it gets
// (rolls, retention, compaction, reopens, log created...), produces to
// the line's topic, creates a topic, maintains the broker or changes a
// topic's config, while producers, Maintain calls, the broker's own
// maintenance, config changes that reopen the logs, and the creation
// and deletion of a topic run at once, in seeded random order: nothing
// deadlocks (every call, the handler's too, returns within testkit.HangGuard).
func TestLoggerHandlerChurn(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_HANDLER_CHURN", 4, 1, func(t *testing.T, seed uint64) {
		ctx := context.Background()
		var b atomic.Pointer[Broker]
		var inHandler, stuck atomic.Int32
		var n, lines atomic.Int64
		var hmu sync.Mutex
		hrng := rand.New(rand.NewPCG(seed, 1))
		pick := func(k int) int {
			hmu.Lock()
			defer hmu.Unlock()
			return hrng.IntN(k)
		}
		bounded := func(what string, call func() error) {
			done := make(chan error, 1)
			go func() { done <- call() }()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrTopicExists) && !errors.Is(err, ErrUnknownTopic) &&
					!errors.Is(err, log.ErrLogFenced) && !errors.Is(err, log.ErrClosed) {
					t.Errorf("%s: %v", what, err)
				}
			case <-time.After(testkit.HangGuard):
				stuck.Add(1)
				t.Errorf("%s did not return", what)
			}
		}
		handler := testkit.LineFunc(func(r slog.Record) {
			br := b.Load()
			if br == nil || inHandler.Load() > 4 { // bounds the recursion
				return
			}
			inHandler.Add(1)
			defer inHandler.Add(-1)
			lines.Add(1)
			switch pick(6) {
			case 0:
				bounded("Produce from the handler of "+r.Message, func() error {
					_, err := br.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: int32(pick(2)), Acks: api.AcksAll, Batches: batch(t, "h")})
					return err
				})
			case 1:
				bounded("CreateTopic from the handler of "+r.Message, func() error {
					return br.CreateTopic(ctx, fmt.Sprint("h", n.Add(1)%3), log.TopicConfig{Partitions: 1})
				})
			case 2:
				bounded("Maintain from the handler of "+r.Message, func() error { return br.Maintain(ctx) })
			case 3:
				bounded("UpdateTopicConfig from the handler of "+r.Message, func() error {
					return br.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 1<<20 + pick(3) })
				})
			}
		})
		br := open(t, Config{MaintenanceInterval: time.Millisecond, Logger: slog.New(handler)})
		cfg := log.Config{SegmentBytes: 200, RetentionBytes: 600, CleanupPolicy: log.Delete | log.Compact, MinCleanableDirtyRatio: -1}
		require.NoError(t, br.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: cfg}))
		b.Store(br)
		var wg sync.WaitGroup
		for w := range 4 {
			rng := rand.New(rand.NewPCG(seed, uint64(w)+10))
			wg.Go(func() {
				for i := range 40 {
					switch rng.IntN(6) {
					case 0, 1, 2:
						bounded("Produce", func() error {
							_, err := br.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: int32(rng.IntN(2)), Acks: api.AcksAll, Batches: keyed(t, fmt.Sprint("k", i%4), "v")})
							return err
						})
					case 3:
						bounded("Maintain", func() error { return br.Maintain(ctx) })
					case 4:
						bounded("UpdateTopicConfig", func() error {
							return br.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 1<<20 + rng.IntN(3) })
						})
					case 5:
						bounded("CreateTopic or DeleteTopic", func() error {
							if rng.IntN(2) == 0 {
								return br.CreateTopic(ctx, "side", log.TopicConfig{Partitions: 1})
							}
							return br.DeleteTopic(ctx, "side")
						})
					}
					if stuck.Load() != 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		if stuck.Load() == 0 {
			bounded("Close", br.Close)
		}
		t.Logf("%d lines handled", lines.Load())
	})
}
