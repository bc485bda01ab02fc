package producer_test

import (
	"context"
	"fmt"
	"sync"
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

// Broker.Produce may answer api.ErrBrokerClosed after the append (the
// broker closed and its closing fsync failed, as ProduceAsync's Wait
// documents): the batch's sequence numbers must not go to other records,
// or a broker that kept the batch takes the next one of the same size for
// a duplicate and drops it, answering with the first one's offsets.
func TestBrokerClosedAfterTheAppendDoesNotReuseSequences(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	c.setHook(func(_ context.Context, call int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		resp, err := next()
		if call == 0 && err == nil {
			return api.ProduceResponse{}, api.ErrBrokerClosed // appended, then closed
		}
		return resp, err
	})
	p := newProducer(t, c, producer.DefaultTopic("t"))
	ctx := testCtx(t)
	first := &record.Record{Value: []byte("first")}
	require.ErrorIs(t, p.ProduceSync(ctx, first), api.ErrBrokerClosed)
	second := &record.Record{Value: []byte("second")}
	require.NoError(t, p.ProduceSync(ctx, second))
	got := values(readRecords(t, b, "t", 0))
	require.Contains(t, got, "second", "a record whose promise got nil is not in the log")
	require.Equal(t, []string{"first", "second"}, got)
	require.EqualValues(t, 1, second.Offset)
	require.Equal(t, 2, c.initCount(), "a new producer id: the first batch may be in the log")
}

// forgetfulClient is a broker that forgets producer ids: a batch of a
// forgotten one is refused with api.ErrUnknownProducerID (Kafka's
// UNKNOWN_PRODUCER_ID, as when retention removed the producer's state).
type forgetfulClient struct {
	*runnel.Broker
	mu        sync.Mutex
	forgotten map[int64]bool
	refused   int
}

func (c *forgetfulClient) forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgotten[id] = true
}

func (c *forgetfulClient) check(req *api.ProduceRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id := record.Batch(req.Batches).ProducerID(); c.forgotten[id] {
		c.refused++
		return fmt.Errorf("%w: %d", api.ErrUnknownProducerID, id)
	}
	return nil
}

func (c *forgetfulClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	if err := c.check(req); err != nil {
		return api.ProduceResponse{}, err
	}
	return c.Broker.Produce(ctx, req)
}

func (c *forgetfulClient) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	if err := c.check(req); err != nil {
		return api.ProduceResponse{}, nil, err
	}
	return c.Broker.ProduceAsync(ctx, req)
}

// A broker that no longer knows the producer's id refuses its batches
// with api.ErrUnknownProducerID: the producer takes a new id and sends
// the batch again under it (as Kafka's idempotent producer bumps its
// epoch), rather than failing every later batch of the partition with
// the same refusal.
func TestUnknownProducerIDTakesANewID(t *testing.T) {
	for _, inFlight := range []int{1, 5} {
		t.Run(fmt.Sprint("MaxInFlight=", inFlight), func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			c := &forgetfulClient{Broker: b, forgotten: map[int64]bool{}}
			p := newProducer(t, c, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight), producer.RetryBackoff(time.Millisecond))
			ctx := testCtx(t)
			r1 := value("1")
			require.NoError(t, p.ProduceSync(ctx, r1))
			c.forget(r1.ProducerID)
			r2, r3 := value("2"), value("3")
			require.NoError(t, p.ProduceSync(ctx, r2))
			require.NoError(t, p.ProduceSync(ctx, r3))
			require.NotEqual(t, r1.ProducerID, r2.ProducerID)
			require.Equal(t, r2.ProducerID, r3.ProducerID)
			require.EqualValues(t, 0, r2.Sequence)
			require.EqualValues(t, 1, r3.Sequence)
			require.Equal(t, []string{"1", "2", "3"}, values(readRecords(t, b, "t", 0)))
			require.Equal(t, 1, c.refused)
		})
	}
}

// With requests in flight, a batch refused for its sequence numbers
// (ErrOutOfOrderSequence) goes again under a new producer id once the
// batches before it are done, and the records buffered behind it follow
// it: every record is delivered once, in order, its promise run in
// produce order; the batch in flight before it keeps the old id.
func TestPipelineOutOfOrderWhileInFlight(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newAckClient(b)
	refused := make(chan struct{})
	c.fault = func(attempt int) (bool, error) {
		if attempt == 1 {
			close(refused)
			return false, api.ErrOutOfOrderSequence
		}
		return false, nil
	}
	p := newProducer(t, c, append(oneRecordBatches(), producer.DefaultTopic("t"))...)
	ctx := testCtx(t)
	rs := fiveByteRecords(4)
	o := newOrder()
	for _, r := range rs {
		p.Produce(ctx, r, o.promise())
	}
	first := c.next(t, ctx) // in flight, held
	testkit.Await(t, refused, "the broker's refusal of attempt 1")
	first.answer <- nil
	stop := c.answerAll(nil)
	defer stop()
	require.NoError(t, p.Flush(ctx)) // the last lingers otherwise
	o.wg.Wait()
	requireInOrder(t, b, o, rs)
	for _, r := range rs[1:] {
		require.NotEqual(t, rs[0].ProducerID, r.ProducerID, "a new producer id")
	}
	require.EqualValues(t, 0, rs[1].Sequence)
	require.Equal(t, 2, c.initCount())
}

