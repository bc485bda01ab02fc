package producer_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestNewBadOptions: New refuses a nil Client and every option out of
// range with ErrInvalidOption, and starts nothing.
func TestNewBadOptions(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	var nilBroker *runnel.Broker
	for _, tc := range []struct {
		name string
		c    producer.Client
		opts []producer.Opt
	}{
		{"nil Client", nil, nil},
		{"nil *runnel.Broker", nilBroker, nil},
		{"Acks 2", b, []producer.Opt{producer.Acks(2)}},
		{"Acks MinInt16", b, []producer.Opt{producer.Acks(math.MinInt16)}},
		{"BatchMaxBytes 0", b, []producer.Opt{producer.BatchMaxBytes(0)}},
		{"BatchMaxBytes negative", b, []producer.Opt{producer.BatchMaxBytes(-1)}},
		{"BatchMaxBytes the header alone", b, []producer.Opt{producer.BatchMaxBytes(record.HeaderSize)}},
		{"BatchMaxBytes past int32", b, []producer.Opt{producer.BatchMaxBytes(testkit.PastInt32(1))}},
		{"Compression unknown", b, []producer.Opt{producer.Compression(compression.Codec(7))}},
		{"Compression negative", b, []producer.Opt{producer.Compression(compression.Codec(-1))}},
		{"DefaultTopic invalid", b, []producer.Opt{producer.DefaultTopic("a b")}},
		{"DefaultTopic too long", b, []producer.Opt{producer.DefaultTopic(strings.Repeat("x", 250))}},
		{"DefaultTopic ..", b, []producer.Opt{producer.DefaultTopic("..")}},
		{"DeliveryTimeout 0", b, []producer.Opt{producer.DeliveryTimeout(0)}},
		{"DeliveryTimeout negative", b, []producer.Opt{producer.DeliveryTimeout(-time.Second)}},
		{"DeliveryTimeout not above Linger", b, []producer.Opt{producer.Linger(time.Second), producer.DeliveryTimeout(time.Second)}},
		{"Linger negative", b, []producer.Opt{producer.Linger(-1)}},
		{"Linger MinInt64", b, []producer.Opt{producer.Linger(math.MinInt64)}},
		{"MaxBufferedBytes negative", b, []producer.Opt{producer.MaxBufferedBytes(-1)}},
		{"MaxBufferedRecords 0", b, []producer.Opt{producer.MaxBufferedRecords(0)}},
		{"MaxBufferedRecords negative", b, []producer.Opt{producer.MaxBufferedRecords(-5)}},
		{"MaxInFlight 0", b, []producer.Opt{producer.MaxInFlight(0)}},
		{"MaxInFlight 6", b, []producer.Opt{producer.MaxInFlight(6)}},
		{"MaxInFlight negative", b, []producer.Opt{producer.MaxInFlight(-1)}},
		{"MetadataMaxAge 0", b, []producer.Opt{producer.MetadataMaxAge(0)}},
		{"MetadataMaxAge negative", b, []producer.Opt{producer.MetadataMaxAge(-time.Minute)}},
		{"RecordPartitioner nil", b, []producer.Opt{producer.RecordPartitioner(nil)}},
		{"RetryBackoff 0", b, []producer.Opt{producer.RetryBackoff(0)}},
		{"RetryBackoff negative", b, []producer.Opt{producer.RetryBackoff(-1)}},
	} {
		var p *producer.Producer
		err := testkit.NoPanic(t, tc.name, func() error {
			var err error
			p, err = producer.New(tc.c, tc.opts...)
			return err
		})
		require.ErrorIs(t, err, producer.ErrInvalidOption, tc.name)
		require.Nil(t, p, tc.name)
	}
	// A nil Opt is skipped, as documented nowhere else: it is no error.
	p, err := producer.New(b, nil, producer.Logger(nil))
	require.NoError(t, err)
	require.NoError(t, p.Close())
}

