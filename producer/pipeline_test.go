package producer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
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

// *runnel.Broker acknowledges in two steps.
var _ producer.AsyncClient = (*runnel.Broker)(nil)

// ackClient is a producer.AsyncClient in front of a real broker whose
// acknowledgements wait until the test answers them: every
// ProduceAsync appends at once, and its Ack's Wait returns what the test
// sends on the ack's answer channel (then the broker's own wait).
type ackClient struct {
	*runnel.Broker
	appended chan *heldAck // each ack, as its request is appended
	// fault, if set, may fail attempt number attempt (0, 1, ...): before
	// the append, or after it when appended is set.
	fault func(attempt int) (appended bool, err error)
	// deaf makes acks wait for their answer even after their ctx ended,
	// as a Client should not: until the answer, or until deafEnd is
	// closed (see endDeafness).
	deaf    atomic.Bool
	deafEnd chan struct{}

	// refreshed, if set, gets the number of ProduceAsync calls made
	// each time the producer asks for the partition count (a partition's
	// goroutine does after each batch, with a tiny MetadataMaxAge).
	refreshed chan int

	mu       sync.Mutex
	pending  int // acks handed out and not yet answered
	most     int // the most pending at once
	calls    int // acks handed out
	attempts int // ProduceAsync calls
	inits    int // InitProducerID calls
}

func (c *ackClient) InitProducerID(ctx context.Context) (int64, int16, error) {
	c.mu.Lock()
	c.inits++
	c.mu.Unlock()
	return c.Broker.InitProducerID(ctx)
}

func newAckClient(b *runnel.Broker) *ackClient {
	return &ackClient{Broker: b, appended: make(chan *heldAck, 1000), deafEnd: make(chan struct{})}
}

// endDeafness makes the deaf acks waiting return (with an error), so that
// a test that failed while they held their places can close its producer.
func (c *ackClient) endDeafness() { close(c.deafEnd) }

type heldAck struct {
	c      *ackClient
	inner  api.Ack
	answer chan error
	call   int
}

func (c *ackClient) Partitions(ctx context.Context, topic string) (int, error) {
	if c.refreshed != nil {
		c.mu.Lock()
		n := c.attempts
		c.mu.Unlock()
		select {
		case c.refreshed <- n:
		default:
		}
	}
	return c.Broker.Partitions(ctx, topic)
}

func (c *ackClient) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	if c.refreshed != nil {
		// The look-up after this batch is due only once the clock has
		// moved past the last one (see clockTick).
		defer clockTick()
	}
	c.mu.Lock()
	attempt := c.attempts
	c.attempts++
	c.mu.Unlock()
	var fault error
	if c.fault != nil {
		var after bool
		if after, fault = c.fault(attempt); fault != nil && !after {
			return api.ProduceResponse{}, nil, fault
		}
	}
	resp, inner, err := c.Broker.ProduceAsync(ctx, req)
	if err == nil && fault != nil {
		err = fault // appended, and answered with an error
	}
	if err != nil {
		return resp, nil, err
	}
	c.mu.Lock()
	a := &heldAck{c: c, inner: inner, answer: make(chan error, 1), call: c.calls}
	c.calls++
	c.pending++
	c.most = max(c.most, c.pending)
	c.mu.Unlock()
	c.appended <- a
	return resp, a, nil
}

func (a *heldAck) Wait(ctx context.Context) error {
	done := ctx.Done()
	if a.c.deaf.Load() {
		done = a.c.deafEnd
		// Deaf to the end: the broker's own wait for the fsync too, which
		// with ctx ended meanwhile could answer ctx's error when the
		// group commit had not run yet (on a loaded machine: the test
		// failed once so under GOARCH=386 with the load at 7).
		ctx = context.WithoutCancel(ctx)
	}
	select {
	case err := <-a.answer:
		a.c.mu.Lock()
		a.c.pending--
		a.c.mu.Unlock()
		if err != nil {
			return err
		}
		if a.inner != nil {
			return a.inner.Wait(ctx)
		}
		return nil
	case <-done:
		if ctx.Err() == nil {
			return errors.New("the test ended the ack's deafness")
		}
		return ctx.Err()
	}
}

