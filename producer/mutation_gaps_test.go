package producer_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// Tests that close gaps a mutation-testing pass over the producer's
// record path (partition.go, send.go, space.go, partitioner.go,
// pipeline.go, producer.go) found: each fails with a mutant of the code
// that the rest of the suite let through.

// timedOutLookUps is a Client whose every partition count look-up fails
// with a retriable error; it is never asked for more.
type timedOutLookUps struct{}

func (timedOutLookUps) Partitions(context.Context, string) (int, error) {
	return 0, fmt.Errorf("%w: no answer", api.ErrRequestTimedOut)
}
func (timedOutLookUps) InitProducerID(context.Context) (int64, int16, error) {
	panic("not reached")
}
func (timedOutLookUps) Produce(context.Context, *api.ProduceRequest) (api.ProduceResponse, error) {
	panic("not reached")
}

// The backoff between two look-ups of a topic's partition count is cut
// at the delivery deadline: with a RetryBackoff far longer than
// DeliveryTimeout, the record fails with ErrDeliveryTimeout at its
// DeliveryTimeout, not after the whole backoff (an hour here).
func TestTopicLookUpBackoffEndsAtDeliveryTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = time.Second
		p, err := producer.New(timedOutLookUps{}, producer.DeliveryTimeout(timeout), producer.RetryBackoff(time.Hour))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		o := <-produceAt(t, p, "a")
		require.ErrorIs(t, o.err, producer.ErrDeliveryTimeout)
		require.ErrorIs(t, o.err, api.ErrRequestTimedOut)
		require.Equal(t, t0.Add(timeout), o.at, "failed at its delivery deadline")
	})
}

// Once a topic found deleted is back, the producer takes its records
// again without asking the broker for each: one look-up finds it back,
// and the records after it are buffered as for any known topic.
func TestTopicBackIsNotLookedUpForEveryRecord(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newGoneClient(b)
	p := newProducer(t, c, producer.DefaultTopic("t"))
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, value("before")))
	c.gone.Store(true)
	require.ErrorIs(t, p.ProduceSync(ctx, value("lost")), api.ErrUnknownTopicOrPartition)
	c.gone.Store(false)
	require.NoError(t, p.ProduceSync(ctx, value("back")), "found back by a look-up")
	looked := c.lookups.Load()
	require.NoError(t, p.ProduceSync(ctx, value("x"), value("y"), value("z")))
	require.Equal(t, looked, c.lookups.Load(), "the topic was looked up again, although known back")
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

// lateLookUp is a Client whose partition count look-up returns only once
// its ctx has ended and answer is closed: a look-up the producer cut
// short that the Client finishes late.
type lateLookUp struct {
	timedOutLookUps
	waiting chan struct{} // closed once the look-up saw its ctx end
	answer  chan struct{}
}

func (c *lateLookUp) Partitions(ctx context.Context, _ string) (int, error) {
	<-ctx.Done()
	close(c.waiting)
	<-c.answer
	return 0, ctx.Err()
}

// A topic's first look-up that both its delivery deadline and Close cut
// short (the deadline passed, and Close came before the Client
// returned) fails the record with ErrClosed alone, as partitionsBy
// says: Close ends it as it ends any look-up, not with
// ErrDeliveryTimeout.
func TestLookUpCutByDeadlineThenCloseIsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &lateLookUp{waiting: make(chan struct{}), answer: make(chan struct{})}
		p, err := producer.New(c, producer.DeliveryTimeout(time.Second))
		require.NoError(t, err)
		res := make(chan error, 1)
		go p.Produce(context.Background(), &record.Record{Topic: "t"}, func(_ *record.Record, err error) { res <- err })
		<-c.waiting // the deadline passed
		require.NoError(t, p.Close())
		close(c.answer)
		err = <-res
		require.ErrorIs(t, err, producer.ErrClosed)
		require.NotErrorIs(t, err, producer.ErrDeliveryTimeout)
	})
}

