package producer_test

import (
	"context"
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

// failingPartitions is a Client whose Partitions answers with err the
// next fail calls, then as the broker.
type failingPartitions struct {
	*runnel.Broker
	err   error
	fail  atomic.Int32
	calls atomic.Int32
}

func (c *failingPartitions) Partitions(ctx context.Context, topic string) (int, error) {
	c.calls.Add(1)
	if c.fail.Add(-1) >= 0 {
		return 0, c.err
	}
	return c.Broker.Partitions(ctx, topic)
}

// The look-up of a partition past the count the producer knows retries
// an error Kafka's table calls retriable, as the look-up of a new
// topic's count does and as Kafka's producer waits for its metadata
// (max.block.ms): a record for a partition added since the producer last
// looked goes there, where a broker's passing timeout failed it with
// ErrInvalidPartition (the topic has that partition). A refusal that is
// not retriable still fails it at once, and TryProduce does not wait.
func TestPastTheCountLookUpRetriesRetriableErrors(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &failingPartitions{Broker: b, err: api.ErrRequestTimedOut}
	p := newProducer(t, c, producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("0")}))
	require.NoError(t, b.CreatePartitions(testCtx(t), "t", 2))

	c.fail.Store(2)
	require.NoError(t, p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Partition: 1, Value: []byte("1")}))
	require.Equal(t, int32(4), c.calls.Load(), "the first look-up, two failures, the answer")
	recs := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, recs, 2)
	require.Equal(t, int32(1), recs[1].Partition)

	t.Run("not retriable", func(t *testing.T) {
		c.err = api.ErrInvalidRequest
		c.fail.Store(1)
		err := p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Partition: 2, Value: []byte("2")})
		require.ErrorIs(t, err, producer.ErrInvalidPartition)
	})
	t.Run("TryProduce", func(t *testing.T) {
		c.err = api.ErrRequestTimedOut
		c.fail.Store(1)
		got := make(chan error, 1)
		p.TryProduce(testCtx(t), &record.Record{Topic: "t", Partition: 2, Value: []byte("2")},
			func(_ *record.Record, err error) { got <- err })
		require.ErrorIs(t, testkit.Await(t, got, "the record's promise"), producer.ErrInvalidPartition)
		c.fail.Store(0)
	})
}

// scriptedCountClient answers Partitions with its script's answer to
// the n-th call (1-based), and Produce with refuse's error for the n-th
// request if refuse is set and returns one, else taking the batch (its
// records at offset 0); it has one producer id.
type scriptedCountClient struct {
	mu       sync.Mutex
	calls    int
	requests int
	script   func(ctx context.Context, call int) (int, error)
	refuse   func(request int) error
}

func (c *scriptedCountClient) Partitions(ctx context.Context, _ string) (int, error) {
	c.mu.Lock()
	c.calls++
	call := c.calls
	c.mu.Unlock()
	return c.script(ctx, call)
}

func (*scriptedCountClient) InitProducerID(context.Context) (int64, int16, error) { return 1, 0, nil }

func (c *scriptedCountClient) Produce(context.Context, *api.ProduceRequest) (api.ProduceResponse, error) {
	c.mu.Lock()
	c.requests++
	request := c.requests
	c.mu.Unlock()
	if c.refuse != nil {
		if err := c.refuse(request); err != nil {
			return api.ProduceResponse{}, err
		}
	}
	return api.ProduceResponse{BaseOffset: 0, LogAppendTime: -1}, nil
}

// TestSynctestPastTheCountLooksAgainByOneDeadline: a record past the
// partition count the producer knows waits for the count's look-ups no
// longer than DeliveryTimeout from its Produce, also when its first
// look-up's answer could not be placed (another look-up, begun after it,
// brought another count first) and it looks again: the look-ups of one
// record's count share one deadline (lookUpBy). On the fake clock the
// first look-up takes 6 s, the second hangs: the record fails with
// ErrDeliveryTimeout 10 s after its ProduceSync began, not 10 s after the
// second look-up began; the other look-up's record is delivered.
func TestSynctestPastTheCountLooksAgainByOneDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		aIn := make(chan struct{})
		c := &scriptedCountClient{script: func(ctx context.Context, call int) (int, error) {
			switch call {
			case 1: // the topic's first look-up
				return 1, nil
			case 2: // the record's first look-up, under way with call 3
				close(aIn)
				time.Sleep(6 * time.Second)
				return 2, nil
			case 3: // begun after call 2, answered first
				return 3, nil
			default: // the record's second look-up
				<-ctx.Done()
				return 0, ctx.Err()
			}
		}}
		looksAgainByOneDeadline(t, c, aIn, 2, func(p *producer.Producer) {
			require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Partition: 0, Value: []byte("0")}))
		})
	})
}

// TestSynctestGoneTopicLooksAgainByOneDeadline: as
// TestSynctestPastTheCountLooksAgainByOneDeadline, for a record of
// a topic the broker said was gone (lookAgain): its look-ups, the second
// made because the first one's answer could not be placed, end
// DeliveryTimeout after its ProduceSync began.
func TestSynctestGoneTopicLooksAgainByOneDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		aIn := make(chan struct{})
		c := &scriptedCountClient{script: func(ctx context.Context, call int) (int, error) {
			switch call {
			case 1: // the topic's first look-up
				return 1, nil
			case 2: // after the first batch was refused: the topic is gone
				return 0, api.ErrUnknownTopicOrPartition
			case 3: // the record's first look-up, under way with call 4
				close(aIn)
				time.Sleep(6 * time.Second)
				return 2, nil
			case 4: // begun after call 3, answered first: the topic is back
				return 3, nil
			default: // the record's second look-up
				<-ctx.Done()
				return 0, ctx.Err()
			}
		}, refuse: func(request int) error {
			if request == 1 {
				return api.ErrUnknownTopicOrPartition
			}
			return nil
		}}
		looksAgainByOneDeadline(t, c, aIn, 0, func(p *producer.Producer) {
			require.ErrorIs(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Partition: 0, Value: []byte("0")}),
				api.ErrUnknownTopicOrPartition)
		})
	})
}

// looksAgainByOneDeadline runs, in a synctest bubble, a producer
// of c with a 10 s DeliveryTimeout and manual partitioning: first, then
// record a to partition, whose look-up c holds (aIn closed as it begins)
// while record b's, begun after it, answers first; then checks that a
// fails with ErrDeliveryTimeout 10 s after its ProduceSync began, and b
// is delivered.
func looksAgainByOneDeadline(t *testing.T, c producer.Client, aIn <-chan struct{}, partition int32, first func(*producer.Producer)) {
	t.Helper()
	p, err := producer.New(c, producer.DeliveryTimeout(10*time.Second),
		producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, err)
	defer p.Close()
	first(p)
	t0 := time.Now()
	a := make(chan error, 1)
	go func() {
		a <- p.ProduceSync(t.Context(), &record.Record{Topic: "t", Partition: partition, Value: []byte("a")})
	}()
	<-aIn
	require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Partition: partition, Value: []byte("b")}))
	require.ErrorIs(t, <-a, producer.ErrDeliveryTimeout)
	require.Equal(t, 10*time.Second, time.Since(t0), "the record's look-ups ended DeliveryTimeout after its ProduceSync")
}
