package producer_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// releasedAck is an acknowledgement that comes when release is closed.
type releasedAck struct{ release <-chan struct{} }

func (a releasedAck) Wait(ctx context.Context) error {
	select {
	case <-a.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ackHolder appends through the broker and holds every acknowledgement
// until release is closed; the first append waits for gate.
type ackHolder struct {
	*clockedClient
	gate    chan struct{}
	release chan struct{}
	once    sync.Once
}

func (c *ackHolder) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	c.once.Do(func() { <-c.gate })
	resp, ack, err := c.clockedClient.ProduceAsync(ctx, req)
	if err != nil {
		return resp, nil, err
	}
	if ack != nil {
		if err := ack.Wait(ctx); err != nil {
			return resp, nil, err
		}
	}
	return resp, releasedAck{c.release}, nil
}

// Acknowledgements that never come fail each batch at its own delivery
// deadline, in order, whether the partition's goroutine or the acker
// waits for them.
func TestSynctestHeldAcksFailAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &ackHolder{clockedClient: bubbleBroker(t), gate: make(chan struct{}), release: make(chan struct{})}
		const dt = 10 * time.Second
		p, err := producer.New(c, producer.DeliveryTimeout(dt), producer.MaxInFlight(3))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		var outs []<-chan timedOutcome
		outs = append(outs, produceAt(t, p, "a"))
		synctest.Wait() // "a" waits for the gate
		time.Sleep(time.Second)
		outs = append(outs, produceAt(t, p, "b"))
		close(c.gate) // "a" appended with "b" behind it: the acker takes it
		synctest.Wait()
		time.Sleep(time.Second)
		outs = append(outs, produceAt(t, p, "c"))
		for i, ch := range outs {
			o := <-ch
			require.ErrorIs(t, o.err, producer.ErrDeliveryTimeout, "record %d", i)
			require.Equal(t, t0.Add(time.Duration(i)*time.Second+dt), o.at, "record %d", i)
		}
	})
}

// Close, whatever the producer, broker and consumer are doing, leaves no
// goroutine running: the bubble ends only once every goroutine has.
func TestSynctestCloseLeavesNoGoroutine(t *testing.T) {
	t.Run("producer with held acks and a Flush", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := &ackHolder{clockedClient: bubbleBroker(t), gate: make(chan struct{}), release: make(chan struct{})}
			p, err := producer.New(c, producer.MaxInFlight(3))
			require.NoError(t, err)
			a := produceAt(t, p, "a")
			synctest.Wait()
			b := produceAt(t, p, "b")
			close(c.gate)
			flushed := make(chan error)
			go func() { flushed <- p.Flush(context.Background()) }()
			time.Sleep(time.Second)
			require.NoError(t, p.Close())
			require.ErrorIs(t, <-flushed, producer.ErrClosed)
			require.ErrorIs(t, (<-a).err, producer.ErrClosed)
			require.ErrorIs(t, (<-b).err, producer.ErrClosed)
		})
	})
	t.Run("producer waiting for buffer space", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := bubbleBroker(t)
			c.hang = true
			p, err := producer.New(c, producer.MaxBufferedRecords(1))
			require.NoError(t, err)
			a := produceAt(t, p, "a")
			blocked := make(chan error)
			go func() {
				blocked <- p.ProduceSync(context.Background(), &record.Record{Topic: "t", Value: []byte("b")})
			}()
			time.Sleep(time.Second)
			require.NoError(t, p.Close())
			require.ErrorIs(t, <-blocked, producer.ErrClosed)
			require.ErrorIs(t, (<-a).err, producer.ErrClosed)
		})
	})
	t.Run("producer looking up a partition count", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := bubbleBroker(t).Broker
			f := runneltest.NewFaults(t, b)
			f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Err: api.ErrNotLeader, Count: runneltest.Unlimited})
			p, err := producer.New(f)
			require.NoError(t, err)
			done := make(chan error)
			go func() {
				done <- p.ProduceSync(context.Background(), &record.Record{Topic: "t", Value: []byte("b")})
			}()
			time.Sleep(10 * time.Second)
			require.NoError(t, p.Close())
			require.ErrorIs(t, <-done, producer.ErrClosed)
		})
	})
	t.Run("held produce and fetch requests, broker closed first", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("t", 3))
			f := runneltest.NewFaults(t, b)
			f.Add(runneltest.Fault{Op: runneltest.OpProduce, Partitions: []int32{2}, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
			p, err := producer.New(f, producer.RecordPartitioner(producer.ManualPartitioner()), producer.Linger(time.Second))
			require.NoError(t, err)
			var outs []<-chan timedOutcome
			for i := range int32(3) {
				ch := make(chan timedOutcome, 1)
				p.Produce(t.Context(), &record.Record{Topic: "t", Partition: i, Value: []byte("v")}, func(r *record.Record, err error) {
					ch <- timedOutcome{time.Now(), err, r}
				})
				outs = append(outs, ch)
			}
			c, err := consumer.New(f, consumer.FetchMaxWait(time.Hour))
			require.NoError(t, err)
			require.NoError(t, c.AssignTopic(t.Context(), "t", consumer.End()))
			polled := make(chan error)
			go func() {
				var err error
				for err == nil {
					_, err = c.Poll(context.Background())
				}
				polled <- err
			}()
			time.Sleep(5 * time.Second)
			require.NoError(t, b.Close())
			assert.ErrorIs(t, <-polled, api.ErrBrokerClosed)
			require.NoError(t, p.Close())
			require.NoError(t, c.Close())
			for i, ch := range outs {
				o := <-ch
				if i < 2 {
					require.NoError(t, o.err)
				} else {
					require.Error(t, o.err)
				}
			}
		})
	})
	t.Run("runneltest helpers", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
			p := runneltest.NewProducer(t, b, producer.Linger(time.Second))
			c := runneltest.NewConsumer(t, b)
			require.NoError(t, c.AssignTopic(t.Context(), "t", consumer.Start()))
			runneltest.ProduceValues(t, b, "t", "a", "b")
			p.Produce(t.Context(), &record.Record{Topic: "t", Value: []byte("c")}, nil)
			require.Len(t, runneltest.Consume(t, b, "t", 3), 3)
			require.Len(t, runneltest.ConsumeAll(t, b, "t"), 3)
		})
	})
}

// A batch that waits for a place among the requests in flight past its
// delivery deadline is not sent: it fails at the deadline, after the
// batches before it, whose acknowledgements never came.
func TestSynctestDeadlineWhileWaitingForPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &ackHolder{clockedClient: bubbleBroker(t), gate: make(chan struct{}), release: make(chan struct{})}
		const dt = 10 * time.Second
		p, err := producer.New(c, producer.DeliveryTimeout(dt), producer.MaxInFlight(2), producer.BatchMaxBytes(100))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		var outs []<-chan timedOutcome
		for range 3 {
			ch := make(chan timedOutcome, 1)
			p.Produce(t.Context(), &record.Record{Topic: "t", Value: make([]byte, 30)}, func(r *record.Record, err error) {
				ch <- timedOutcome{time.Now(), err, r}
			}) // a batch each: two do not fit in 100 bytes
			outs = append(outs, ch)
			synctest.Wait()
		}
		close(c.gate)
		for i, ch := range outs {
			o := <-ch
			require.ErrorIs(t, o.err, producer.ErrDeliveryTimeout, "record %d", i)
			require.Equal(t, t0.Add(dt), o.at, "record %d", i)
		}
		require.Len(t, c.sent(), 2, "the third batch was sent")
	})
}
