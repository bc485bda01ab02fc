package consumer_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestReview43opsCorruptBatchLoggedOnChange: a consumer stuck on a
// corrupt batch reports it to the application at every retry (each
// RetryBackoff), as it should; its log says so at Warn once, and again
// every so often while it lasts ("failing", as for a transient error),
// not at every retry: a minute at the default 500 ms backoff made 120
// Warn lines.
func TestReview43opsCorruptBatchLoggedOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		syncProduce(t, b, "a", "b")
		f := runneltest.NewFaults(t, b)
		var mu sync.Mutex
		levels := map[slog.Level]int{}
		c, err := consumer.New(f, consumer.Logger(slog.New(testkit.LineFunc(func(r slog.Record) {
			if r.Message == "partition error" {
				mu.Lock()
				levels[r.Level]++
				mu.Unlock()
			}
		}))))
		require.NoError(t, err)
		defer c.Close()
		f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions, Err: record.ErrCorrupt, Count: runneltest.Unlimited})
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		reported := 0
		for ctx.Err() == nil {
			fs, err := c.Poll(ctx)
			if err != nil {
				break
			}
			for _, fe := range fs {
				require.ErrorIs(t, fe.Err, record.ErrCorrupt)
				reported++
			}
		}
		require.Greater(t, reported, 100, "reported at each retry")
		mu.Lock()
		defer mu.Unlock()
		require.Positive(t, levels[slog.LevelWarn])
		require.LessOrEqual(t, levels[slog.LevelWarn], 3, "one Warn, then one every 30s: %v", levels)
	})
}
