package producer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// The rules of a record's ctx: it governs the record until the record's
// batch is sealed for sending. A record whose ctx is done by then fails
// with ctx's error and is never sent; afterwards the ctx no longer
// matters, and ProduceSync reports what became of the record.

func value(v string) *record.Record { return &record.Record{Value: []byte(v)} }

// waitOrFatal waits for o's promises, failing the test if ctx ends
// first (a liveness bound: the promises must not wait for a linger or a
// delivery timeout).
func waitOrFatal(t *testing.T, ctx context.Context, o *order, why string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		o.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal(why)
	}
}

// A record whose ctx is already done fails at once with ctx's error,
// before Produce returns, and nothing is buffered or written: through
// Produce, TryProduce and ProduceSync alike.
func TestDoneCtxFailsTheRecordAtOnce(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.DefaultTopic("t"))
	ctx := testCtx(t)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel2()
	for _, tc := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		for range 10 {
			for _, try := range []bool{false, true} {
				var got error
				ran := false
				promise := func(_ *record.Record, err error) { got, ran = err, true }
				if try {
					p.TryProduce(tc.ctx, value("try"), promise)
				} else {
					p.Produce(tc.ctx, value("produce"), promise)
				}
				require.True(t, ran, "the promise ran before Produce returned")
				require.ErrorIs(t, got, tc.want)
			}
			r := value("sync")
			err := p.ProduceSync(tc.ctx, r)
			require.ErrorIs(t, err, tc.want)
			var re *producer.RecordError
			require.ErrorAs(t, err, &re)
			require.Same(t, r, re.Record)
			require.Zero(t, p.BufferedRecords())
		}
	}
	require.NoError(t, p.Flush(ctx))
	require.Empty(t, readRecords(t, b, "t", 0), "nothing was written")
	require.NoError(t, p.ProduceSync(ctx, value("ok")))
	require.Equal(t, []string{"ok"}, values(readRecords(t, b, "t", 0)))
}

// A record whose ctx ends while it waits behind a request in flight fails
// with ctx's error and is never sent. The records around it in its batch
// are sent, their sequence numbers leave no gap (the broker takes the next
// batch), and every promise runs in produce order.
func TestCtxEndingBeforeTheBatchIsSentFailsOnlyThatRecord(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c, g := gatedClient(b)
	p := newProducer(t, c, producer.DefaultTopic("t"))
	ctx := testCtx(t)
	o := newOrder()
	p.Produce(ctx, value("a"), o.promise())
	testkit.Await(t, g.entered, "a's request at the gate") // a is in flight, held
	cctx, cancel := context.WithCancel(ctx)
	p.Produce(ctx, value("b"), o.promise())
	p.Produce(cctx, value("c"), o.promise())
	p.Produce(ctx, value("d"), o.promise())
	cancel()
	g.release()
	o.wg.Wait()
	require.Equal(t, []string{"a", "b", "c", "d"}, o.seen, "promises in produce order")
	require.ErrorIs(t, o.errs["c"], context.Canceled)
	for _, v := range []string{"a", "b", "d"} {
		require.NoError(t, o.errs[v])
	}
	reqs := c.requests()
	require.Len(t, reqs, 2)
	require.EqualValues(t, 2, reqs[1].batch.NumRecords(), "b and d, without c")

	e := value("e")
	require.NoError(t, p.ProduceSync(ctx, e))
	require.EqualValues(t, 3, e.Offset)
	require.EqualValues(t, 3, e.Sequence, "a, b, d took 0, 1, 2")
	require.Equal(t, []string{"a", "b", "d", "e"}, values(readRecords(t, b, "t", 0)))
}