// next returns the next appended request's ack.
func (c *ackClient) next(t *testing.T, ctx context.Context) *heldAck {
	t.Helper()
	select {
	case a := <-c.appended:
		return a
	case <-ctx.Done():
		t.Fatal("no request was appended")
		return nil
	}
}

// answerAll answers every ack from now on with answer(call) (nil: every
// one succeeds), on a goroutine that the returned stop ends.
func (c *ackClient) answerAll(answer func(call int) error) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for a := range c.appended {
			var err error
			if answer != nil {
				err = answer(a.call)
			}
			a.answer <- err
		}
	}()
	return func() { close(c.appended); <-done }
}

// requireInOrder checks that recs were delivered, their promises run in
// produce order, at offsets 0, 1, ... of partition 0 of topic t, which
// holds them in that order.
func requireInOrder(t *testing.T, b *runnel.Broker, o *order, recs []*record.Record) {
	t.Helper()
	require.Equal(t, values(recs), o.seen)
	for i, r := range recs {
		require.NoError(t, o.errs[string(r.Value)])
		require.EqualValues(t, i, r.Offset)
	}
	require.Equal(t, values(recs), values(readRecords(t, b, "t", 0)))
}

func (c *ackClient) mostPending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.most
}

// oneRecordBatches makes every batch hold one record of recs' size (5
// bytes of value), and batches go only when full or flushed: the records
// produced at once wait as queued batches, the situation in which a
// partition's requests overlap. The partitioner has no OnNewBatch: with
// the default one (KIP-480) a full batch is queued before the record that
// filled it is added, and a partition's goroutine that took the batch in
// between found nothing behind it and waited for its acknowledgement
// itself — which these tests answer only after more requests went out.
func oneRecordBatches() []producer.Opt {
	return []producer.Opt{
		producer.BatchMaxBytes(record.HeaderSize + record.SizeWithDeltas(record.BodySize(nil, make([]byte, 5), nil), 0, 0)),
		producer.Linger(time.Minute),
		producer.RecordPartitioner(producer.RoundRobinPartitioner()),
	}
}

// order records the order promises ran in.
type order struct {
	mu   sync.Mutex
	seen []string
	errs map[string]error
	wg   sync.WaitGroup
}

func newOrder() *order { return &order{errs: map[string]error{}} }

func (o *order) promise() func(*record.Record, error) {
	o.wg.Add(1)
	return func(r *record.Record, err error) {
		o.mu.Lock()
		o.seen = append(o.seen, string(r.Value))
		o.errs[string(r.Value)] = err
		o.mu.Unlock()
		o.wg.Done()
	}
}

func fiveByteRecords(n int) []*record.Record {
	out := make([]*record.Record, n)
	for i := range out {
		out[i] = &record.Record{Value: []byte(fmt.Sprintf("v%04d", i))}
	}
	return out
}

// TestPipelineKeepsRequestsInFlight: while the first batches wait for
// their acknowledgement, the partition's next ones are appended, up to
// MaxInFlight and no more; promises run in the order the records were
// produced, whatever order the acknowledgements come in.
func TestPipelineKeepsRequestsInFlight(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newAckClient(b)
	p := newProducer(t, c, append(oneRecordBatches(), producer.MaxInFlight(3), producer.DefaultTopic("t"))...)
	// Nine full batches are queued (the tenth lingers): three go out
	// before any is acknowledged.
	requireInFlight(t, b, c, p, 10, 3)
}

// requireInFlight produces n one-record batches through p (made with
// oneRecordBatches over c, to topic "t" of b), waits until inFlight
// requests are out before any is acknowledged, answers them last to
// first (the first batch's promise must still run first), then every
// other, and fails t unless every promise ran in produce order, the
// records are in the log in that order, and at most inFlight requests
// were in flight at once.
func requireInFlight(t *testing.T, b *runnel.Broker, c *ackClient, p *producer.Producer, n, inFlight int) {
	t.Helper()
	ctx := testCtx(t)
	recs := fiveByteRecords(n)
	o := newOrder()
	for _, r := range recs {
		p.Produce(ctx, r, o.promise())
	}
	var acks []*heldAck
	for range inFlight {
		acks = append(acks, c.next(t, ctx))
	}
	for i := len(acks) - 1; i >= 0; i-- {
		acks[i].answer <- nil
	}
	stop := c.answerAll(nil)
	require.NoError(t, p.Flush(ctx))
	o.wg.Wait()
	stop()
	requireInOrder(t, b, o, recs)
	require.Equal(t, inFlight, c.mostPending(), "requests in flight at most")
}

