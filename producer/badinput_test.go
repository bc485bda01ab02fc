package producer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestMalformedRecordFailsAtOnce: a record the broker refuses as
// malformed in a sound batch (Kafka's INVALID_RECORD, not retriable)
// fails its batch at once, not after retries until the delivery timeout
// as a retriable CORRUPT_MESSAGE would.
func TestMalformedRecordFailsAtOnce(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	c.setHook(func(_ context.Context, _ int, req *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		// The last record's header count (its last byte: it has no
		// headers) claims two, with the CRC made to match.
		req.Batches[len(req.Batches)-1] = 4
		record.Batch(req.Batches).UpdateCRC()
		return next()
	})
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond), producer.DeliveryTimeout(10*time.Second))
	err := p.ProduceSync(testCtx(t), &record.Record{Value: []byte("v")})
	require.ErrorIs(t, err, log.ErrInvalidRecord)
	require.False(t, errors.Is(err, producer.ErrDeliveryTimeout), "%v", err)
	require.Len(t, c.requests(), 1, "not retried")
	require.Empty(t, readRecords(t, b, "t", 0))
}
