package producer_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// timingOut is a Client whose Partitions answers as the broker until fail
// is set, and from then on api.ErrRequestTimedOut (retriable) at once,
// noting the deadline of each call's ctx (one a look-up: see
// partitionsBy) and signalling calls.
type timingOut struct {
	*runnel.Broker
	fail  atomic.Bool
	calls chan struct{}

	mu        sync.Mutex
	deadlines map[time.Time]bool
}

func (c *timingOut) Partitions(ctx context.Context, topic string) (int, error) {
	if !c.fail.Load() {
		return c.Broker.Partitions(ctx, topic)
	}
	d, _ := ctx.Deadline()
	c.mu.Lock()
	c.deadlines[d] = true
	c.mu.Unlock()
	select {
	case c.calls <- struct{}{}:
	default:
	}
	return 0, api.ErrRequestTimedOut
}

// The look-up of a partition past the count, which now retries a
// retriable error (c3ddf90), ends as its waits do: with ErrDeliveryTimeout
// (matching the last error) once DeliveryTimeout has passed — a
// ProduceSync's later records for such a partition then fail with it at
// once, without a look-up of their own —, with ErrClosed at Close, and
// with ctx's error when ctx ends.
func TestPastTheCountRetriesEnd(t *testing.T) {
	setup := func(t *testing.T, opts ...producer.Opt) (*timingOut, *producer.Producer) {
		b := newBroker(t, runneltest.Topic("t", 1))
		c := &timingOut{Broker: b, calls: make(chan struct{}, 1), deadlines: map[time.Time]bool{}}
		p := newProducer(t, c, append([]producer.Opt{producer.RecordPartitioner(producer.ManualPartitioner()),
			producer.RetryBackoff(time.Millisecond)}, opts...)...)
		require.NoError(t, p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("first")}))
		c.fail.Store(true)
		return c, p
	}

	t.Run("DeliveryTimeout", func(t *testing.T) {
		// In a synctest bubble: on the real clock, a loaded machine could
		// reach the 200 ms deadline before the look-up's first answer.
		synctest.Test(t, func(t *testing.T) {
			c, p := setup(t, producer.DeliveryTimeout(200*time.Millisecond))
			err := p.ProduceSync(testCtx(t),
				&record.Record{Topic: "t", Partition: 1, Value: []byte("a")},
				&record.Record{Topic: "t", Partition: 2, Value: []byte("b")})
			require.Error(t, err)
			errs := err.(interface{ Unwrap() []error }).Unwrap()
			require.Len(t, errs, 2)
			for _, e := range errs {
				require.ErrorIs(t, e, producer.ErrDeliveryTimeout)
				require.ErrorIs(t, e, api.ErrRequestTimedOut)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			require.Len(t, c.deadlines, 1, "one look-up: the second record fails with the first's error")
		})
	})

	t.Run("Close", func(t *testing.T) {
		c, p := setup(t, producer.DeliveryTimeout(time.Minute))
		got := make(chan error, 1)
		go p.Produce(testCtx(t), &record.Record{Topic: "t", Partition: 1, Value: []byte("a")},
			func(_ *record.Record, err error) { got <- err })
		testkit.Await(t, c.calls, "a look-up of the partition count")
		testkit.Await(t, c.calls, "a retried look-up of the partition count") // retrying
		require.NoError(t, p.Close())
		err := testkit.Await(t, got, "the record's promise")
		require.ErrorIs(t, err, producer.ErrClosed)
		require.False(t, errors.Is(err, producer.ErrInvalidPartition), "the partition count was never learnt: %v", err)
	})

	t.Run("ctx", func(t *testing.T) {
		c, p := setup(t, producer.DeliveryTimeout(time.Minute))
		ctx, cancel := context.WithCancel(testCtx(t))
		got := make(chan error, 1)
		go p.Produce(ctx, &record.Record{Topic: "t", Partition: 1, Value: []byte("a")},
			func(_ *record.Record, err error) { got <- err })
		testkit.Await(t, c.calls, "a look-up of the partition count")
		testkit.Await(t, c.calls, "a retried look-up of the partition count") // retrying
		cancel()
		require.ErrorIs(t, testkit.Await(t, got, "the record's promise"), context.Canceled)
	})
}