// The backoff before a batch's retry is cut at its delivery deadline:
// with a RetryBackoff far longer than DeliveryTimeout, a batch whose
// request keeps failing with a retriable error fails with
// ErrDeliveryTimeout at its deadline, not after the whole backoff.
func TestSendBackoffEndsAtDeliveryTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		c.fail = func(int) error { return fmt.Errorf("%w: busy", api.ErrNotEnoughReplicas) }
		const timeout = time.Second
		p, err := producer.New(c, producer.DeliveryTimeout(timeout), producer.RetryBackoff(time.Hour), producer.MaxInFlight(1))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		o := <-produceAt(t, p, "a")
		require.ErrorIs(t, o.err, producer.ErrDeliveryTimeout)
		require.ErrorIs(t, o.err, api.ErrNotEnoughReplicas)
		require.Equal(t, t0.Add(timeout), o.at, "failed at its delivery deadline")
		require.Equal(t, []time.Time{t0}, c.sent(), "one attempt: the backoff reaches the deadline")
	})
}

// The halves of a batch refused as too large were sent (as the batch):
// their records are fixed, whatever their ctx, also when a half waits for
// a place among the requests in flight and a record's ctx ends meanwhile
// (the pipeline's look at the ctxs after that wait is for batches never
// sent). As Produce says: once r's batch was sent, even once, ctx no
// longer matters.
func TestSplitHalfWaitingForAPlaceKeepsItsRecords(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newAckClient(b)
	c.fault = func(attempt int) (bool, error) {
		if attempt == 1 { // the batch {x, y}
			return false, fmt.Errorf("%w: refused", producer.ErrRecordTooLarge)
		}
		return false, nil
	}
	size := func(n int) int { return record.SizeWithDeltas(record.BodySize(nil, make([]byte, n), nil), 0, 0) }
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.MaxInFlight(2), producer.Linger(time.Minute),
		producer.BatchMaxBytes(record.HeaderSize+size(100)))
	ctx := testCtx(t)
	o := newOrder()
	first := &record.Record{Value: make([]byte, 100)} // fills its batch alone
	p.Produce(ctx, first, o.promise())
	x, y := &record.Record{Value: []byte("x")}, &record.Record{Value: []byte("y")}
	p.Produce(ctx, x, o.promise()) // queues first's batch, which goes at once
	yctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.Produce(yctx, y, o.promise())
	held := c.next(t, ctx) // first's, handed to the acker: {x, y} is buffered
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(ctx) }()
	// {x, y} is refused, and split: {x} goes, {y} waits for a place.
	xAck := c.next(t, ctx)
	cancel()
	held.answer <- nil
	xAck.answer <- nil
	stop := c.answerAll(nil) // {y}'s, if it is sent
	require.NoError(t, <-flushed)
	stop()
	o.wg.Wait()
	require.NoError(t, o.errs["y"], "a record of a batch sent once is fixed")
	require.Equal(t, []string{string(first.Value), "x", "y"}, values(readRecords(t, b, "t", 0)))
}

// A batch refused for an unknown partition fails at once when the topic,
// looked up again, has exactly as many partitions as the refused
// partition's id: it was deleted and created again with fewer, and
// partition n of a topic of n partitions does not exist. Not retried
// until the delivery timeout, as a transient answer would be.
func TestPartitionIDEqualToTheNewCountIsGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer func() { require.NoError(t, b.Close()) }()
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
		p, err := producer.New(b, producer.DefaultTopic("t"), producer.DeliveryTimeout(time.Minute),
			producer.RecordPartitioner(producer.ManualPartitioner()))
		require.NoError(t, err)
		defer p.Close()
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Partition: 1, Value: []byte("a")}))
		require.NoError(t, b.DeleteTopic(ctx, "t"))
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
		t0 := time.Now()
		err = p.ProduceSync(ctx, &record.Record{Partition: 1, Value: []byte("b")})
		require.ErrorIs(t, err, api.ErrUnknownTopicOrPartition)
		require.NotErrorIs(t, err, producer.ErrDeliveryTimeout)
		require.Equal(t, t0, time.Now(), "failed at once, not retried")
	})
}

