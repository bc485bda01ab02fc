package producer_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// clockedClient is an in-memory broker that records the fake time of
// each request, and fails or holds produce requests as told.
type clockedClient struct {
	*runnel.Broker
	mu         sync.Mutex
	sends      []time.Time
	partitions []time.Time
	fail       func(n int) error // the error of produce request n (0-based), nil to append
	hang       bool              // produce requests wait for their ctx
}

func (c *clockedClient) before(ctx context.Context) error {
	c.mu.Lock()
	n := len(c.sends)
	c.sends = append(c.sends, time.Now())
	fail, hang := c.fail, c.hang
	c.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if fail != nil {
		return fail(n)
	}
	return nil
}

func (c *clockedClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	if err := c.before(ctx); err != nil {
		return api.ProduceResponse{}, err
	}
	return c.Broker.Produce(ctx, req)
}

func (c *clockedClient) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	if err := c.before(ctx); err != nil {
		return api.ProduceResponse{}, nil, err
	}
	return c.Broker.ProduceAsync(ctx, req)
}

func (c *clockedClient) Partitions(ctx context.Context, topic string) (int, error) {
	c.mu.Lock()
	c.partitions = append(c.partitions, time.Now())
	c.mu.Unlock()
	return c.Broker.Partitions(ctx, topic)
}

func (c *clockedClient) sent() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.sends...)
}

// bubbleBroker opens an in-memory broker inside the bubble with topic "t"
// of one partition, closed when the test ends.
func bubbleBroker(t *testing.T) *clockedClient {
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
	return &clockedClient{Broker: b}
}

type timedOutcome struct {
	at  time.Time
	err error
	r   *record.Record
}

// produceSpaced produces n records of value to topic "t", one every step
// of the bubble's clock from now, and returns their outcomes in order.
func produceSpaced(t *testing.T, p *producer.Producer, value []byte, n int, step time.Duration) []<-chan timedOutcome {
	t0 := time.Now()
	var outs []<-chan timedOutcome
	for i := range n {
		time.Sleep(time.Until(t0.Add(time.Duration(i) * step)))
		ch := make(chan timedOutcome, 1)
		p.Produce(t.Context(), &record.Record{Topic: "t", Value: value}, func(r *record.Record, err error) {
			ch <- timedOutcome{time.Now(), err, r}
		})
		outs = append(outs, ch)
	}
	return outs
}

func produceAt(t *testing.T, p *producer.Producer, v string) <-chan timedOutcome {
	ch := make(chan timedOutcome, 1)
	p.Produce(t.Context(), &record.Record{Topic: "t", Value: []byte(v)}, func(r *record.Record, err error) {
		ch <- timedOutcome{time.Now(), err, r}
	})
	return ch
}

func TestSynctestLingerExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		const linger = 50 * time.Millisecond
		p, err := producer.New(c, producer.Linger(linger))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		a := produceAt(t, p, "a")
		time.Sleep(10 * time.Millisecond)
		bb := produceAt(t, p, "b")
		time.Sleep(linger - 10*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		require.Empty(t, c.sent(), "sent before the linger passed")
		ra, rb := <-a, <-bb
		require.NoError(t, ra.err)
		require.NoError(t, rb.err)
		require.Equal(t, []time.Time{t0.Add(linger)}, c.sent())
		require.Equal(t, t0.Add(linger), ra.at)
		require.Equal(t, int64(1), rb.r.Offset)
		// The next batch lingers from its own first record.
		t1 := time.Now().Add(5 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
		require.NoError(t, (<-produceAt(t, p, "c")).err)
		require.Equal(t, []time.Time{t0.Add(linger), t1.Add(linger)}, c.sent())
	})
}

func TestSynctestFlushSendsLingeringBatchNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		p, err := producer.New(c, producer.Linger(time.Minute))
		require.NoError(t, err)
		defer p.Close()
		a := produceAt(t, p, "a")
		time.Sleep(time.Millisecond)
		t1 := time.Now()
		require.NoError(t, p.Flush(t.Context()))
		require.Equal(t, t1, time.Now(), "Flush waited")
		require.Equal(t, []time.Time{t1}, c.sent())
		require.NoError(t, (<-a).err)
	})
}

func TestSynctestDeliveryTimeoutRetriable(t *testing.T) {
	for _, inflight := range []int{1, 5} {
		synctest.Test(t, func(t *testing.T) {
			c := bubbleBroker(t)
			c.fail = func(int) error { return api.ErrNotLeader }
			const dt = 2 * time.Second
			p, err := producer.New(c, producer.DeliveryTimeout(dt), producer.MaxInFlight(inflight))
			require.NoError(t, err)
			defer p.Close()
			t0 := time.Now()
			o := <-produceAt(t, p, "a")
			require.ErrorIs(t, o.err, producer.ErrDeliveryTimeout)
			require.Equal(t, t0.Add(dt), o.at)
			sends := c.sent()
			require.Equal(t, t0, sends[0])
			for _, s := range sends {
				require.True(t, s.Before(t0.Add(dt)), "sent at %v, past the deadline", s.Sub(t0))
			}
			require.Greater(t, len(sends), 3, "retried")
		})
	}
}

func TestSynctestDeliveryTimeoutHangingRequest(t *testing.T) {
	for _, inflight := range []int{1, 5} {
		synctest.Test(t, func(t *testing.T) {
			c := bubbleBroker(t)
			c.hang = true
			const dt = 3 * time.Second
			p, err := producer.New(c, producer.DeliveryTimeout(dt), producer.MaxInFlight(inflight), producer.Linger(time.Second))
			require.NoError(t, err)
			defer p.Close()
			t0 := time.Now()
			o := <-produceAt(t, p, "a")
			require.ErrorIs(t, o.err, producer.ErrDeliveryTimeout)
			require.Equal(t, t0.Add(dt), o.at)
			require.Equal(t, []time.Time{t0.Add(time.Second)}, c.sent())
		})
	}
}

func TestSynctestRetryBackoffSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		const fails = 7
		c.fail = func(n int) error {
			if n < fails {
				return api.ErrNotLeader
			}
			return nil
		}
		const rb = 100 * time.Millisecond
		p, err := producer.New(c, producer.RetryBackoff(rb), producer.MaxInFlight(1))
		require.NoError(t, err)
		defer p.Close()
		o := <-produceAt(t, p, "a")
		require.NoError(t, o.err)
		sends := c.sent()
		require.Len(t, sends, fails+1)
		for i := 1; i < len(sends); i++ {
			want := min(rb<<(i-1), producer.DefaultMaxRetryBackoff)
			gap := sends[i].Sub(sends[i-1])
			require.GreaterOrEqual(t, gap, want-want/5, "retry %d", i)
			require.LessOrEqual(t, gap, want+want/5, "retry %d", i)
		}
		require.Equal(t, sends[fails], o.at)
	})
}

func TestSynctestMetadataRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		const age = 10 * time.Second
		p, err := producer.New(c, producer.MetadataMaxAge(age))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		for i := range 25 {
			require.NoError(t, (<-produceAt(t, p, "x")).err, "record %d", i)
			time.Sleep(time.Second)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		require.Equal(t, t0, c.partitions[0])
		require.Equal(t, []time.Time{t0, t0.Add(age), t0.Add(2 * age)}, c.partitions)
	})
}

// The partition's goroutine ends on its own a second after its last
// batch: the bubble ends only once it has (no Close).
func TestSynctestIdleGoroutineEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		p, err := producer.New(c)
		require.NoError(t, err)
		require.NoError(t, (<-produceAt(t, p, "a")).err)
		time.Sleep(time.Second)
		synctest.Wait()
	})
}

type hangingPIDClient struct{ *clockedClient }

func (c hangingPIDClient) InitProducerID(ctx context.Context) (int64, int16, error) {
	<-ctx.Done()
	return 0, 0, ctx.Err()
}

func TestSynctestDeliveryTimeoutWaitingForProducerID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := hangingPIDClient{bubbleBroker(t)}
		const dt = 5 * time.Second
		p, err := producer.New(c, producer.DeliveryTimeout(dt))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		o := <-produceAt(t, p, "a")
		require.ErrorIs(t, o.err, producer.ErrDeliveryTimeout)
		require.Equal(t, t0.Add(dt), o.at)
		require.Empty(t, c.sent())
	})
}

func TestSynctestLingerRecordCtxEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		p, err := producer.New(c, producer.Linger(time.Second))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		a := produceAt(t, p, "a")
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		bch := make(chan timedOutcome, 1)
		p.Produce(ctx, &record.Record{Topic: "t", Value: []byte("b")}, func(r *record.Record, err error) {
			bch <- timedOutcome{time.Now(), err, r}
		})
		ra, rb := <-a, <-bch
		require.NoError(t, ra.err)
		require.ErrorIs(t, rb.err, context.DeadlineExceeded)
		require.Equal(t, t0.Add(100*time.Millisecond), ra.at)
		require.Equal(t, t0.Add(100*time.Millisecond), rb.at)
		require.Equal(t, []time.Time{t0.Add(100 * time.Millisecond)}, c.sent())
	})
}

func TestSynctestLingerStopsWhileProduceWaitsForSpace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		const linger = time.Second
		p, err := producer.New(c, producer.Linger(linger), producer.MaxBufferedRecords(2))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		a, bb := produceAt(t, p, "a"), produceAt(t, p, "b")
		time.Sleep(10 * time.Millisecond)
		cc := produceAt(t, p, "c") // waits for space: the batch goes now
		t1 := t0.Add(10 * time.Millisecond)
		require.Equal(t, t1, time.Now(), "Produce returned once the batch went")
		for _, ch := range []<-chan timedOutcome{a, bb} {
			o := <-ch
			require.NoError(t, o.err)
			require.Equal(t, t1, o.at)
		}
		o := <-cc
		require.NoError(t, o.err)
		require.Equal(t, t1.Add(linger), o.at, "the record that waited lingers as any")
	})
}

func TestSynctestCloseCutsHangingRequest(t *testing.T) {
	for _, inflight := range []int{1, 5} {
		synctest.Test(t, func(t *testing.T) {
			c := bubbleBroker(t)
			c.hang = true
			p, err := producer.New(c, producer.MaxInFlight(inflight))
			require.NoError(t, err)
			t0 := time.Now()
			a := produceAt(t, p, "a")
			time.Sleep(time.Second)
			require.NoError(t, p.Close())
			require.Equal(t, t0.Add(time.Second), time.Now())
			o := <-a
			require.ErrorIs(t, o.err, producer.ErrClosed)
			require.Equal(t, t0.Add(time.Second), o.at)
		})
	}
}

func TestSynctestFlushCtxDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		c.hang = true
		p, err := producer.New(c)
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		a := produceAt(t, p, "a")
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		require.ErrorIs(t, p.Flush(ctx), context.DeadlineExceeded)
		require.Equal(t, t0.Add(3*time.Second), time.Now())
		o := <-a
		require.ErrorIs(t, o.err, producer.ErrDeliveryTimeout)
		require.Equal(t, t0.Add(producer.DefaultDeliveryTimeout), o.at)
	})
}
