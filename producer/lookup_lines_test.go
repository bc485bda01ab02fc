package producer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
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
	var warned testkit.Warned
	l := warned.Logger()
	c := &stuckCountClient{hookClient: hookClient{b: b}}
	p := newProducer(t, c, producer.Logger(l), producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Partition: 0, Value: []byte("a")}))
	rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := p.ProduceSync(rctx, &record.Record{Topic: "t", Partition: 3, Value: []byte("b")})
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	require.Empty(t, warned.Messages(), "the caller's ctx ended a look-up")
}

// failingCountClient fails every look-up of a partition count with a
// retriable error while fail is set (a broker that cannot create the
// topic, its disk full).
type failingCountClient struct {
	hookClient
	fail atomic.Bool
}

func (c *failingCountClient) Partitions(ctx context.Context, topic string) (int, error) {
	if c.fail.Load() {
		return 0, fmt.Errorf("%w: auto-creating topic %s: no space left on device", api.ErrStorage, topic)
	}
	return c.b.Partitions(ctx, topic)
}

// TestRecordsFailedByTheirTopicsLookUpLogged: records that fail because
// the broker does not answer their topic's partition count by
// DeliveryTimeout (it cannot create the topic: its disk is full) are
// lost as surely as a batch that fails ("batch failed", at Warn), and
// the operator must act the same; they were logged at Debug only
// ("retrying the partition count"), and the broker logs nothing of a
// failed auto-creation: nothing at Warn told of records failing. Logged
// at Warn once, not for every record: a run per topic, as for failed
// batches.
//
// In a synctest bubble: a look-up that answers must answer within the
// 50 ms DeliveryTimeout, which on the real clock a loaded machine could
// miss.
func TestRecordsFailedByTheirTopicsLookUpLogged(t *testing.T) {
	synctest.Test(t, testRecordsFailedByTheirTopicsLookUpLogged)
}

func testRecordsFailedByTheirTopicsLookUpLogged(t *testing.T) {
	ctx := testCtx(t)
	b := newBroker(t)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	var mu sync.Mutex
	var warned []map[string]string
	l := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Level < slog.LevelWarn {
			return
		}
		m := map[string]string{"msg": r.Message}
		r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
		mu.Lock()
		warned = append(warned, m)
		mu.Unlock()
	}))
	c := &failingCountClient{hookClient: hookClient{b: b}}
	c.fail.Store(true)
	p := newProducer(t, c, producer.Logger(l), producer.RetryBackoff(time.Millisecond),
		producer.DeliveryTimeout(50*time.Millisecond))
	for range 3 {
		err := p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("a")})
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
	}
	mu.Lock()
	require.Len(t, warned, 1, "three records failed, one line at Warn: %v", warned)
	require.Equal(t, "t", warned[0]["topic"], "%v", warned)
	require.Contains(t, warned[0]["err"], "no space left on device", "%v", warned)
	mu.Unlock()
	c.fail.Store(false)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("b")}))
}
