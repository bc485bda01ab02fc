package producer_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// When the delivery deadline cuts the last attempt short (a request, or
// a look-up of the producer id, in flight then), the record's
// ErrDeliveryTimeout still matches the broker's error of the attempt
// before, as ErrDeliveryTimeout's doc says ("the last error of the
// broker, when there was one"). It matched only the deadline's, so that
// which error a record failed with on a failing broker (a full disk's
// ENOSPC, a fenced log) depended on the machine's speed: the disk-full
// and fenced-log tests of the root package could fail under load.
func TestDeliveryTimeoutCutShortKeepsTheBrokersError(t *testing.T) {
	for _, stage := range []string{"request", "producer id"} {
		t.Run(stage, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBroker(t, runneltest.Topic("t", 1))
				c := &cutShortClient{hookClient: &hookClient{b: b}, initStuck: stage == "producer id"}
				c.setHook(func(ctx context.Context, call int, _ *api.ProduceRequest, _ func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
					if call == 0 {
						return api.ProduceResponse{}, api.ErrStorage
					}
					<-ctx.Done() // the retry, in flight at the deadline
					return api.ProduceResponse{}, ctx.Err()
				})
				err := produceCutShort(t, c)
				require.True(t, producer.MayBeWritten(err))
			})
		})
	}
}

// cutShortClient's first InitProducerID fails with a retriable error of
// the broker's and, if initStuck, the next ones do not answer until
// their ctx ends.
type cutShortClient struct {
	*hookClient
	initStuck bool
	inits     int
}

func (c *cutShortClient) InitProducerID(ctx context.Context) (int64, int16, error) {
	if !c.initStuck {
		return c.hookClient.InitProducerID(ctx)
	}
	c.mu.Lock()
	call := c.inits
	c.inits++
	c.mu.Unlock()
	if call == 0 {
		return 0, 0, api.ErrStorage
	}
	<-ctx.Done()
	return 0, 0, ctx.Err()
}

// The same for the look-up of a topic's partition count: a record whose
// last look-up the delivery deadline cuts short fails with an
// ErrDeliveryTimeout that matches the broker's error of the look-up
// before, as lookUpBy's doc says ("matching the last error too").
func TestDeliveryTimeoutCutShortLookUpKeepsTheBrokersError(t *testing.T) {
	synctest.Test(t, testDeliveryTimeoutCutShortLookUpKeepsTheBrokersError)
}

func testDeliveryTimeoutCutShortLookUpKeepsTheBrokersError(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &cutShortLookUp{hookClient: &hookClient{b: b}}
	err := produceCutShort(t, c)
	require.False(t, producer.MayBeWritten(err), "never sent")
}

// produceCutShort produces a record through c, whose last attempt the
// 100 ms delivery deadline cuts short after one that failed with
// api.ErrStorage, and requires its error to be ErrDeliveryTimeout
// matching api.ErrStorage and no ctx's error; it returns the error. Run
// it in a synctest bubble: on the real clock, a loaded machine could
// reach the deadline before the first attempt's answer.
func produceCutShort(t *testing.T, c producer.Client) error {
	t.Helper()
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.DeliveryTimeout(100*time.Millisecond),
		producer.RetryBackoff(time.Millisecond))
	err := p.ProduceSync(testCtx(t), value("v"))
	t.Logf("%v", err)
	require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
	require.ErrorIs(t, err, api.ErrStorage, "the broker's last answer")
	require.NotErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	return err
}

// cutShortLookUp's first Partitions fails with a retriable error of the
// broker's; the next ones do not answer until their ctx ends.
type cutShortLookUp struct {
	*hookClient
	looks int
}

func (c *cutShortLookUp) Partitions(ctx context.Context, topic string) (int, error) {
	c.mu.Lock()
	call := c.looks
	c.looks++
	c.mu.Unlock()
	if call == 0 {
		return 0, api.ErrStorage
	}
	<-ctx.Done()
	return 0, ctx.Err()
}
