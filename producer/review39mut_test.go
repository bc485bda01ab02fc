package producer_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// Tests that close gaps of session 39's mutation pass (see
// review39mut_internal_test.go for those of the internals).

// TestReview39SynctestProduceSyncStickyDoesNotLinger: ProduceSync does not
// wait for Linger (its doc) also when the partitioner moves its record on
// as it would open a new batch (KIP-480: the default
// StickyKeyPartitioner's OnNewBatch, which a topic's first record without
// a key meets, takes it to another partition of a topic of 2): the
// partition the record lands on is un-lingered too. On the fake clock,
// with a minute's Linger, each ProduceSync returns at once.
func TestReview39SynctestProduceSyncStickyDoesNotLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		require.NoError(t, c.CreateTopic(t.Context(), "two", log.TopicConfig{Partitions: 2}))
		p, err := producer.New(c, producer.Linger(time.Minute))
		require.NoError(t, err)
		defer p.Close()
		for i := range 4 {
			t1 := time.Now()
			r := &record.Record{Topic: "two", Value: []byte("v")}
			require.NoError(t, p.ProduceSync(t.Context(), r))
			require.Equal(t, t1, time.Now(), "ProduceSync %d waited for the linger", i)
		}
	})
}
