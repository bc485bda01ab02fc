package producer_test

import (
	"context"
	"errors"
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

// fullProducer returns a producer of topic "t" (its DefaultTopic) whose
// buffer of one record is full: that record's request is held at the
// gate it returns. waiting receives a value each time a Produce begins
// to wait for buffer space.
func fullProducer(t *testing.T, b *runnel.Broker) (p *producer.Producer, g *gate, waiting chan struct{}) {
	t.Helper()
	c, g := gatedClient(b)
	p = newProducer(t, c, producer.MaxBufferedRecords(1), producer.DefaultTopic("t"))
	waiting = make(chan struct{}, 10)
	producer.SetWaitHook(p, func() { waiting <- struct{}{} })
	p.Produce(testCtx(t), value("held"), nil)
	testkit.Await(t, g.entered, "the held record's request at the gate")
	return p, g, waiting
}

// requireUntouched fails unless r is the bare record unsent() returned:
// no topic, no timestamp, no partition.
func requireUntouched(t *testing.T, r *record.Record) {
	t.Helper()
	require.Equal(t, time.Time{}, r.Timestamp, "a failed Produce stamped the record")
	require.Empty(t, r.Topic, "a failed Produce set the record's topic")
	require.Zero(t, r.Partition)
}

func unsent() *record.Record { return &record.Record{Value: []byte("v")} }

// produceErr produces r with produce and returns the error its promise
// got, which it must get before produce returns.
func produceErr(t *testing.T, produce func(context.Context, *record.Record, func(*record.Record, error)), ctx context.Context, r *record.Record) error {
	t.Helper()
	ran := false
	var got error
	produce(ctx, r, func(pr *record.Record, err error) {
		require.Same(t, r, pr)
		ran, got = true, err
	})
	require.True(t, ran, "the promise of a record refused at once runs before Produce returns")
	require.Error(t, got)
	return got
}

// A record that fails before it is buffered is left as it was: Produce
// sets neither its timestamp nor its topic (from DefaultTopic), so that
// produced again it is stamped with the time of that Produce. Each way
// to fail before buffering, including waiting for space that never came.
func TestFailedProduceLeavesRecordAsItWas(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p, g, waiting := fullProducer(t, b)
	ctx := testCtx(t)

	r := unsent()
	require.ErrorIs(t, produceErr(t, p.TryProduce, ctx, r), producer.ErrMaxBuffered)
	requireUntouched(t, r)

	// ctx ends while Produce waits for space.
	cctx, cancel := context.WithCancel(ctx)
	waited := unsent()
	errc := make(chan error, 1)
	go p.Produce(cctx, waited, func(_ *record.Record, err error) { errc <- err })
	testkit.AwaitHold(t, waiting, errc, "the Produce waiting for space")
	cancel()
	require.ErrorIs(t, testkit.Await(t, errc, "the record's promise"), context.Canceled)
	requireUntouched(t, waited)

	// Produced again, it is stamped then.
	g.release()
	before := time.Now()
	require.NoError(t, p.ProduceSync(ctx, waited))
	require.Equal(t, "t", waited.Topic)
	// To the millisecond, Kafka's precision: the producer's clock (see
	// wallClock) runs on the monotonic clock between readings of the wall
	// clock, which under Wine drift a few microseconds apart.
	require.False(t, waited.Timestamp.Before(before.Add(-time.Millisecond)), "stamped by the Produce that buffered it")

	// A partition out of range is found once space is reserved.
	bad := newProducer(t, b, producer.DefaultTopic("t"), producer.BatchMaxBytes(200),
		producer.RecordPartitioner(producer.PartitionerFunc(func(*record.Record, int) int32 { return 7 })))
	r = unsent()
	require.ErrorIs(t, produceErr(t, bad.Produce, ctx, r), producer.ErrInvalidPartition)
	requireUntouched(t, r)
	// A record with a topic of its own and a zero Timestamp in a Location
	// of its own: Produce stamps the Timestamp (it is zero), and gives
	// back both as they were, the Location too.
	zero := time.Time{}.In(time.FixedZone("UTC+1", 3600))
	r = &record.Record{Topic: "t", Value: []byte("v"), Timestamp: zero}
	require.ErrorIs(t, produceErr(t, bad.Produce, ctx, r), producer.ErrInvalidPartition)
	require.Equal(t, "t", r.Topic, "a failed Produce changed the record's own topic")
	require.Equal(t, zero, r.Timestamp, "a failed Produce changed the record's zero timestamp")
	require.Equal(t, "UTC+1", r.Timestamp.Location().String(), "a failed Produce changed the Location of the record's zero timestamp")
	r = &record.Record{Value: make([]byte, 300)}
	require.ErrorIs(t, produceErr(t, bad.Produce, ctx, r), producer.ErrRecordTooLarge)
	requireUntouched(t, r)
	noDefault := newProducer(t, b)
	r = unsent()
	require.ErrorIs(t, produceErr(t, noDefault.Produce, ctx, r), producer.ErrNoTopic)
	requireUntouched(t, r)
	require.Zero(t, bad.BufferedRecords(), "the space of a record refused after its reservation is freed")
}

// Close wakes a Produce waiting for space with ErrClosed, and leaves its
// record as it was; so does every Produce after Close.
func TestProduceClosedWhileWaitingLeavesRecordAsItWas(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p, _, waiting := fullProducer(t, b)
	ctx := testCtx(t)
	r := unsent()
	errc := make(chan error, 1)
	go p.Produce(ctx, r, func(_ *record.Record, err error) { errc <- err })
	testkit.AwaitHold(t, waiting, errc, "the Produce waiting for space")
	require.NoError(t, p.Close())
	require.ErrorIs(t, testkit.Await(t, errc, "the record's promise"), producer.ErrClosed)
	requireUntouched(t, r)

	r = unsent()
	require.ErrorIs(t, produceErr(t, p.Produce, ctx, r), producer.ErrClosed)
	requireUntouched(t, r)
}

// A record that was buffered keeps the timestamp it was given, whatever
// its outcome, as with franz-go's kgo: produced again after a failure,
// it is sent with that first timestamp, unless the caller zeroes it.
func TestBufferedRecordKeepsItsTimestamp(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	refused := errors.New("refused")
	c.setHook(func(_ context.Context, call int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		if call == 0 {
			return api.ProduceResponse{}, refused // not retriable
		}
		return next()
	})
	p := newProducer(t, c, producer.DefaultTopic("t"))
	ctx := testCtx(t)
	r := unsent()
	require.ErrorIs(t, p.ProduceSync(ctx, r), refused)
	require.False(t, r.Timestamp.IsZero(), "stamped when buffered")
	first := r.Timestamp
	require.NoError(t, p.ProduceSync(ctx, r))
	require.Equal(t, first, r.Timestamp)
	got := readRecords(t, b, "t", 0)
	require.Len(t, got, 1)
	require.Equal(t, first.UnixMilli(), got[0].Timestamp.UnixMilli())
}

// Flush waits for the record of a Produce that waits for buffer space
// when Flush is called, as for those buffered.
func TestFlushWaitsForABlockedProduce(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p, g, waiting := fullProducer(t, b)
	ctx := testCtx(t)
	r := unsent()
	done := make(chan error, 1)
	go p.Produce(ctx, r, func(_ *record.Record, err error) { done <- err })
	testkit.AwaitHold(t, waiting, done, "the Produce waiting for space")
	g.release()
	require.NoError(t, p.Flush(ctx))
	select {
	case err := <-done:
		require.NoError(t, err)
	default:
		t.Fatal("Flush returned before the record of a Produce waiting for space was done")
	}
	require.Equal(t, []string{"held", "v"}, values(readRecords(t, b, "t", 0)))
}

// ProduceSync's error for a record left without a topic (it failed
// before it was buffered, for DefaultTopic) names no topic-partition.
func TestRecordErrorOfARecordWithoutTopic(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.DefaultTopic("t"))
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.ProduceSync(ended, unsent())
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, "runnel/producer: record not sent: context canceled", err.Error())
	r := &record.Record{Topic: "t", Partition: 0}
	require.Equal(t, "runnel/producer: record for t-0: boom", (&producer.RecordError{Record: r, Err: errors.New("boom")}).Error())

	// An error that already says it is the record's is not prefixed
	// again (it read "runnel/producer: record: runnel/producer: record
	// has no topic ...").
	p2 := newProducer(t, b)
	err = p2.ProduceSync(context.Background(), &record.Record{Value: []byte("v")})
	require.ErrorIs(t, err, producer.ErrNoTopic)
	require.Equal(t, producer.ErrNoTopic.Error(), err.Error())
}