// A batch whose records' ctxs have all ended is not sent at all, and
// takes no sequence numbers.
func TestBatchOfEndedCtxsIsNotSent(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c, g := gatedClient(b)
	p := newProducer(t, c, producer.DefaultTopic("t"))
	ctx := testCtx(t)
	o := newOrder()
	p.Produce(ctx, value("a"), o.promise())
	testkit.Await(t, g.entered, "a's request at the gate")
	cctx, cancel := context.WithCancel(ctx)
	p.Produce(cctx, value("b"), o.promise())
	p.Produce(cctx, value("c"), o.promise())
	cancel()
	g.release()
	o.wg.Wait()
	require.Equal(t, []string{"a", "b", "c"}, o.seen)
	require.NoError(t, o.errs["a"])
	require.ErrorIs(t, o.errs["b"], context.Canceled)
	require.ErrorIs(t, o.errs["c"], context.Canceled)
	require.Len(t, c.requests(), 1, "only a's batch was sent")
	d := value("d")
	require.NoError(t, p.ProduceSync(ctx, d))
	require.EqualValues(t, 1, d.Sequence)
	require.Equal(t, []string{"a", "d"}, values(readRecords(t, b, "t", 0)))
}

// ProduceSync whose ctx ends while its record is in flight waits for the
// record's outcome and reports it: nil, since the record was written.
// Flush's ctx only bounds Flush's wait.
func TestProduceSyncReportsTheOutcomeWhenCtxEndsInFlight(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c, g := gatedClient(b)
	p := newProducer(t, c, producer.DefaultTopic("t"))
	ctx := testCtx(t)
	r := value("v")
	sctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- p.ProduceSync(sctx, r) }()
	testkit.AwaitHold(t, g.entered, errc, "the ProduceSync")
	cancel()
	require.ErrorIs(t, p.Flush(sctx), context.Canceled)
	require.EqualValues(t, 1, p.BufferedRecords(), "still in flight")
	g.release()
	require.NoError(t, testkit.Await(t, errc, "ProduceSync's answer"), "written, so ProduceSync says so")
	require.EqualValues(t, 0, r.Offset)
	require.Equal(t, []string{"v"}, values(readRecords(t, b, "t", 0)))
}

// Once a batch was sent, even once, its records are retried as they are:
// a ctx that ends during the first attempt does not take a record out of
// the retry, which sends the same bytes.
func TestCtxEndingAfterTheFirstAttemptDoesNotFailTheRetry(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	cctx, cancel := context.WithCancel(testCtx(t))
	c.setHook(func(ctx context.Context, call int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		if call == 0 {
			cancel()
			return api.ProduceResponse{}, api.ErrNotLeader
		}
		return next()
	})
	// A linger keeps a and b in one batch, which Flush sends.
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond), producer.Linger(time.Minute))
	ctx := testCtx(t)
	o := newOrder()
	p.Produce(ctx, value("a"), o.promise())
	p.Produce(cctx, value("b"), o.promise())
	require.NoError(t, p.Flush(ctx))
	require.NoError(t, o.errs["a"])
	require.NoError(t, o.errs["b"])
	reqs := c.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, reqs[0].batch, reqs[1].batch, "the retry is the same batch")
	require.Equal(t, []string{"a", "b"}, values(readRecords(t, b, "t", 0)))
}

// requireCtxEndSendsTheLingeringBatch produces a and b to p's default
// topic t (one partition, empty, p's batches lingering), b with a ctx
// that then ends: the batch is sent at once, not at the end of the
// linger; b fails with ctx's error, and a alone is written.
func requireCtxEndSendsTheLingeringBatch(t *testing.T, ctx context.Context, b *runnel.Broker, p *producer.Producer) {
	t.Helper()
	o := newOrder()
	p.Produce(ctx, value("a"), o.promise())
	cctx, cancel := context.WithCancel(ctx)
	p.Produce(cctx, value("b"), o.promise())
	cancel()
	waitOrFatal(t, ctx, o, "the lingering batch was not looked at when a record's ctx ended")
	require.NoError(t, o.errs["a"])
	require.ErrorIs(t, o.errs["b"], context.Canceled)
	require.Equal(t, []string{"a"}, values(readRecords(t, b, "t", 0)))
}

