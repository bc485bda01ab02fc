package producer_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestReview37SynctestProduceSyncDoesNotLinger: ProduceSync waits for its
// records, so a batch of its lingering for more would only delay its
// caller: franz-go's kgo un-lingers the partitions ProduceSync produces to
// (v1.20.7, "ProduceSync now automatically un-lingers any partition that
// is produced to"), which the Linger doc cites ("kgo now lingers 10 ms by
// default, but not in ProduceSync"), and the README's NewPublisher pairs
// Linger(5ms) with a ProduceSync per event. On the fake clock: a
// ProduceSync through a producer with a minute's Linger returns at once,
// its record sent at once, with the record lingering before it on its
// partition; a Produce afterwards still lingers. It failed: ProduceSync
// returned a minute later, when the linger ended.
func TestReview37SynctestProduceSyncDoesNotLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		p, err := producer.New(c, producer.Linger(time.Minute))
		require.NoError(t, err)
		defer p.Close()
		a := produceAt(t, p, "a") // lingering, on the partition the ProduceSync writes to
		time.Sleep(time.Millisecond)
		t1 := time.Now()
		r := &record.Record{Topic: "t", Value: []byte("b")}
		require.NoError(t, p.ProduceSync(t.Context(), r))
		require.Equal(t, t1, time.Now(), "ProduceSync waited for the linger")
		require.Equal(t, []time.Time{t1}, c.sent(), "one request, at once, with both records")
		ra := <-a
		require.NoError(t, ra.err)
		require.Equal(t, t1, ra.at)
		require.EqualValues(t, 1, r.Offset)

		// Produce lingers as before.
		t2 := time.Now()
		require.NoError(t, (<-produceAt(t, p, "c")).err)
		require.Equal(t, t2.Add(time.Minute), time.Now())
		require.Equal(t, []time.Time{t1, t2.Add(time.Minute)}, c.sent())
	})
}