// TestPipelineSendsWhileWaiting: a record produced while the partition's
// requests wait for their acknowledgement, and it had nothing else to
// send, leaves at once: it does not wait until every request in flight
// is acknowledged.
func TestPipelineSendsWhileWaiting(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newAckClient(b)
	c.refreshed = make(chan int, 100)
	p := newProducer(t, c, append(oneRecordBatches(), producer.MetadataMaxAge(time.Nanosecond), producer.DefaultTopic("t"))...)
	ctx := testCtx(t)
	recs := fiveByteRecords(3)
	o := newOrder()
	p.Produce(ctx, recs[0], o.promise())
	p.Produce(ctx, recs[1], o.promise()) // recs[0]'s batch is full: it goes
	a0 := c.next(t, ctx)
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(ctx) }() // recs[1]'s batch goes too
	a1 := c.next(t, ctx)
	// The partition's goroutine is past its second request: it has
	// nothing to send, and two requests in flight.
	for n := 0; n < 2; {
		select {
		case n = <-c.refreshed:
		case <-ctx.Done():
			t.Fatal("the partition's goroutine did not go on")
		}
	}
	p.Produce(ctx, recs[2], o.promise())
	a2 := c.next(t, ctx) // before a0 and a1 are answered
	for _, a := range []*heldAck{a0, a1, a2} {
		a.answer <- nil
	}
	require.NoError(t, testkit.Await(t, flushed, "Flush's answer"))
	o.wg.Wait()
	requireInOrder(t, b, o, recs)
}

// TestPipelineAckErrorFailsOnlyThatBatch: an acknowledgement that fails
// fails its batch without a retry (it was appended); the batches in flight
// after it complete, in order.
func TestPipelineAckErrorFailsOnlyThatBatch(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newAckClient(b)
	p := newProducer(t, c, append(oneRecordBatches(), producer.DefaultTopic("t"))...)
	ctx := testCtx(t)
	recs := fiveByteRecords(6)
	o := newOrder()
	for _, r := range recs {
		p.Produce(ctx, r, o.promise())
	}
	// Two requests in flight before any is answered: with records
	// buffered behind it, a request's acknowledgement is waited for on
	// the acker, and the next one goes (answered as they came, the
	// requests could each be answered before the next went out, on a
	// loaded machine: the test then failed, "no two requests were in
	// flight").
	for _, a := range []*heldAck{c.next(t, ctx), c.next(t, ctx)} {
		a.answer <- nil
	}
	errAck := errors.New("acknowledgement failed")
	stop := c.answerAll(func(call int) error {
		if call == 2 {
			return errAck
		}
		return nil
	})
	require.NoError(t, p.Flush(ctx))
	o.wg.Wait()
	stop()
	require.Equal(t, values(recs), o.seen)
	for i, r := range recs {
		if i == 2 {
			require.ErrorIs(t, o.errs[string(r.Value)], errAck)
		} else {
			require.NoError(t, o.errs[string(r.Value)])
		}
	}
	// Appended once each, the failed one included: no retry.
	require.Equal(t, values(recs), values(readRecords(t, b, "t", 0)))
	require.Greater(t, c.mostPending(), 1, "no two requests were in flight")
}

// TestPipelineRetriesKeepOrder: with requests in flight, a request the
// broker refuses is retried before any later batch is sent, and one it
// appended but answered with an error is retried and answered as a
// duplicate: every record once, in order.
func TestPipelineRetriesKeepOrder(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newAckClient(b)
	c.fault = func(attempt int) (bool, error) {
		switch attempt {
		case 2:
			return false, api.ErrNotLeader // refused
		case 5:
			return true, api.ErrRequestTimedOut // appended, then failed
		}
		return false, nil
	}
	p := newProducer(t, c, append(oneRecordBatches(), producer.RetryBackoff(time.Millisecond), producer.DefaultTopic("t"))...)
	ctx := testCtx(t)
	recs := fiveByteRecords(8)
	o := newOrder()
	for _, r := range recs {
		p.Produce(ctx, r, o.promise())
	}
	stop := c.answerAll(nil)
	require.NoError(t, p.Flush(ctx))
	o.wg.Wait()
	stop()
	requireInOrder(t, b, o, recs)
	c.mu.Lock()
	require.Equal(t, 10, c.attempts, "8 batches and 2 retries")
	c.mu.Unlock()
}

