package producer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
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
	<-refused
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
