package runnel

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestReview34LoggerMayProduceToTheRollingPartition: the broker's Logger
// handler may produce to the partition whose log logged the line (an
// appender that ships the broker's lines to one of its topics). On the
// old code the log logged "rolled segment" holding its writer lock
// (log.Log.mu), which the handler's Produce waits for: that Produce, the
// one that rolled, and every later append to the partition deadlocked.
func TestReview34LoggerMayProduceToTheRollingPartition(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	var rolled, returned atomic.Bool
	b = open(t, Config{Logger: slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message != "rolled segment" || rolled.Swap(true) {
			return
		}
		returned.Store(callBounded(func() {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, r.Message)})
			if err != nil {
				t.Errorf("Produce from the handler: %v", err)
			}
		}))
	}))})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100}}))
	produce(t, b, "t", 0, "a")
	produce(t, b, "t", 0, "b")
	require.True(t, rolled.Load())
	require.True(t, returned.Load(), "the handler's Produce blocked: the log logs its roll holding its writer lock")
}
