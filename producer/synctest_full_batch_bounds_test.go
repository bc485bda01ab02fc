package producer_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// A batch with room left for exactly the smallest record is not full
// (batch.full's bound is >, not >=): it lingers, and a record of that size
// joins it. Only with it does the batch reach BatchMaxBytes and go at once.
func TestSynctestBatchWithRoomForTheSmallestRecordLingers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		ts := time.Now()
		mk := func(v []byte) *record.Record { return &record.Record{Topic: "t", Value: v, Timestamp: ts} }
		v := []byte("0123456789")
		max := encodedSize(t, mk(v), mk(v), mk(v), mk(nil))
		p, err := producer.New(c, producer.Linger(time.Hour),
			producer.DeliveryTimeout(2*time.Hour), producer.BatchMaxBytes(max))
		require.NoError(t, err)
		defer p.Close()
		done := make(chan timedOutcome, 4)
		promise := func(r *record.Record, err error) { done <- timedOutcome{time.Now(), err, r} }
		for range 3 {
			p.Produce(t.Context(), mk(v), promise)
		}
		synctest.Wait()
		require.Empty(t, c.sent(), "a batch with room for the smallest record was sent as full")
		p.Produce(t.Context(), mk(nil), promise)
		for i := range 4 {
			o := <-done
			require.NoError(t, o.err)
			require.Equal(t, ts, o.at, "record %d", i)
		}
		require.Equal(t, []time.Time{ts}, c.sent(), "one request, at once")
	})
}

// A batch that fills while the partition's goroutine already lingers on
// it (parked on its Linger timer, not idle) goes at once: addRecord wakes
// the goroutine for a full batch (idle || full), not only an idle one.
func TestSynctestBatchFilledWhileItLingersGoesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		ts := time.Now()
		mk := func() *record.Record {
			return &record.Record{Topic: "t", Value: []byte("0123456789"), Timestamp: ts}
		}
		max := encodedSize(t, mk(), mk(), mk())
		p, err := producer.New(c, producer.Linger(time.Hour),
			producer.DeliveryTimeout(2*time.Hour), producer.BatchMaxBytes(max))
		require.NoError(t, err)
		defer p.Close()
		done := make(chan timedOutcome, 3)
		promise := func(r *record.Record, err error) { done <- timedOutcome{time.Now(), err, r} }
		p.Produce(t.Context(), mk(), promise)
		p.Produce(t.Context(), mk(), promise)
		synctest.Wait() // the goroutine lingers on the batch
		p.Produce(t.Context(), mk(), promise)
		for i := range 3 {
			o := <-done
			require.NoError(t, o.err)
			require.Equal(t, ts, o.at, "record %d: the batch filled as it lingered, and lingered on", i)
		}
		require.Equal(t, []time.Time{ts}, c.sent())
	})
}
