package producer_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// holdingPartitions is a Client whose Partitions answers as the broker
// until hold is set; from then on each call announces itself on entered
// and waits for its ctx to end, as a broker that does not answer.
type holdingPartitions struct {
	*runnel.Broker
	hold    atomic.Bool
	entered chan struct{}
}

func (c *holdingPartitions) Partitions(ctx context.Context, topic string) (int, error) {
	if !c.hold.Load() {
		return c.Broker.Partitions(ctx, topic)
	}
	c.entered <- struct{}{}
	<-ctx.Done()
	return 0, ctx.Err()
}

// A record for a partition past the count the producer knows makes
// Produce ask the broker again (see Produce). A Produce waiting for that
// answer is one waiting "for the broker's answer to its topic's partition
// count": Close ends it with ErrClosed, and the end of the record's ctx
// with ctx's error (see Close and Produce), not ErrInvalidPartition,
// which would say that the topic has no such partition when the producer
// never learnt whether it has.
func TestProduceWaitingForARefreshEndsWithCloseOrCtx(t *testing.T) {
	for _, end := range []string{"close", "ctx"} {
		t.Run(end, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			c := &holdingPartitions{Broker: b, entered: make(chan struct{}, 1)}
			p := newProducer(t, c, producer.RecordPartitioner(producer.ManualPartitioner()))
			require.NoError(t, p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("0")}))
			// Its batch frees its space once its promises have returned,
			// maybe after ProduceSync does (see BufferedRecords): a Flush
			// waits for that, so that the count below is the held record's.
			require.NoError(t, p.Flush(testCtx(t)))
			require.Zero(t, p.BufferedRecords())

			c.hold.Store(true)
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			r := &record.Record{Topic: "t", Partition: 3, Value: []byte("3")}
			got := make(chan error, 2)
			returned := make(chan struct{})
			go func() {
				defer close(returned)
				p.Produce(ctx, r, func(_ *record.Record, err error) { got <- err })
			}()
			testkit.AwaitHold(t, c.entered, got, "the Produce") // it waits for the broker's answer
			if end == "close" {
				require.NoError(t, p.Close())
			} else {
				cancel()
			}
			testkit.Await(t, returned, "Produce's return")
			require.Len(t, got, 1, "promise runs once, before Produce returns")
			err := testkit.Await(t, got, "the record's promise")
			if end == "close" {
				require.ErrorIs(t, err, producer.ErrClosed)
			} else {
				require.ErrorIs(t, err, context.Canceled)
			}
			require.False(t, errors.Is(err, producer.ErrInvalidPartition), "%v", err)
			require.Equal(t, int32(3), r.Partition, "the record is left as it was")
			require.Zero(t, p.BufferedRecords())
		})
	}
}

// A broker that does not answer the look-up of a topic's partition count
// holds a Produce with a ctx that never ends no longer than
// DeliveryTimeout: the record fails with ErrDeliveryTimeout, unwritten
// (as Kafka's send fails once max.block.ms passed waiting for metadata),
// whether the topic is new to the producer or a partition past the count
// it knows is asked for. A retriable error answered at once was already
// bounded so; a call that hangs was bounded only by the record's ctx.
func TestHangingPartitionCountBoundedByDeliveryTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		partition int32
	}{{"new topic", 0}, {"past the count", 3}} {
		// In a synctest bubble: on the real clock, a loaded machine could
		// miss the 50 ms DeliveryTimeout with the first record, which
		// must be written.
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBroker(t, runneltest.Topic("t", 1))
				c := &holdingPartitions{Broker: b, entered: make(chan struct{}, 1)}
				p := newProducer(t, c, producer.RecordPartitioner(producer.ManualPartitioner()),
					producer.DeliveryTimeout(50*time.Millisecond))
				if tc.partition > 0 {
					require.NoError(t, p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("0")}))
				}
				c.hold.Store(true)
				got := make(chan error, 1)
				go p.Produce(context.Background(), &record.Record{Topic: "t", Partition: tc.partition, Value: []byte("x")},
					func(_ *record.Record, err error) { got <- err })
				testkit.AwaitHold(t, c.entered, got, "the Produce")
				select {
				case err := <-got:
					require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
					require.NotErrorIs(t, err, context.DeadlineExceeded, "the record's ctx did not end")
				case <-time.After(testkit.HangGuard): // a hang guard, not a timing check
					t.Fatal("Produce still waits for the partition count, past its DeliveryTimeout")
				}
				require.NoError(t, p.Flush(testCtx(t)))
				recs := runneltest.ConsumeAll(t, b, "t")
				for _, r := range recs {
					require.NotEqual(t, "x", string(r.Value), "a record failed before it was partitioned was written")
				}
			})
		})
	}
}

// stuckRefreshClient is an in-memory broker (in a synctest bubble) whose
// first Produce waits until release is closed, and whose partition count
// look-ups after the first wait for their ctx: a broker that stops
// answering them.
type stuckRefreshClient struct {
	*runnel.Broker
	release chan struct{}
	looked  atomic.Int32
	sent    atomic.Int32
}

func (c *stuckRefreshClient) Partitions(ctx context.Context, topic string) (int, error) {
	if c.looked.Add(1) == 1 {
		return c.Broker.Partitions(ctx, topic)
	}
	<-ctx.Done()
	return 0, ctx.Err()
}

func (c *stuckRefreshClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	if c.sent.Add(1) == 1 {
		select {
		case <-c.release:
		case <-ctx.Done():
			return api.ProduceResponse{}, ctx.Err()
		}
	}
	return c.Broker.Produce(ctx, req)
}

// The periodic look-up of the partition count that a partition's
// goroutine makes between two batches ends by the delivery deadline of
// the next batch it sends, the oldest buffered, not that of the open
// batch behind it: a broker that does not answer the look-up holds the
// full batch no longer than its own DeliveryTimeout (the look-up ended by
// the open batch's deadline held it 5 s past its own).
func TestRefreshEndsByTheOldestBatchDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer func() { require.NoError(t, b.Close()) }()
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		c := &stuckRefreshClient{Broker: b, release: make(chan struct{})}
		const timeout = 10 * time.Second
		// One record a batch; one request at a time (Produce, not the
		// broker's ProduceAsync); a look-up after every batch.
		p, err := producer.New(c, producer.DeliveryTimeout(timeout), producer.BatchMaxBytes(200),
			producer.MaxInFlight(1), producer.MetadataMaxAge(time.Nanosecond))
		require.NoError(t, err)
		defer p.Close()
		big := func(v string) string { return v + strings.Repeat(".", 99) }
		t0 := time.Now()
		a := produceAt(t, p, big("a")) // sent, held
		synctest.Wait()
		full := produceAt(t, p, big("b")) // the oldest buffered batch, full once c comes
		time.Sleep(timeout / 2)
		open := produceAt(t, p, big("c")) // the open batch, 5 s younger
		close(c.release)
		require.NoError(t, (<-a).err)
		o := <-full
		require.ErrorIs(t, o.err, producer.ErrDeliveryTimeout)
		require.Equal(t, t0.Add(timeout), o.at, "failed at its delivery deadline")
		// The look-up after it holds the open batch to its own deadline.
		o = <-open
		require.ErrorIs(t, o.err, producer.ErrDeliveryTimeout)
		require.Equal(t, t0.Add(timeout/2+timeout), o.at)
	})
}