// TestProduceBadInput: each bad record fails with its documented error,
// given to its promise (before Produce returns where the docs say so) and
// returned by ProduceSync; nothing panics; the records acknowledged before
// are all still there, and the producer and broker still take good
// records.
func TestProduceBadInput(t *testing.T) {
	b := newBroker(t,
		runneltest.TopicConfig("t", log.TopicConfig{Partitions: 2, Config: log.Config{MaxMessageBytes: 1000}}),
		runneltest.Topic("gone", 1),
		runneltest.TopicConfig("compacted", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact}}),
	)
	ctx := testCtx(t)
	require.NoError(t, b.DeleteTopic(ctx, "gone"))
	p := newProducer(t, b, producer.RecordPartitioner(producer.ManualPartitioner()), producer.DeliveryTimeout(20*time.Second))
	acked := recs("acked", 5)
	for _, r := range acked {
		r.Topic = "t"
	}
	require.NoError(t, p.ProduceSync(ctx, acked...))

	done, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		r    *record.Record
		want error
	}{
		{"nil record", ctx, nil, producer.ErrNilRecord},
		{"no topic", ctx, &record.Record{Value: []byte("v")}, producer.ErrNoTopic},
		{"invalid topic", ctx, &record.Record{Topic: "a/b"}, api.ErrInvalidTopic},
		{"topic too long", ctx, &record.Record{Topic: strings.Repeat("x", 250)}, api.ErrInvalidTopic},
		{"unknown topic", ctx, &record.Record{Topic: "nope"}, api.ErrUnknownTopicOrPartition},
		{"deleted topic", ctx, &record.Record{Topic: "gone"}, api.ErrUnknownTopicOrPartition},
		{"negative partition", ctx, &record.Record{Topic: "t", Partition: -1}, producer.ErrInvalidPartition},
		{"MinInt32 partition", ctx, &record.Record{Topic: "t", Partition: math.MinInt32}, producer.ErrInvalidPartition},
		{"partition past the count", ctx, &record.Record{Topic: "t", Partition: 2}, producer.ErrInvalidPartition},
		{"MaxInt32 partition", ctx, &record.Record{Topic: "t", Partition: math.MaxInt32}, producer.ErrInvalidPartition},
		{"timestamp before 1970", ctx, &record.Record{Topic: "t", Timestamp: time.UnixMilli(-1)}, producer.ErrInvalidTimestamp},
		{"timestamp year 1", ctx, &record.Record{Topic: "t", Timestamp: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)}, producer.ErrInvalidTimestamp},
		{"over max.message.bytes", ctx, &record.Record{Topic: "t", Value: make([]byte, 2000)}, producer.ErrRecordTooLarge},
		{"over BatchMaxBytes", ctx, &record.Record{Topic: "t", Value: make([]byte, producer.DefaultBatchMaxBytes)}, producer.ErrRecordTooLarge},
		{"null key on a compacted topic", ctx, &record.Record{Topic: "compacted", Value: []byte("v")}, log.ErrInvalidRecord},
		{"ctx done", done, &record.Record{Topic: "t", Value: []byte("v")}, context.Canceled},
	} {
		// Produce: the promise runs once, with the error.
		got := make(chan error, 2)
		err := testkit.NoPanic(t, tc.name, func() error {
			p.Produce(tc.ctx, tc.r, func(r *record.Record, err error) {
				require.Same(t, tc.r, r, tc.name)
				got <- err
			})
			return nil
		})
		require.NoError(t, err)
		require.NoError(t, p.Flush(ctx))
		require.Len(t, got, 1, tc.name)
		err = testkit.Await(t, got, "the record's promise")
		require.ErrorIs(t, err, tc.want, "%s: Produce", tc.name)
		// TryProduce with a nil promise, which is allowed.
		require.NoError(t, testkit.NoPanic(t, tc.name, func() error { p.TryProduce(tc.ctx, tc.r, nil); return nil }))
		// ProduceSync: a *RecordError naming the record.
		err = testkit.NoPanic(t, tc.name, func() error { return p.ProduceSync(tc.ctx, tc.r) })
		require.ErrorIs(t, err, tc.want, "%s: ProduceSync", tc.name)
		var re *producer.RecordError
		require.ErrorAs(t, err, &re, tc.name)
		require.Same(t, tc.r, re.Record, tc.name)
		require.NotEmpty(t, re.Error())
	}
	require.NoError(t, p.Flush(ctx))
	require.Zero(t, p.BufferedRecords())

	// Nothing lost, nothing added; good records still go.
	more := recs("more", 3)
	for _, r := range more {
		r.Topic = "t"
	}
	require.NoError(t, p.ProduceSync(ctx, more...))
	require.Equal(t, append(values(acked), values(more)...), values(readRecords(t, b, "t", 0)))
	require.Empty(t, readRecords(t, b, "t", 1))
	require.Empty(t, readRecords(t, b, "compacted", 0))
}