// A batch refused for its sequence numbers after an earlier attempt of it
// may have been appended (answered with a retriable error after the
// append) fails, alone, rather than go again under a new producer id and
// maybe be there twice; the records behind it are delivered under the new
// id. Nothing is there twice, and every record whose promise succeeded is
// at its offset.
func TestOutOfOrderAfterUnsureAttemptFailsOnlyThatBatch(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newAckClient(b)
	c.fault = func(attempt int) (bool, error) {
		switch attempt {
		case 1:
			return true, api.ErrRequestTimedOut // appended, answered as if not
		case 2:
			return false, api.ErrOutOfOrderSequence
		}
		return false, nil
	}
	stop := c.answerAll(nil)
	defer stop()
	p := newProducer(t, c, append(oneRecordBatches(), producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond))...)
	ctx := testCtx(t)
	rs := fiveByteRecords(4)
	o := newOrder()
	for _, r := range rs {
		p.Produce(ctx, r, o.promise())
	}
	require.NoError(t, p.Flush(ctx))
	o.wg.Wait()
	require.Equal(t, values(rs), o.seen, "promises in produce order")
	require.ErrorIs(t, o.errs[string(rs[1].Value)], producer.ErrOutOfOrderSequence)
	log := values(readRecords(t, b, "t", 0))
	require.Equal(t, []string{"v0000", "v0001", "v0002", "v0003"}, log, "the unsure batch once (its first attempt), nothing twice")
	for i, r := range rs {
		if i == 1 {
			continue
		}
		require.NoError(t, o.errs[string(r.Value)])
		require.Equal(t, string(r.Value), log[r.Offset], "at its offset")
	}
	require.NotEqual(t, rs[0].ProducerID, rs[2].ProducerID, "a new producer id")
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

// pidRefusalClient is a broker whose first Produce of each of partitions
// 0 and 1 is refused with api.ErrUnknownProducerID: partition 0's once
// partition 1's has come (both under the producer's first id),
// partition 1's only once partition 0's batch went again (under the id
// taken since). It counts InitProducerID calls.
type pidRefusalClient struct {
	b       *runnel.Broker
	inits   atomic.Int32
	mu      sync.Mutex
	calls   [2]int
	p1Came  chan struct{} // closed at partition 1's first Produce
	p0Again chan struct{} // closed at partition 0's second Produce
}

func (c *pidRefusalClient) Partitions(ctx context.Context, topic string) (int, error) {
	return c.b.Partitions(ctx, topic)
}

func (c *pidRefusalClient) InitProducerID(ctx context.Context) (int64, int16, error) {
	c.inits.Add(1)
	return c.b.InitProducerID(ctx)
}

func (c *pidRefusalClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	c.mu.Lock()
	c.calls[req.Partition]++
	call := c.calls[req.Partition]
	c.mu.Unlock()
	switch {
	case req.Partition == 0 && call == 1:
		select {
		case <-c.p1Came:
		case <-ctx.Done():
			return api.ProduceResponse{}, ctx.Err()
		}
		return api.ProduceResponse{}, api.ErrUnknownProducerID
	case req.Partition == 0 && call == 2:
		close(c.p0Again)
	case req.Partition == 1 && call == 1:
		close(c.p1Came)
		select {
		case <-c.p0Again:
		case <-ctx.Done():
			return api.ProduceResponse{}, ctx.Err()
		}
		return api.ProduceResponse{}, api.ErrUnknownProducerID
	}
	return c.b.Produce(ctx, req)
}

// TestStaleProducerIDRefusalKeepsTheNewID: two partitions' batches
// are refused with api.ErrUnknownProducerID under the producer's first id;
// partition 0's goes again under a new id at once, and partition 1's
// refusal comes only after that. Partition 1's batch then goes under the
// id partition 0 took (resetProducerID drops an id only if no newer one
// was taken since the refused batch's): two InitProducerID calls in all,
// not a third that would drop the id partition 0 uses.
func TestStaleProducerIDRefusalKeepsTheNewID(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 2))
	c := &pidRefusalClient{b: b, p1Came: make(chan struct{}), p0Again: make(chan struct{})}
	p := newProducer(t, c, producer.RecordPartitioner(producer.ManualPartitioner()))
	ctx := testCtx(t)
	errs := make(chan error, 2)
	for part := range int32(2) {
		go func() {
			errs <- p.ProduceSync(ctx, &record.Record{Topic: "t", Partition: part, Value: fmt.Appendf(nil, "p%d", part)})
		}()
	}
	require.NoError(t, testkit.Await(t, errs, "ProduceSync's answer"))
	require.NoError(t, testkit.Await(t, errs, "ProduceSync's answer"))
	require.EqualValues(t, 2, c.inits.Load(), "InitProducerID calls")
	for part := range int32(2) {
		require.Equal(t, []string{fmt.Sprintf("p%d", part)}, values(readRecords(t, b, "t", part)))
	}
}
