package producer_test

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// fullPIDClient is a clockedClient whose InitProducerID fails as a broker's
// on a full disk does (api.ErrStorage, retriable, beside syscall.ENOSPC)
// until its first fails calls have failed (all of them if fails < 0),
// recording the fake time of each call.
type fullPIDClient struct {
	*clockedClient
	fails int
	mu    sync.Mutex
	inits []time.Time
}

func (c *fullPIDClient) InitProducerID(ctx context.Context) (int64, int16, error) {
	c.mu.Lock()
	n := len(c.inits)
	c.inits = append(c.inits, time.Now())
	c.mu.Unlock()
	if c.fails < 0 || n < c.fails {
		return 0, 0, fmt.Errorf("%w: writing the producer id counter: %w", api.ErrStorage, syscall.ENOSPC)
	}
	return c.clockedClient.InitProducerID(ctx)
}

func (c *fullPIDClient) calls() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.inits...)
}

// requireBackedOff checks that the calls came a backoff apart at least
// (RetryBackoff doubled up to MaxRetryBackoff, less its 20% jitter): no
// busy loop on an InitProducerID that keeps failing at once.
func requireBackedOff(t *testing.T, calls []time.Time, backoff time.Duration) {
	t.Helper()
	for i := 1; i < len(calls); i++ {
		require.GreaterOrEqual(t, calls[i].Sub(calls[i-1]), backoff-backoff/5, "call %d", i)
	}
}

// An idempotent producer's InitProducerID that fails with api.ErrStorage
// (a broker's full disk) is retried after a backoff, and the retries end
// at the record's DeliveryTimeout, at Close, or when the record's ctx
// ends, each with its own error; once the disk has room the record goes,
// under the id.
func TestSynctestInitProducerIDStorageRetries(t *testing.T) {
	const (
		dt      = 5 * time.Second
		backoff = 100 * time.Millisecond
	)
	newP := func(t *testing.T, c producer.Client) *producer.Producer {
		p, err := producer.New(c, producer.DeliveryTimeout(dt), producer.RetryBackoff(backoff))
		require.NoError(t, err)
		t.Cleanup(func() { p.Close() })
		return p
	}
	t.Run("DeliveryTimeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := &fullPIDClient{clockedClient: bubbleBroker(t), fails: -1}
			p := newP(t, c)
			t0 := time.Now()
			o := <-produceAt(t, p, "a")
			require.ErrorIs(t, o.err, producer.ErrDeliveryTimeout)
			require.ErrorIs(t, o.err, api.ErrStorage)
			require.ErrorIs(t, o.err, syscall.ENOSPC)
			require.Equal(t, t0.Add(dt), o.at)
			calls := c.calls()
			require.Greater(t, len(calls), 3)
			requireBackedOff(t, calls, backoff)
			require.Empty(t, c.sent())
			time.Sleep(time.Minute)
			require.Len(t, c.calls(), len(calls), "InitProducerID calls after the record failed")
		})
	})
	t.Run("Close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := &fullPIDClient{clockedClient: bubbleBroker(t), fails: -1}
			p := newP(t, c)
			ch := produceAt(t, p, "a")
			time.Sleep(time.Second)
			closedAt := time.Now()
			require.NoError(t, p.Close())
			o := <-ch
			require.ErrorIs(t, o.err, producer.ErrClosed)
			require.Equal(t, closedAt, o.at)
			calls := c.calls()
			require.NotEmpty(t, calls)
			time.Sleep(time.Minute)
			require.Len(t, c.calls(), len(calls), "InitProducerID calls after Close")
			require.Empty(t, c.sent())
		})
	})
	t.Run("ctx", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := &fullPIDClient{clockedClient: bubbleBroker(t), fails: -1}
			p := newP(t, c)
			ctx, cancel := context.WithCancel(t.Context())
			ch := make(chan error, 1)
			p.Produce(ctx, &record.Record{Topic: "t", Value: []byte("a")}, func(_ *record.Record, err error) { ch <- err })
			time.Sleep(time.Second)
			cancel()
			require.ErrorIs(t, <-ch, context.Canceled) // not written: never sent
			calls := c.calls()
			time.Sleep(time.Minute)
			require.Len(t, c.calls(), len(calls), "InitProducerID calls after the record's ctx ended")
			require.Empty(t, c.sent())
		})
	})
	t.Run("room freed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := &fullPIDClient{clockedClient: bubbleBroker(t), fails: 3}
			p := newP(t, c)
			o := <-produceAt(t, p, "a")
			require.NoError(t, o.err)
			require.GreaterOrEqual(t, o.r.ProducerID, int64(0))
			calls := c.calls()
			require.Len(t, calls, 4)
			requireBackedOff(t, calls, backoff)
		})
	})
}
