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

// review39ScriptClient answers Partitions with its script's answer to
// the n-th call (1-based), and Produce with refuse's error for the n-th
// request if refuse is set and returns one, else taking the batch (its
// records at offset 0); it has one producer id.
type review39ScriptClient struct {
	mu       sync.Mutex
	calls    int
	requests int
	script   func(ctx context.Context, call int) (int, error)
	refuse   func(request int) error
}

func (c *review39ScriptClient) Partitions(ctx context.Context, _ string) (int, error) {
	c.mu.Lock()
	c.calls++
	call := c.calls
	c.mu.Unlock()
	return c.script(ctx, call)
}

func (*review39ScriptClient) InitProducerID(context.Context) (int64, int16, error) { return 1, 0, nil }

func (c *review39ScriptClient) Produce(context.Context, *api.ProduceRequest) (api.ProduceResponse, error) {
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

// TestReview39SynctestPastTheCountLooksAgainByOneDeadline: a record past the
// partition count the producer knows waits for the count's look-ups no
// longer than DeliveryTimeout from its Produce, also when its first
// look-up's answer could not be placed (another look-up, begun after it,
// brought another count first) and it looks again: the look-ups of one
// record's count share one deadline (lookUpBy). On the fake clock the
// first look-up takes 6 s, the second hangs: the record fails with
// ErrDeliveryTimeout 10 s after its ProduceSync began, not 10 s after the
// second look-up began; the other look-up's record is delivered.
func TestReview39SynctestPastTheCountLooksAgainByOneDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		aIn := make(chan struct{})
		c := &review39ScriptClient{script: func(ctx context.Context, call int) (int, error) {
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
		review39LooksAgainByOneDeadline(t, c, aIn, 2, func(p *producer.Producer) {
			require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Partition: 0, Value: []byte("0")}))
		})
	})
}

// TestReview39SynctestGoneTopicLooksAgainByOneDeadline: as
// TestReview39SynctestPastTheCountLooksAgainByOneDeadline, for a record of
// a topic the broker said was gone (lookAgain): its look-ups, the second
// made because the first one's answer could not be placed, end
// DeliveryTimeout after its ProduceSync began.
func TestReview39SynctestGoneTopicLooksAgainByOneDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		aIn := make(chan struct{})
		c := &review39ScriptClient{script: func(ctx context.Context, call int) (int, error) {
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
		review39LooksAgainByOneDeadline(t, c, aIn, 0, func(p *producer.Producer) {
			require.ErrorIs(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Partition: 0, Value: []byte("0")}),
				api.ErrUnknownTopicOrPartition)
		})
	})
}

// review39LooksAgainByOneDeadline runs, in a synctest bubble, a producer
// of c with a 10 s DeliveryTimeout and manual partitioning: first, then
// record a to partition, whose look-up c holds (aIn closed as it begins)
// while record b's, begun after it, answers first; then checks that a
// fails with ErrDeliveryTimeout 10 s after its ProduceSync began, and b
// is delivered.
func review39LooksAgainByOneDeadline(t *testing.T, c producer.Client, aIn <-chan struct{}, partition int32, first func(*producer.Producer)) {
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