// TestProducerCallsAfterClose: after Close every call fails with ErrClosed
// (given to the promise), whatever the record, and Close stays idempotent.
func TestProducerCallsAfterClose(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p, err := producer.New(b, producer.DefaultTopic("t"))
	require.NoError(t, err)
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("before")}))
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	for _, r := range []*record.Record{{Value: []byte("after")}, {Topic: "nope"}, {Topic: "a/b"}} {
		var got error
		p.Produce(ctx, r, func(_ *record.Record, err error) { got = err })
		require.ErrorIs(t, got, producer.ErrClosed)
		got = nil
		p.TryProduce(ctx, r, func(_ *record.Record, err error) { got = err })
		require.ErrorIs(t, got, producer.ErrClosed)
		require.ErrorIs(t, p.ProduceSync(ctx, r), producer.ErrClosed)
	}
	require.ErrorIs(t, p.Flush(ctx), producer.ErrClosed)
	// With no records, and with a ctx that has ended, too: the producer
	// says it is closed first (it returned nil, and ctx's error).
	require.ErrorIs(t, p.ProduceSync(ctx), producer.ErrClosed)
	ended, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, p.ProduceSync(ended), producer.ErrClosed)
	require.ErrorIs(t, p.ProduceSync(ended, &record.Record{Value: []byte("ended")}), producer.ErrClosed)
	require.ErrorIs(t, p.Flush(ended), producer.ErrClosed)
	require.Equal(t, []string{"before"}, values(readRecords(t, b, "t", 0)))
}

// TestProducerOnClosedBroker: a producer whose broker closed first fails its
// records with the broker's ErrClosed, and nothing panics.
func TestProducerOnClosedBroker(t *testing.T) {
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	ctx := testCtx(t)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	p, err := producer.New(b, producer.DefaultTopic("t"), producer.DeliveryTimeout(5*time.Second))
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, b.Close())
	err = p.ProduceSync(ctx, &record.Record{Value: []byte("v")})
	require.ErrorIs(t, err, runnel.ErrClosed)
	require.False(t, errors.Is(err, producer.ErrDeliveryTimeout), "not retried: the broker is closed for good (%v)", err)
}

// TestMalformedRecordFailsAtOnce: a record the broker refuses as
// malformed in a sound batch (Kafka's INVALID_RECORD, not retriable)
// fails its batch at once, not after retries until the delivery timeout
// as a retriable CORRUPT_MESSAGE would.
func TestMalformedRecordFailsAtOnce(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	c.setHook(func(_ context.Context, _ int, req *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		// The last record's header count (its last byte: it has no
		// headers) claims two, with the CRC made to match.
		req.Batches[len(req.Batches)-1] = 4
		record.Batch(req.Batches).UpdateCRC()
		return next()
	})
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond), producer.DeliveryTimeout(10*time.Second))
	err := p.ProduceSync(testCtx(t), &record.Record{Value: []byte("v")})
	require.ErrorIs(t, err, log.ErrInvalidRecord)
	require.False(t, errors.Is(err, producer.ErrDeliveryTimeout), "%v", err)
	require.Len(t, c.requests(), 1, "not retried")
	require.Empty(t, readRecords(t, b, "t", 0))
}

// TestZeroProducer: a Producer not made by New is closed; its methods
// fail with ErrClosed rather than panic or misreport.
func TestZeroProducer(t *testing.T) {
	ctx := testCtx(t)
	for _, p := range []*producer.Producer{new(producer.Producer), {}} {
		r := &record.Record{Topic: "t"}
		var got error
		require.NoError(t, testkit.NoPanic(t, "Produce", func() error {
			p.Produce(ctx, r, func(_ *record.Record, err error) { got = err })
			return nil
		}))
		require.ErrorIs(t, got, producer.ErrClosed)
		require.ErrorIs(t, testkit.NoPanic(t, "ProduceSync", func() error { return p.ProduceSync(ctx, r) }), producer.ErrClosed)
		require.ErrorIs(t, testkit.NoPanic(t, "ProduceSync()", func() error { return p.ProduceSync(ctx) }), producer.ErrClosed)
		require.ErrorIs(t, testkit.NoPanic(t, "Flush", func() error { return p.Flush(ctx) }), producer.ErrClosed)
		require.NoError(t, testkit.NoPanic(t, "Close", func() error { return p.Close() }))
		require.NoError(t, testkit.NoPanic(t, "BufferedRecords", func() error { p.BufferedRecords(); return nil }))
	}
}
