package producer_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestTopicLookUpEndsOnClosedClientError: a look-up answered with an
// error that matches api.ErrBrokerClosed is not retried, also when the
// error matches one Kafka's table calls retriable too (api.IsRetriable
// says no for it: every error of the table it matches must be
// retriable), as the consumer ends on such an error: the
// Client is closed, and asking it again until DeliveryTimeout changes
// nothing. The record fails with the Client's error, once.
//
// In a synctest bubble: the Client's error must come within the 1 s
// DeliveryTimeout, which on the real clock a loaded machine could miss.
func TestTopicLookUpEndsOnClosedClientError(t *testing.T) {
	synctest.Test(t, testTopicLookUpEndsOnClosedClientError)
}

func testTopicLookUpEndsOnClosedClientError(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	closed := fmt.Errorf("%w: %w", api.ErrBrokerClosed, api.ErrRequestTimedOut)
	require.False(t, api.IsRetriable(closed), "a closed Client's error, though it matches a retriable one too")
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

// closedAnswers is a Client whose produce requests and producer id
// requests are answered with err, counted.
type closedAnswers struct {
	*runnel.Broker
	err                error
	produces, initPIDs atomic.Int32
	failInitPID        bool
}

func (c *closedAnswers) Produce(context.Context, *api.ProduceRequest) (api.ProduceResponse, error) {
	c.produces.Add(1)
	return api.ProduceResponse{}, c.err
}

func (c *closedAnswers) ProduceAsync(context.Context, *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	c.produces.Add(1)
	return api.ProduceResponse{}, nil, c.err
}

func (c *closedAnswers) InitProducerID(ctx context.Context) (int64, int16, error) {
	c.initPIDs.Add(1)
	if c.failInitPID {
		return 0, 0, c.err
	}
	return c.Broker.InitProducerID(ctx)
}

// TestSendEndsOnClosedClientError: a produce request, or the producer id
// request before it, answered with an error that matches
// api.ErrBrokerClosed is not retried until DeliveryTimeout, also when
// the error matches a retriable one too: the batch fails with the
// Client's error after one attempt, as the look-up does (above).
func TestSendEndsOnClosedClientError(t *testing.T) {
	closed := fmt.Errorf("%w: %w", api.ErrBrokerClosed, api.ErrRequestTimedOut)
	for _, tc := range []struct {
		name        string
		failInitPID bool
		opts        []producer.Opt
	}{
		{"produce", false, nil},
		{"produce, one in flight", false, []producer.Opt{producer.MaxInFlight(1)}},
		{"producer id", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			c := &closedAnswers{Broker: b, err: closed, failInitPID: tc.failInitPID}
			p := newProducer(t, c, append(tc.opts, producer.RetryBackoff(time.Millisecond), producer.DeliveryTimeout(time.Second))...)
			err := p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("v")})
			require.ErrorIs(t, err, api.ErrBrokerClosed)
			require.NotErrorIs(t, err, producer.ErrDeliveryTimeout)
			if tc.failInitPID {
				require.EqualValues(t, 1, c.initPIDs.Load(), "producer id requests")
				require.Zero(t, c.produces.Load(), "produce requests")
			} else {
				require.EqualValues(t, 1, c.produces.Load(), "produce requests")
			}
		})
	}
}
