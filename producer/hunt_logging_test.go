package producer_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// stuckCountClient answers the first partition count from its broker and
// holds every later one until its ctx ends.
type stuckCountClient struct {
	hookClient
	asked atomic.Int32
}

func (c *stuckCountClient) Partitions(ctx context.Context, topic string) (int, error) {
	if c.asked.Add(1) == 1 {
		return c.b.Partitions(ctx, topic)
	}
	<-ctx.Done()
	return 0, ctx.Err()
}

// TestLookUpEndedByTheCallersCtxNoWarning: a record whose partition is
// past the count the producer knows has the count looked up again
// (lookUpNow); the caller's ctx ending that wait is the caller's choice,
// which the record's promise gets (ctx's error), not a failure for an
// operator to act on: no line at Warn or above ("cannot refresh the
// partition count" was one, for every such record whose ctx ended).
func TestLookUpEndedByTheCallersCtxNoWarning(t *testing.T) {
	ctx := testCtx(t)
	b := newBroker(t)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	var mu sync.Mutex
	var warned []string
	l := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Level >= slog.LevelWarn {
			mu.Lock()
			warned = append(warned, r.Message)
			mu.Unlock()
		}
	}))
	c := &stuckCountClient{hookClient: hookClient{b: b}}
	p := newProducer(t, c, producer.Logger(l), producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Partition: 0, Value: []byte("a")}))
	rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := p.ProduceSync(rctx, &record.Record{Topic: "t", Partition: 3, Value: []byte("b")})
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, warned, "the caller's ctx ended a look-up")
}
