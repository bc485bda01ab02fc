package producer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestTopicLookUpEndsOnClosedClientError: a look-up answered with an
// error that matches api.ErrBrokerClosed is not retried, also when the
// error matches one Kafka's table calls retriable too (api.IsRetriable
// takes the first row it matches: REQUEST_TIMED_OUT before
// BROKER_NOT_AVAILABLE), as the consumer ends on such an error: the
// Client is closed, and asking it again until DeliveryTimeout changes
// nothing. The record fails with the Client's error, once.
func TestTopicLookUpEndsOnClosedClientError(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	closed := fmt.Errorf("%w: %w", api.ErrBrokerClosed, api.ErrRequestTimedOut)
	require.True(t, api.IsRetriable(closed), "the case at hand")
	errs := make([]error, 100)
	for i := range errs {
		errs[i] = closed
	}
	c := &flakyPartitions{Broker: b, errs: errs}
	p := newProducer(t, c, producer.RetryBackoff(time.Millisecond), producer.DeliveryTimeout(time.Second))
	err := p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("v")})
	require.ErrorIs(t, err, api.ErrBrokerClosed)
	require.NotErrorIs(t, err, producer.ErrDeliveryTimeout)
	require.Equal(t, 1, c.callCount(), "look-ups")
}
