package runnel

import (
	"context"
	"errors"
	"testing"

	"github.com/runnel/runnel/api"
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
	h := onceOnLine("rolled segment", func() {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, "rolled segment")})
		if err != nil {
			t.Errorf("Produce from the handler: %v", err)
		}
	})
	b = open(t, Config{Logger: h.logger()})
	h.armed.Store(true)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100}}))
	produce(t, b, "t", 0, "a")
	produce(t, b, "t", 0, "b")
	require.True(t, h.seen.Load())
	require.True(t, h.returned.Load(), "the handler's Produce blocked: the log logs its roll holding its writer lock")
}

// TestReview34LoggerMayCallTheBrokerOnLogCreated: the lines of a log
// that an admin call opens ("log created", recovery) reach the handler
// once the call has given the admin token back, as Config.Logger says of
// the broker's own lines: a handler may call an admin method on them. On
// the old code they were logged from inside log.Open, under the token: the
// handler's CreateTopic blocked (callBounded's 10s), and returned only
// once Close let it in, with "broker is closed".
func TestReview34LoggerMayCallTheBrokerOnLogCreated(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	h := onceOnLine("log created", func() {
		err := b.CreateTopic(ctx, "logs", log.TopicConfig{Partitions: 1})
		if err != nil && !errors.Is(err, ErrTopicExists) {
			t.Errorf("CreateTopic from the handler: %v", err)
		}
	})
	b = open(t, Config{Logger: h.logger()})
	h.armed.Store(true)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	require.True(t, h.seen.Load())
	require.True(t, h.returned.Load(), "CreateTopic from the handler of log created blocked")
}

// TestReview34LoggerMayProduceToTheReopenedPartition: the lines of a
// partition's log that a config change reopens ("log opened") reach the
// handler once the reopen has released the partition's lock (and the
// admin token): the handler may produce to that partition. On the old
// code they were logged from inside log.Open, under Partition.Reopen's
// write lock, which the handler's Produce waits for: it blocked
// (callBounded's 10s), and so did the config change.
func TestReview34LoggerMayProduceToTheReopenedPartition(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	h := onceOnLine("log opened", func() {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, "log opened")})
		if err != nil {
			t.Errorf("Produce from the handler: %v", err)
		}
	})
	b = open(t, Config{Logger: h.logger()})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")
	h.armed.Store(true)
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.RetentionBytes = 1 << 20 }))
	require.True(t, h.seen.Load())
	require.True(t, h.returned.Load(), "Produce from the handler of a reopen's log opened blocked")
}
