package producer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// flakyPartitions is a Client whose Partitions fails with the errors
// queued, one per call, before answering as the broker does.
type flakyPartitions struct {
	*runnel.Broker
	mu    sync.Mutex
	errs  []error
	calls int
	// before, if set, runs before call number call (from 1) answers.
	before func(call int)
}

func (c *flakyPartitions) Partitions(ctx context.Context, topic string) (int, error) {
	c.mu.Lock()
	c.calls++
	call := c.calls
	var err error
	if len(c.errs) > 0 {
		err, c.errs = c.errs[0], c.errs[1:]
	}
	c.mu.Unlock()
	if c.before != nil {
		c.before(call)
	}
	if err != nil {
		return 0, err
	}
	return c.Broker.Partitions(ctx, topic)
}

func (c *flakyPartitions) callCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// waitCalls waits until Partitions was called n times (a test's deadline
// bounds it).
func (c *flakyPartitions) waitCalls(n int) {
	for c.callCount() < n {
		time.Sleep(time.Millisecond)
	}
}

// A retriable error of the topic's look-up (a request timed out, not the
// leader) is retried with backoff, as Kafka's producer waits for its
// metadata and franz-go retries its loads, rather than fail the record;
// TryProduce, which must not wait, does not retry; an error Kafka's table
// calls not retriable fails the record at once, as an unknown topic does
// (see Producer).
func TestTopicLookUpRetriesRetriableErrors(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1), runneltest.Topic("u", 1))
	c := &flakyPartitions{Broker: b, errs: []error{api.ErrRequestTimedOut, api.ErrNotLeader}}
	p := newProducer(t, c, producer.RetryBackoff(time.Millisecond))
	ctx := testCtx(t)
	r := &record.Record{Topic: "t", Value: []byte("v")}
	require.NoError(t, p.ProduceSync(ctx, r))
	require.Equal(t, 3, c.calls)
	require.Equal(t, []string{"v"}, values(readRecords(t, b, "t", 0)))

	// TryProduce: the first answer.
	c.mu.Lock()
	c.errs = []error{api.ErrRequestTimedOut}
	c.mu.Unlock()
	errc := make(chan error, 1)
	p.TryProduce(ctx, &record.Record{Topic: "u", Value: []byte("w")}, func(_ *record.Record, err error) { errc <- err })
	require.ErrorIs(t, testkit.Await(t, errc, "the record's promise"), api.ErrRequestTimedOut)

	// Not retriable: at once.
	c.mu.Lock()
	c.errs = []error{api.ErrInvalidRequest}
	c.mu.Unlock()
	require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Topic: "u", Value: []byte("w")}), api.ErrInvalidRequest)
}

// The retries of a look-up end with the record's ctx (its error: the
// record was not written), with Close (ErrClosed), and after
// DeliveryTimeout (ErrDeliveryTimeout, matching the last error).
func TestTopicLookUpRetriesEnd(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	always := make([]error, 1<<20)
	for i := range always {
		always[i] = api.ErrRequestTimedOut
	}
	c := &flakyPartitions{Broker: b, errs: always}

	p := newProducer(t, c, producer.RetryBackoff(time.Millisecond), producer.DeliveryTimeout(20*time.Millisecond))
	err := p.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("v")})
	require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
	require.ErrorIs(t, err, api.ErrRequestTimedOut)

	p2 := newProducer(t, c, producer.RetryBackoff(time.Millisecond))
	ctx, cancel := context.WithCancel(testCtx(t))
	errc := make(chan error, 1)
	go func() { errc <- p2.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("v")}) }()
	c.waitCalls(c.callCount() + 3) // retrying
	cancel()
	require.ErrorIs(t, testkit.Await(t, errc, "ProduceSync's answer"), context.Canceled)

	p3, err := producer.New(c, producer.RetryBackoff(time.Hour))
	require.NoError(t, err)
	n := c.callCount()
	go func() { errc <- p3.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("v")}) }()
	c.waitCalls(n + 1) // in its hour of backoff
	require.NoError(t, p3.Close())
	err = testkit.Await(t, errc, "ProduceSync's answer")
	require.ErrorIs(t, err, producer.ErrClosed)
	require.False(t, errors.Is(err, context.Canceled))
}

// cancellingPartitions is a Client whose Partitions ends the record's ctx
// (cancel) and fails with a retriable error, as a look-up cut short by
// the ctx ending under it may.
type cancellingPartitions struct {
	*runnel.Broker
	cancel context.CancelFunc
}

func (c *cancellingPartitions) Partitions(context.Context, string) (int, error) {
	c.cancel()
	return 0, api.ErrRequestTimedOut
}

// A look-up that fails with a retriable error once the record's ctx has
// ended fails the record with the ctx's error (it was not written, as
// Produce's doc says of that error), not with the look-up's: the retry
// ends there.
func TestTopicLookUpEndedByCtxGivesCtxError(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	c := &cancellingPartitions{Broker: b, cancel: cancel}
	p := newProducer(t, c, producer.RetryBackoff(time.Millisecond))
	err := p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("v")})
	require.ErrorIs(t, err, context.Canceled)
}

// ProduceSync of several records to a topic whose partition count cannot
// be learned (every look-up answered with a retriable error) fails them
// all after one look-up's DeliveryTimeout, not one DeliveryTimeout per
// record, one after another: the records after the first take its
// answer. Measured in look-ups: the third answer comes only after the
// delivery timeout (a broker slow to answer), so the first record's
// look-up makes three at most, and the other four records, if they looked
// up themselves, would make at least one each. (The test compared the
// look-ups of five records with those of one, each as many as fit in
// 50 ms of the wall clock: it failed so, 6 against 4, on a loaded machine.)
func TestProduceSyncLooksUpATopicOnce(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1), runneltest.Topic("u", 1))
	always := make([]error, 1<<20)
	for i := range always {
		always[i] = api.ErrRequestTimedOut
	}
	const timeout = 50 * time.Millisecond
	opts := []producer.Opt{producer.RetryBackoff(time.Millisecond), producer.DeliveryTimeout(timeout)}
	records := func(n int, topic string) []*record.Record {
		var recs []*record.Record
		for range n {
			recs = append(recs, &record.Record{Topic: topic, Value: []byte("v")})
		}
		return recs
	}
	const slowCall = 3
	slowThird := func(call int) {
		if call == slowCall {
			time.Sleep(timeout) // the deadline has passed when it answers
		}
	}

	one := &flakyPartitions{Broker: b, errs: always, before: slowThird}
	err := newProducer(t, one, opts...).ProduceSync(testCtx(t), records(1, "t")...)
	require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
	require.LessOrEqual(t, one.callCount(), slowCall)

	five := &flakyPartitions{Broker: b, errs: always, before: slowThird}
	err = newProducer(t, five, opts...).ProduceSync(testCtx(t), records(5, "t")...)
	require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
	require.Len(t, err.(interface{ Unwrap() []error }).Unwrap(), 5, "every record failed")
	require.LessOrEqual(t, five.callCount(), slowCall, "look-ups of five records: the first's alone")

	// Another topic of the same call is looked up on its own (with the
	// default delivery timeout: the records must be delivered).
	mixed := &flakyPartitions{Broker: b, errs: always[:1]} // t's first look-up fails once, then all answer
	err = newProducer(t, mixed, producer.RetryBackoff(time.Millisecond)).ProduceSync(testCtx(t), append(records(2, "t"), records(2, "u")...)...)
	require.NoError(t, err)
}

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