// resealClient is an in-memory broker (in a synctest bubble) that holds
// the acknowledgements of partition 0's first two requests until release
// is closed, refuses partition 1's first request for an unknown producer
// id, and fails the InitProducerID calls after the first, up to failInits
// of them, with a retriable error; inits has the fake time of each call.
type resealClient struct {
	*runnel.Broker
	release   chan struct{}
	failInits int

	mu      sync.Mutex
	held    int
	refused bool
	inits   []time.Time
}

func (c *resealClient) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	c.mu.Lock()
	refuse := req.Partition == 1 && !c.refused
	c.refused = c.refused || refuse
	hold := req.Partition == 0 && c.held < 2
	if hold {
		c.held++
	}
	c.mu.Unlock()
	if refuse {
		return api.ProduceResponse{}, nil, fmt.Errorf("%w: forgotten", api.ErrUnknownProducerID)
	}
	resp, ack, err := c.Broker.ProduceAsync(ctx, req)
	if err != nil || !hold {
		return resp, ack, err
	}
	if ack != nil {
		if err := ack.Wait(ctx); err != nil {
			return resp, nil, err
		}
	}
	return resp, releasedAck{c.release}, nil
}

func (c *resealClient) InitProducerID(ctx context.Context) (int64, int16, error) {
	c.mu.Lock()
	c.inits = append(c.inits, time.Now())
	n := len(c.inits)
	c.mu.Unlock()
	if n > 1 && n <= 1+c.failInits {
		return 0, 0, fmt.Errorf("%w: not now", api.ErrRequestTimedOut)
	}
	return c.Broker.InitProducerID(ctx)
}

// A batch that gave its place among the requests in flight back to seal
// again (a record's ctx ended while it waited for the place) and whose
// producer id look-up then fails (another partition's batch dropped the
// id meanwhile) retries the look-up after a backoff, as any failed seal:
// not at once, again and again, asking the broker for a producer id in a
// busy loop while the look-up fails.
func TestFailedSealAfterResealBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer func() { require.NoError(t, b.Close()) }()
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
		c := &resealClient{Broker: b, release: make(chan struct{}), failInits: 10}
		two := record.HeaderSize + 2*record.SizeWithDeltas(record.BodySize(nil, make([]byte, 5), nil), 0, 0)
		p, err := producer.New(c, producer.DefaultTopic("t"), producer.MaxInFlight(2), producer.Linger(time.Minute),
			producer.BatchMaxBytes(two), producer.RecordPartitioner(producer.ManualPartitioner()))
		require.NoError(t, err)
		defer p.Close()
		o := newOrder()
		// Partition 0: two batches of two records in flight, their acks
		// held, and a third lingering: {keep, drop}.
		for _, v := range []string{"v0001", "v0002", "v0003", "v0004", "keep0"} {
			p.Produce(ctx, &record.Record{Value: []byte(v)}, o.promise())
		}
		dctx, cancel := context.WithCancel(ctx)
		p.Produce(dctx, &record.Record{Value: []byte("drop0")}, o.promise())
		flushed := make(chan error, 1)
		go func() { flushed <- p.Flush(ctx) }()
		synctest.Wait() // {keep, drop} waits for a place
		// Partition 1's batch is refused for its producer id, which the
		// producer drops.
		p.Produce(ctx, &record.Record{Partition: 1, Value: []byte("other")}, o.promise())
		synctest.Wait()
		cancel()
		close(c.release)
		require.NoError(t, <-flushed)
		o.wg.Wait()
		require.NoError(t, o.errs["keep0"])
		require.ErrorIs(t, o.errs["drop0"], context.Canceled)
		require.NoError(t, o.errs["other"])
		c.mu.Lock()
		defer c.mu.Unlock()
		require.Len(t, c.inits, 1+c.failInits+1)
		at := map[time.Time]int{}
		for _, t := range c.inits {
			at[t]++
		}
		for when, n := range at {
			require.LessOrEqual(t, n, 2, "%d producer id look-ups at %v: one partition asked again without a backoff", n, when)
		}
	})
}

