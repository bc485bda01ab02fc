package producer_test

import (
	"context"
	"errors"
	"fmt"
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

// Tests that close gaps of session 39's mutation pass (see
// review39mut_internal_test.go for those of the internals).

// TestReview39SynctestProduceSyncStickyDoesNotLinger: ProduceSync does not
// wait for Linger (its doc) also when the partitioner moves its record on
// as it would open a new batch (KIP-480: the default
// StickyKeyPartitioner's OnNewBatch, which a topic's first record without
// a key meets, takes it to another partition of a topic of 2): the
// partition the record lands on is un-lingered too. On the fake clock,
// with a minute's Linger, each ProduceSync returns at once.
func TestReview39SynctestProduceSyncStickyDoesNotLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		require.NoError(t, c.CreateTopic(t.Context(), "two", log.TopicConfig{Partitions: 2}))
		p, err := producer.New(c, producer.Linger(time.Minute))
		require.NoError(t, err)
		defer p.Close()
		for i := range 4 {
			t1 := time.Now()
			r := &record.Record{Topic: "two", Value: []byte("v")}
			require.NoError(t, p.ProduceSync(t.Context(), r))
			require.Equal(t, t1, time.Now(), "ProduceSync %d waited for the linger", i)
		}
	})
}

// TestReview39MayBeWrittenTable: MayBeWritten's doc, error by error: false
// for nil, a ctx's errors, the errors before a record is buffered and the
// broker's refusals alone; true for ErrMaybeWritten whatever else the
// error matches, ErrDeliveryTimeout, ErrClosed, log.ErrLogFenced,
// api.ErrBrokerClosed, ErrOutOfOrderSequence (a refusal, but listed
// apart) and an error the producer does not know; a RecordError of no
// partition is false whatever its error. Each also wrapped.
func TestReview39MayBeWrittenTable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{producer.ErrMaxBuffered, false},
		{producer.ErrNoTopic, false},
		{producer.ErrNilRecord, false},
		{producer.ErrInvalidPartition, false},
		{producer.ErrInvalidOption, false},
		{producer.ErrRecordTooLarge, false},
		{log.ErrInvalidRecord, false},
		{api.ErrPolicyViolation, false},
		{producer.ErrProducerFenced, false},
		{api.ErrUnknownTopicOrPartition, false},
		{producer.ErrMaybeWritten, true},
		{errors.Join(context.Canceled, producer.ErrMaybeWritten), true},
		{producer.ErrDeliveryTimeout, true},
		{producer.ErrClosed, true},
		{log.ErrLogFenced, true},
		{api.ErrBrokerClosed, true},
		{producer.ErrOutOfOrderSequence, true},
		{errors.New("connection reset"), true},
		{&producer.RecordError{Partition: producer.UnknownPartition, Err: producer.ErrDeliveryTimeout}, false},
		{&producer.RecordError{Partition: 3, Err: producer.ErrDeliveryTimeout}, true},
		{&producer.RecordError{Partition: 3, Err: context.DeadlineExceeded}, false},
	} {
		require.Equal(t, tc.want, producer.MayBeWritten(tc.err), "%v", tc.err)
		require.Equal(t, tc.want, producer.MayBeWritten(fmt.Errorf("wrapped: %w", tc.err)), "wrapped %v", tc.err)
	}
}

// TestReview39MayBeWrittenInvalidTimestamp: a record whose Timestamp is
// before the Unix epoch fails with ErrInvalidTimestamp before it is
// buffered (Produce's doc; api.ErrInvalidTimestamp is "a record timestamp
// a client refuses to send"), so it was never sent, and MayBeWritten,
// whose doc says false "for an error before the record was buffered",
// must say so of its promise's error. It said true: the error is in
// neither of the lists mayBeWritten checks, and fell to "an error the
// producer does not know".
func TestReview39MayBeWrittenInvalidTimestamp(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b)
	got := make(chan error, 1)
	p.Produce(t.Context(), &record.Record{Topic: "t", Timestamp: time.UnixMilli(-5), Value: []byte("v")},
		func(_ *record.Record, err error) { got <- err })
	err := <-got
	require.ErrorIs(t, err, producer.ErrInvalidTimestamp)
	require.False(t, producer.MayBeWritten(err), "%v", err)
	require.False(t, producer.MayBeWritten(producer.ErrInvalidTimestamp))
	require.Empty(t, runneltest.ConsumeAll(t, b, "t"))
}

// review39PidClient is a broker whose first Produce of each of partitions
// 0 and 1 is refused with api.ErrUnknownProducerID: partition 0's once
// partition 1's has come (both under the producer's first id),
// partition 1's only once partition 0's batch went again (under the id
// taken since). It counts InitProducerID calls.
type review39PidClient struct {
	b       *runnel.Broker
	inits   atomic.Int32
	mu      sync.Mutex
	calls   [2]int
	p1Came  chan struct{} // closed at partition 1's first Produce
	p0Again chan struct{} // closed at partition 0's second Produce
}

func (c *review39PidClient) Partitions(ctx context.Context, topic string) (int, error) {
	return c.b.Partitions(ctx, topic)
}

func (c *review39PidClient) InitProducerID(ctx context.Context) (int64, int16, error) {
	c.inits.Add(1)
	return c.b.InitProducerID(ctx)
}

func (c *review39PidClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
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

// TestReview39StaleProducerIDRefusalKeepsTheNewID: two partitions' batches
// are refused with api.ErrUnknownProducerID under the producer's first id;
// partition 0's goes again under a new id at once, and partition 1's
// refusal comes only after that. Partition 1's batch then goes under the
// id partition 0 took (resetProducerID drops an id only if no newer one
// was taken since the refused batch's): two InitProducerID calls in all,
// not a third that would drop the id partition 0 uses.
func TestReview39StaleProducerIDRefusalKeepsTheNewID(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 2))
	c := &review39PidClient{b: b, p1Came: make(chan struct{}), p0Again: make(chan struct{})}
	p := newProducer(t, c, producer.RecordPartitioner(producer.ManualPartitioner()))
	ctx := testCtx(t)
	errs := make(chan error, 2)
	for part := range int32(2) {
		go func() {
			errs <- p.ProduceSync(ctx, &record.Record{Topic: "t", Partition: part, Value: fmt.Appendf(nil, "p%d", part)})
		}()
	}
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	require.EqualValues(t, 2, c.inits.Load(), "InitProducerID calls")
	for part := range int32(2) {
		require.Equal(t, []string{fmt.Sprintf("p%d", part)}, values(readRecords(t, b, "t", part)))
	}
}
