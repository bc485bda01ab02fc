package producer_test

import (
	"context"
	"errors"
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
	require.ErrorIs(t, <-errc, api.ErrRequestTimedOut)

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
	require.ErrorIs(t, <-errc, context.Canceled)

	p3, err := producer.New(c, producer.RetryBackoff(time.Hour))
	require.NoError(t, err)
	n := c.callCount()
	go func() { errc <- p3.ProduceSync(testCtx(t), &record.Record{Topic: "t", Value: []byte("v")}) }()
	c.waitCalls(n + 1) // in its hour of backoff
	require.NoError(t, p3.Close())
	err = <-errc
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