// TestPipelineCloseFailsWhatWaits: Close ends the waits for
// acknowledgements; their records fail with ErrClosed, then the records
// still buffered, in order.
func TestPipelineCloseFailsWhatWaits(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newAckClient(b)
	p, err := producer.New(c, append(oneRecordBatches(), producer.MaxInFlight(2), producer.DefaultTopic("t"))...)
	require.NoError(t, err)
	ctx := testCtx(t)
	recs := fiveByteRecords(5)
	o := newOrder()
	for _, r := range recs {
		p.Produce(ctx, r, o.promise())
	}
	c.next(t, ctx)
	c.next(t, ctx)
	require.NoError(t, p.Close())
	o.wg.Wait()
	require.Equal(t, values(recs), o.seen)
	for _, r := range recs {
		require.ErrorIs(t, o.errs[string(r.Value)], producer.ErrClosed)
	}
}

// TestPipelineDeliveryTimeout: a batch whose acknowledgement does not come
// by its delivery deadline fails with ErrDeliveryTimeout. (The scenario
// needs the request sent before the deadline, which a loaded machine may
// not do within 50 ms: the test then waited 30 s for a request that never
// came. See untilInTime.)
func TestPipelineDeliveryTimeout(t *testing.T) {
	testkit.UntilInTime(t, 50*time.Millisecond, func(timeout time.Duration) bool {
		b := newBroker(t, runneltest.Topic("t", 1))
		c := newAckClient(b)
		p := newProducer(t, c, producer.Linger(timeout/5), producer.DeliveryTimeout(timeout), producer.DefaultTopic("t"))
		ctx := testCtx(t)
		o := newOrder()
		p.Produce(ctx, &record.Record{Value: []byte("late")}, o.promise())
		waitOrFatal(t, ctx, o, "the record's promise did not run")
		require.ErrorIs(t, o.errs["late"], producer.ErrDeliveryTimeout)
		select {
		case <-c.appended: // sent, and never answered
			return true
		default:
			return false // the deadline passed before the request: too slow
		}
	})
}

// TestPipelineWithFsync: through a broker that fsyncs before every
// acknowledgement (the default), with several producers and partitions,
// every record is delivered once, in order, with its offset.
func TestPipelineWithFsync(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Config(runnel.Config{TopicDefaults: log.Config{Sync: log.SyncAlways}}), runneltest.Topic("t", 3))
	ctx := testCtx(t)
	const producers, each = 4, 2000
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for g := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := producer.New(b, producer.DefaultTopic("t"), producer.BatchMaxBytes(2000), producer.RecordPartitioner(producer.RoundRobinPartitioner()))
			if err != nil {
				errs <- err
				return
			}
			defer p.Close()
			var last [3]int64
			for i := range last {
				last[i] = -1
			}
			var mu sync.Mutex
			for i := range each {
				p.Produce(ctx, &record.Record{Key: []byte{byte(g)}, Value: []byte(fmt.Sprintf("%d-%05d", g, i))}, func(r *record.Record, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err == nil && r.Offset <= last[r.Partition] {
						err = fmt.Errorf("offset %d after %d in partition %d", r.Offset, last[r.Partition], r.Partition)
					}
					if err != nil {
						select {
						case errs <- err:
						default:
						}
						return
					}
					last[r.Partition] = r.Offset
				})
			}
			if err := p.Flush(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	total := 0
	for part := range int32(3) {
		byProducer := map[byte]int{}
		for _, r := range readRecords(t, b, "t", part) {
			var g, i int
			_, err := fmt.Sscanf(string(r.Value), "%d-%d", &g, &i)
			require.NoError(t, err)
			require.Greater(t, i+1, byProducer[byte(g)], "producer %d's records out of order in partition %d", g, part)
			byProducer[byte(g)] = i + 1
			total++
		}
	}
	require.Equal(t, producers*each, total)
}