// A batch lingering for more records is sent as soon as a record's ctx
// ends, not at the end of the linger: the record fails with ctx's error,
// and the rest of the batch goes.
func TestCtxEndingDuringLingerFailsTheRecordPromptly(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.DefaultTopic("t"), producer.Linger(time.Minute))
	ctx := testCtx(t)
	requireCtxEndSendsTheLingeringBatch(t, ctx, b, p)

	// ProduceSync too: its error is ctx's, and the record is not written.
	// (A ProduceSync's batch does not linger: its record waits here
	// behind a request that a Faults holds until the ctx has ended.)
	f := runneltest.NewFaults(t, b)
	ps := newProducer(t, f, producer.DefaultTopic("t"), producer.Linger(time.Minute))
	hold := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
	held := make(chan error, 1)
	go func() { held <- ps.ProduceSync(ctx, value("x")) }()
	require.NoError(t, hold.Wait(ctx, 1))
	sctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	go func() {
		<-sctx.Done()
		hold.Remove()
	}()
	r := value("c")
	err := ps.ProduceSync(sctx, r)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, testkit.Await(t, held, "ProduceSync's answer"))
	require.NoError(t, ps.Flush(ctx))
	require.Equal(t, []string{"a", "x"}, values(readRecords(t, b, "t", 0)))
}

// The same for a record of a topic other than the producer's first: it
// joins the lingering batch without the topic's lock in place (see
// markHotLocked), not in produce, which does so only for the first
// topic's records (see hotTopic). Its ctx is watched all the same.
func TestCtxEndingDuringLingerFailsTheRecordPromptlyInASecondTopic(t *testing.T) {
	b := newBroker(t, runneltest.Topic("first", 1), runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.DefaultTopic("t"), producer.Linger(time.Minute))
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "first", Value: []byte("f")}))
	requireCtxEndSendsTheLingeringBatch(t, ctx, b, p)
}

// With several requests in flight, a batch waiting for a place among
// them is looked at again once it has one: a record whose ctx ended
// meanwhile is not sent, and the next records take its sequence number.
func TestPipelineCtxEndingWhileWaitingForASlot(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newAckClient(b)
	// A batch goes once the next record fills it, not after a linger: a
	// first batch sent alone, with nothing buffered behind it, would be
	// waited for on the partition's goroutine (see MaxInFlight), and the
	// second never sent while the test holds the first's ack (a loaded
	// machine, the test's goroutine paused past a short linger between
	// two Produce calls, did that). Flush sends the last.
	opts := append(oneRecordBatches()[:1], producer.Linger(time.Minute),
		producer.MaxInFlight(2), producer.RecordPartitioner(producer.RoundRobinPartitioner()), producer.DefaultTopic("t"))
	p := newProducer(t, c, opts...)
	ctx := testCtx(t)
	recs := fiveByteRecords(4)
	cctx, cancel := context.WithCancel(ctx)
	o := newOrder()
	for i, r := range recs {
		rctx := ctx
		if i == 2 {
			rctx = cctx
		}
		p.Produce(rctx, r, o.promise())
	}
	first, second := c.next(t, ctx), c.next(t, ctx)
	// The third batch is sealed and waits for a place (a pause lets the
	// goroutine get there; the outcome is the same if it has not yet).
	time.Sleep(20 * time.Millisecond)
	cancel()
	first.answer <- nil
	second.answer <- nil
	stop := c.answerAll(nil)
	require.NoError(t, p.Flush(ctx))
	o.wg.Wait()
	stop()
	require.Equal(t, values(recs), o.seen, "promises in produce order")
	require.ErrorIs(t, o.errs[string(recs[2].Value)], context.Canceled)
	for _, i := range []int{0, 1, 3} {
		require.NoError(t, o.errs[string(recs[i].Value)])
	}
	require.EqualValues(t, 2, recs[3].Sequence, "the cancelled record's sequence number went to the next")
	require.EqualValues(t, 2, recs[3].Offset)
	require.Equal(t, values([]*record.Record{recs[0], recs[1], recs[3]}), values(readRecords(t, b, "t", 0)))
}

