package producer_test

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestLookUpEndedByCloseNoWarning: as TestLookUpEndedByTheCallersCtxNoWarning,
// for Close ending the look-up of a record's partition count (refreshBy's
// closed/ErrClosed check): the producer closing is its owner's choice, not
// a failure to warn of (400add7).
func TestLookUpEndedByCloseNoWarning(t *testing.T) {
	ctx := testCtx(t)
	b := newBroker(t)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	var warned testkit.Warned
	l := warned.Logger()
	c := &stuckCountClient{hookClient: hookClient{b: b}}
	p := newProducer(t, c, producer.Logger(l), producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Partition: 0, Value: []byte("a")}))
	done := make(chan error, 1)
	go func() {
		done <- p.ProduceSync(context.Background(), &record.Record{Topic: "t", Partition: 3, Value: []byte("b")})
	}()
	for c.asked.Load() < 2 { // the look-up is under way, stuck
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, p.Close())
	require.Error(t, testkit.Await(t, done, "ProduceSync's answer"))
	require.Empty(t, warned.Messages(), "Close ended a look-up")
}
