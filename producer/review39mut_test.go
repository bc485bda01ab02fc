package producer_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

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