// A batch refused as too large is split in halves that keep the records
// dropped from it: they fail with their ctx's error, unsent, the others
// are sent, and the promises run in produce order.
func TestSplitBatchKeepsItsDroppedRecords(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c, g := gatedClient(b)
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond))
	ctx := testCtx(t)
	o := newOrder()
	p.Produce(ctx, value("a"), o.promise())
	testkit.Await(t, g.entered, "a's request at the gate")
	c.setHook(func(_ context.Context, call int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		if call == 1 {
			return api.ProduceResponse{}, producer.ErrRecordTooLarge
		}
		return next()
	})
	cctx, cancel := context.WithCancel(ctx)
	p.Produce(ctx, value("b"), o.promise())
	p.Produce(cctx, value("c"), o.promise())
	p.Produce(ctx, value("d"), o.promise())
	cancel()
	g.release()
	o.wg.Wait()
	require.Equal(t, []string{"a", "b", "c", "d"}, o.seen)
	require.ErrorIs(t, o.errs["c"], context.Canceled)
	for _, v := range []string{"a", "b", "d"} {
		require.NoError(t, o.errs[v])
	}
	reqs := c.requests()
	require.Len(t, reqs, 4, "a; b and d refused; b; d")
	require.EqualValues(t, 2, reqs[1].batch.NumRecords())
	require.EqualValues(t, 1, reqs[2].batch.NumRecords())
	require.EqualValues(t, 1, reqs[3].batch.NumRecords())
	require.Equal(t, []string{"a", "b", "d"}, values(readRecords(t, b, "t", 0)))
}

// afterFuncCtx is a ctx that may end (it never does here) and counts the
// context.AfterFunc registrations on it that are neither run nor
// stopped: context.AfterFunc calls a parent's own AfterFunc method.
type afterFuncCtx struct {
	done chan struct{}
	mu   sync.Mutex
	live int
}

func newAfterFuncCtx() *afterFuncCtx { return &afterFuncCtx{done: make(chan struct{})} }

func (c *afterFuncCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *afterFuncCtx) Done() <-chan struct{} { return c.done }

func (c *afterFuncCtx) Err() error { return nil }

func (c *afterFuncCtx) Value(any) any { return nil }

func (c *afterFuncCtx) AfterFunc(func()) func() bool {
	c.mu.Lock()
	c.live++
	c.mu.Unlock()
	var once sync.Once
	return func() bool {
		stopped := false
		once.Do(func() {
			c.mu.Lock()
			c.live--
			c.mu.Unlock()
			stopped = true
		})
		return stopped
	}
}

func (c *afterFuncCtx) registered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// A lingering batch watches its records' ctxs (context.AfterFunc); the
// batches Close fails stop watching them too. Else the application's
// ctx, as long as it lives, kept the closed producer (each watch's
// function holds its partition, and so the producer), and ran that
// function on a goroutine of its own once it ended, after Close had
// returned. Both a lingering batch and a full one in the queue.
func TestCloseStopsWatchingCtxs(t *testing.T) {
	c, g := gatedClient(newBroker(t, runneltest.Topic("t", 1)))
	defer g.release()
	p, err := producer.New(c, producer.DefaultTopic("t"), producer.BatchMaxBytes(200),
		producer.Linger(time.Hour), producer.DeliveryTimeout(2*time.Hour))
	require.NoError(t, err)
	ctx := newAfterFuncCtx()
	out := newOutcome()
	// Three batches of two: the first sent, held at the gate, the
	// second full and queued behind it, the third lingering.
	in := make([]*record.Record, 6)
	for i := range in {
		in[i] = &record.Record{Value: make([]byte, 60)}
		p.Produce(ctx, in[i], out.promise())
	}
	testkit.Await(t, g.entered, "the first request at the gate")
	require.Positive(t, ctx.registered(), "the test's premise: the lingering batches watch the ctx")
	require.NoError(t, p.Close())
	out.wait()
	for _, r := range in {
		require.ErrorIs(t, out.err(r), producer.ErrClosed)
	}
	require.Zero(t, ctx.registered(), "watches left on the ctx of records Close failed")
}