// TestPipelineDeadlineWhileWaitingForASlot: a batch whose delivery
// deadline passes while it waits for a place in flight was never sent: it
// fails with ErrDeliveryTimeout, and its sequence numbers go to the next
// batch under the same producer id (no new id, as for a batch the broker
// may have appended).
//
// (The scenario needs the first two batches sent, as two requests, before
// the linger or their deadlines pass: under -race with the CPU busy they
// were not, and the test waited 30 s for a request that never came. See
// untilInTime.)
func TestPipelineDeadlineWhileWaitingForASlot(t *testing.T) {
	testkit.UntilInTime(t, 100*time.Millisecond, func(timeout time.Duration) bool {
		b := newBroker(t, runneltest.Topic("t", 1))
		c := newAckClient(b)
		c.deaf.Store(true) // the first two hold their places past every deadline
		// The first batch goes once the second fills it (or after a linger
		// of half the timeout): sent alone, with nothing buffered behind it,
		// it would be waited for on the partition's goroutine (see
		// MaxInFlight), and the second never sent while its ack is held.
		opts := append(oneRecordBatches()[:1], producer.Linger(timeout/2), producer.DeliveryTimeout(timeout),
			producer.MaxInFlight(2), producer.RecordPartitioner(producer.RoundRobinPartitioner()), producer.DefaultTopic("t"))
		p := newProducer(t, c, opts...)
		// Run before the producer's Close (cleanups run last first): should
		// the test fail with the deaf acks held, Close does not wait for them
		// forever.
		t.Cleanup(c.endDeafness)
		ctx := testCtx(t)
		recs := fiveByteRecords(3)
		o := newOrder()
		ran := make(chan struct{}, len(recs))
		promise := func() func(*record.Record, error) {
			f := o.promise()
			return func(r *record.Record, err error) { f(r, err); ran <- struct{}{} }
		}
		// The first two are appended before the third is produced, so that
		// only the third's deadline passes while it waits (on a loaded
		// machine the three produced at once could all pass theirs first).
		p.Produce(ctx, recs[0], promise())
		p.Produce(ctx, recs[1], promise())
		// Both are appended before their deadlines, or the machine was too
		// slow: a record past its deadline is failed, not sent; the first
		// sent alone after the linger holds the partition's goroutine, and
		// the second is neither sent nor failed.
		late := time.NewTimer(2 * timeout)
		defer late.Stop()
		var held []*heldAck
		for len(held) < 2 {
			select {
			case a := <-c.appended:
				held = append(held, a)
			case <-ran:
				return false // a record failed before both were sent: too slow
			case <-late.C:
				return false // the second not sent by its deadline: too slow
			}
		}
		p.Produce(ctx, recs[2], promise())
		// The third batch waits for a place; let its deadline pass (a sleep
		// longer than the timeout: the test asserts no duration).
		time.Sleep(2 * timeout)
		held[0].answer <- nil
		held[1].answer <- nil
		done := make(chan struct{})
		go func() { o.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-c.appended:
			// Deaf, it would hold its promise until the test's end (the
			// test hung so: the timer that ends the attempt at the
			// deadline had not run when the batch got its place).
			t.Fatal("the third batch was sent after its deadline")
		case <-ctx.Done():
			t.Fatal("the promises did not run")
		}
		require.NoError(t, o.errs[string(recs[0].Value)])
		require.NoError(t, o.errs[string(recs[1].Value)])
		require.ErrorIs(t, o.errs[string(recs[2].Value)], producer.ErrDeliveryTimeout)

		// The next record goes under the same producer id, with the third
		// batch's sequence number.
		c.deaf.Store(false)
		stop := c.answerAll(nil)
		last := &record.Record{Value: []byte("v9999")}
		err := p.ProduceSync(ctx, last)
		stop()
		if errors.Is(err, producer.ErrDeliveryTimeout) {
			return false // not delivered within the timeout: too slow
		}
		require.NoError(t, err)
		require.EqualValues(t, 2, last.Offset)
		require.EqualValues(t, 2, last.Sequence)
		c.mu.Lock()
		defer c.mu.Unlock()
		require.Equal(t, 1, c.inits, "the producer kept its id")
		return true
	})
}

func (c *ackClient) initCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inits
}
