package producer_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// Linger's doc: "A batch that reaches BatchMaxBytes ... is sent without
// waiting", as Kafka's Java producer sends a batch that is full
// (RecordAccumulator.ready: batch.isFull(), its bytes at batch.size) at
// once, whatever linger.ms. A batch exactly BatchMaxBytes long, or one
// with less room left than the smallest record takes (which no record can
// join), was not sent until its whole Linger passed, or until a record
// that did not fit came to close it.
func TestSynctestFullBatchDoesNotLinger(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra int // bytes of room past the three records
	}{
		{"exactly BatchMaxBytes", 0},
		// 3 bytes short of the next record's room: no record is that small
		// (the smallest, with a nil key and value, takes 7 bytes here).
		{"no room for the smallest record", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := bubbleBroker(t)
				ts := time.Now()
				mk := func() *record.Record {
					return &record.Record{Topic: "t", Value: []byte("0123456789"), Timestamp: ts}
				}
				max := encodedSize(t, mk(), mk(), mk()) + tc.extra
				p, err := producer.New(c, producer.Linger(time.Hour),
					producer.DeliveryTimeout(2*time.Hour), producer.BatchMaxBytes(max))
				require.NoError(t, err)
				defer p.Close()
				done := make(chan timedOutcome, 3)
				for range 3 {
					p.Produce(t.Context(), mk(), func(r *record.Record, err error) {
						done <- timedOutcome{time.Now(), err, r}
					})
				}
				for i := range 3 {
					o := <-done
					require.NoError(t, o.err)
					require.Equal(t, ts, o.at, "record %d: its full batch (BatchMaxBytes %d) lingered", i, max)
				}
				require.Equal(t, []time.Time{ts}, c.sent(), "one request, at once")
			})
		})
	}
}
