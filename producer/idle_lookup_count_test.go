package producer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// countingPartitions is a broker whose Partitions calls are counted.
type countingPartitions struct {
	*runnel.Broker
	n atomic.Int64
}

func (c *countingPartitions) Partitions(ctx context.Context, topic string) (int, error) {
	c.n.Add(1)
	return c.Broker.Partitions(ctx, topic)
}

// The look-up a record of an idle topic makes (its count MetadataMaxAge
// old) makes the count fresh: the partition's goroutine, started for the
// record, does not look it up again after its batch. Without the
// refreshAt the look-up sets, every wake of an idle topic asked twice.
func TestIdleProducerLookUpMakesTheCountFresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
		c := &countingPartitions{Broker: b}
		p, err := producer.New(c, producer.MetadataMaxAge(time.Minute))
		require.NoError(t, err)
		defer p.Close()
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("first")}))

		time.Sleep(time.Hour) // idle: its goroutines end
		synctest.Wait()
		before := c.n.Load()
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("after")}))
		time.Sleep(time.Second) // less than MetadataMaxAge: the goroutine ends meanwhile
		synctest.Wait()
		require.Equal(t, int64(1), c.n.Load()-before, "look-ups for the first record after the idle hour")
	})
}
