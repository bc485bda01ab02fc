package producer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// Linger's doc: "A batch that reaches BatchMaxBytes ... is sent without
// waiting", as Kafka's Java producer sends a batch that is full
// (RecordAccumulator.ready: batch.isFull(), its bytes at batch.size) at
// once, whatever linger.ms. A batch exactly BatchMaxBytes long, or one
// with less room left than the smallest record takes (which no record can
// join), was not sent until its whole Linger passed, or until a record
// that did not fit came to close it.
func TestHuntFullBatchDoesNotLinger(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	mk := func() *record.Record {
		return &record.Record{Topic: "t", Value: []byte("0123456789"), Timestamp: t0}
	}
	exact := encodedSize(t, mk(), mk(), mk())
	for _, tc := range []struct {
		name string
		max  int
	}{
		{"exactly BatchMaxBytes", exact},
		// 3 bytes short of the next record's room: no record is that small
		// (the smallest, with a nil key and value, takes 7 bytes here).
		{"no room for the smallest record", exact + 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			p := newProducer(t, b, producer.Linger(time.Hour),
				producer.DeliveryTimeout(2*time.Hour), producer.BatchMaxBytes(tc.max))
			done := make(chan error, 3)
			for range 3 {
				p.Produce(testCtx(t), mk(), func(_ *record.Record, err error) { done <- err })
			}
			for i := range 3 {
				select {
				case err := <-done:
					require.NoError(t, err)
				case <-time.After(5 * time.Second):
					t.Fatal(fmt.Sprintf("record %d: its full batch (BatchMaxBytes %d) still lingers after 5 s", i, tc.max))
				}
			}
			require.Len(t, readBatches(t, b, "t", 0), 1)
		})
	}
}