// A batch whose first attempt may have been appended (its answer lost)
// and whose retry is refused for its epoch (ErrProducerFenced, the
// producer keeping its id) keeps its sequence numbers: the next batch
// does not take them again, which the broker, holding the first attempt,
// would answer as its duplicate — a record reported delivered that is
// not in the log. (TestRefusedAfterMaybeAppended's second record is
// buffered before the refusal, and fails with it.)
func TestFencedAfterMaybeAppendedKeepsItsSequenceNumbers(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1})
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: producer.ErrProducerFenced, Count: 1})
	p := newProducer(t, f, producer.DefaultTopic("t"), producer.MaxInFlight(1), producer.RetryBackoff(time.Millisecond))
	ctx := testCtx(t)
	err := p.ProduceSync(ctx, value("first"))
	require.ErrorIs(t, err, producer.ErrProducerFenced)
	require.ErrorIs(t, err, producer.ErrMaybeWritten)
	second := value("second")
	require.NoError(t, p.ProduceSync(ctx, second))
	require.Equal(t, []string{"first", "second"}, values(runneltest.ConsumeAll(t, b, "t")))
	require.EqualValues(t, 1, second.Offset)
}

// A ManualPartitioner's record for partition 0 that fails before it is
// partitioned reports partition 0 in its RecordError: 0 is an explicit
// partition as much as 2 is (TestRecordErrorPartitionUnknownBeforePartitioning
// takes 2, 7 and -3).
func TestRecordErrorExplicitPartitionZero(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.RecordPartitioner(producer.ManualPartitioner()))
	ended, cancel := context.WithCancel(testCtx(t))
	cancel()
	err := p.ProduceSync(ended, &record.Record{Topic: "t", Value: []byte("v")})
	require.ErrorIs(t, err, context.Canceled)
	re := producer.RecordErrors(err)
	require.Len(t, re, 1)
	require.Zero(t, re[0].Partition, "the record's explicit partition")
}

// As TestSplitHalfWaitingForAPlaceKeepsItsRecords, one request at a time:
// the second half's record whose ctx ends while the first half is sent
// is sent all the same (its batch was sent, as the batch refused).
func TestSplitHalfKeepsItsRecords(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	ctx := testCtx(t)
	yctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.setHook(func(_ context.Context, call int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		switch call {
		case 0:
			return api.ProduceResponse{}, fmt.Errorf("%w: refused", producer.ErrRecordTooLarge)
		case 1: // {x}
			cancel()
		}
		return next()
	})
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.MaxInFlight(1), producer.Linger(time.Minute))
	o := newOutcome()
	x, y := value("x"), value("y")
	p.Produce(ctx, x, o.promise())
	p.Produce(yctx, y, o.promise())
	require.NoError(t, p.Flush(ctx))
	o.wait()
	require.NoError(t, o.err(x))
	require.NoError(t, o.err(y), "a record of a batch sent once is fixed")
	require.Equal(t, []string{"x", "y"}, values(readRecords(t, b, "t", 0)))
	require.Len(t, c.requests(), 3)
}

// A negative partition is no partition the topic could have gained: the
// record fails with ErrInvalidPartition without the look-up of the
// partition count that a partition past the count makes (which could hold
// it up to DeliveryTimeout for nothing).
func TestNegativePartitionIsNotLookedUp(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newGoneClient(b)
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.RecordPartitioner(producer.ManualPartitioner()))
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, value("known")))
	looked := c.lookups.Load()
	err := p.ProduceSync(ctx, &record.Record{Partition: -1, Value: []byte("v")})
	require.ErrorIs(t, err, producer.ErrInvalidPartition)
	require.Equal(t, looked, c.lookups.Load(), "looked up for a negative partition")
}
