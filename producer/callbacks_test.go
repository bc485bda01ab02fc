package producer_test

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// panicky is a partitioner that panics for records whose key is "boom"
// (in Partition, or in OnNewBatch when onNew is set), and otherwise sends
// every record to partition 0.
type panicky struct{ onNew bool }

func (p panicky) ForTopic(string) producer.TopicPartitioner {
	if p.onNew {
		return &panickyNew{}
	}
	return p
}

func (panicky) Partition(r *record.Record, _ int) int32 {
	if string(r.Key) == "boom" {
		panic("partitioner: boom")
	}
	return 0
}

// panickyNew panics in OnNewBatch when the record that starts a batch
// has the key "boom".
type panickyNew struct{ last *record.Record }

func (p *panickyNew) Partition(r *record.Record, _ int) int32 {
	p.last = r
	return 0
}

func (p *panickyNew) OnNewBatch(int32) {
	if string(p.last.Key) == "boom" {
		panic("partitioner: boom in OnNewBatch")
	}
}

// A partitioner (user code, called under a lock of its topic) that
// panics: the panic reaches Produce's caller, as any panic of a function
// it calls, and the record is neither buffered nor its promise run; but
// the producer must stay usable — the topic's lock released, the
// record's buffer space freed — so that a caller that recovers (an HTTP
// server recovers a handler's panic) can go on producing, and Flush and
// Close do not wait for a record that was never buffered. Before the
// fix, the topic's lock stayed held: every later Produce to the topic
// hung, deaf to its ctx, and so did Flush, for the space never freed.
func TestPanickingPartitionerLeavesTheProducerUsable(t *testing.T) {
	for _, onNew := range []bool{false, true} {
		name := map[bool]string{false: "Partition", true: "OnNewBatch"}[onNew]
		t.Run(name, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			p := newProducer(t, b, producer.DefaultTopic("t"), producer.RecordPartitioner(panicky{onNew: onNew}))
			ctx := testCtx(t)
			// A first record, so that the topic is known and has a batch.
			require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("first")}))

			bad := &record.Record{Key: []byte("boom"), Value: []byte("bad")}
			ran := false
			require.Panics(t, func() {
				p.Produce(ctx, bad, func(*record.Record, error) { ran = true })
			})
			require.False(t, ran, "the promise of a record whose partitioner panicked ran")
			require.Equal(t, "", bad.Topic, "a record that was not buffered is left as it was")
			require.True(t, bad.Timestamp.IsZero(), "a record that was not buffered is left as it was")

			done := make(chan error, 1)
			go func() {
				done <- p.ProduceSync(ctx, &record.Record{Value: []byte("after")})
			}()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-ctx.Done():
				t.Fatal("a Produce after the partitioner's panic hangs")
			}
			// One with a topic of its own, and a zero Timestamp in a
			// Location of its own: both are given back as they were.
			zero := time.Time{}.In(time.FixedZone("UTC+1", 3600))
			own := &record.Record{Topic: "t", Key: []byte("boom"), Value: []byte("own"), Timestamp: zero}
			require.Panics(t, func() { p.Produce(ctx, own, nil) })
			require.Equal(t, "t", own.Topic, "a record that was not buffered is left as it was")
			require.Equal(t, "UTC+1", own.Timestamp.Location().String(), "a record that was not buffered is left as it was")
			require.Equal(t, zero, own.Timestamp, "a record that was not buffered is left as it was")
			require.NoError(t, p.Flush(ctx), "Flush waits for the record that was never buffered")
			require.Zero(t, p.BufferedRecords(), "the record's buffer space was not freed")
			require.Equal(t, []string{"first", "after"}, values(readRecords(t, b, "t", 0)))
		})
	}
}

// What a promise may do, as Producer documents it: start Close on a
// goroutine of its own (Close itself would wait for the promise), call
// Flush with a ctx that ends (Flush would wait for the promise's own
// batch), and call TryProduce (Produce could wait for buffer space that
// only the promise's return frees). None of them may hold up the
// producer, and none leaves a goroutine behind (TestMain's goleak).
func TestWhatAPromiseMayDo(t *testing.T) {
	t.Run("go Close", func(t *testing.T) {
		b := newBroker(t, runneltest.Topic("t", 1))
		p, err := producer.New(b, producer.DefaultTopic("t"))
		require.NoError(t, err)
		ctx := testCtx(t)
		closed := make(chan struct{})
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("a")}))
		p.Produce(ctx, &record.Record{Value: []byte("b")}, func(_ *record.Record, err error) {
			if err != nil {
				t.Errorf("b: %v", err)
			}
			go func() {
				if err := p.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				close(closed)
			}()
		})
		select {
		case <-closed:
		case <-ctx.Done():
			t.Fatal("a Close started by a promise does not end")
		}
		require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Value: []byte("c")}), producer.ErrClosed)
		require.Equal(t, []string{"a", "b"}, values(readRecords(t, b, "t", 0)))
	})
	t.Run("Flush with a deadline", func(t *testing.T) {
		b := newBroker(t, runneltest.Topic("t", 1))
		p := newProducer(t, b, producer.DefaultTopic("t"))
		ctx := testCtx(t)
		flushed := make(chan error, 1)
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("a")}))
		p.Produce(ctx, &record.Record{Value: []byte("b")}, func(*record.Record, error) {
			fctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			defer cancel()
			flushed <- p.Flush(fctx)
		})
		require.ErrorIs(t, testkit.Await(t, flushed, "the Flush in the promise"), context.DeadlineExceeded)
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("c")}), "the producer goes on")
		require.NoError(t, p.Flush(ctx))
		require.Equal(t, []string{"a", "b", "c"}, values(readRecords(t, b, "t", 0)))
	})
	t.Run("TryProduce with a full buffer", func(t *testing.T) {
		b := newBroker(t, runneltest.Topic("t", 1))
		p := newProducer(t, b, producer.DefaultTopic("t"), producer.MaxBufferedRecords(1))
		ctx := testCtx(t)
		tried := make(chan error, 1)
		p.Produce(ctx, &record.Record{Value: []byte("a")}, func(*record.Record, error) {
			// a takes the buffer's one place until this promise returns.
			p.TryProduce(ctx, &record.Record{Value: []byte("b")}, func(_ *record.Record, err error) { tried <- err })
		})
		require.ErrorIs(t, testkit.Await(t, tried, "the TryProduce's promise"), producer.ErrMaxBuffered)
		require.NoError(t, p.Flush(ctx))
		require.Equal(t, []string{"a"}, values(readRecords(t, b, "t", 0)))
	})
}

// forTopicPanics is a partitioner whose ForTopic panics for the topic
// "boom".
type forTopicPanics struct{}

func (forTopicPanics) ForTopic(topic string) producer.TopicPartitioner {
	if topic == "boom" {
		panic("ForTopic: boom")
	}
	return producer.ManualPartitioner().ForTopic(topic)
}

// A Partitioner whose ForTopic panics: the panic reaches Produce's
// caller, the record is left as it was, and the producer goes on (the
// lock ForTopic runs under is released: other topics are looked up).
func TestPanickingForTopicLeavesTheProducerUsable(t *testing.T) {
	b := newBroker(t, runneltest.Topic("boom", 1), runneltest.Topic("ok", 1))
	p := newProducer(t, b, producer.RecordPartitioner(forTopicPanics{}))
	ctx := testCtx(t)
	bad := &record.Record{Topic: "boom", Value: []byte("bad")}
	ran := false
	require.Panics(t, func() { p.Produce(ctx, bad, func(*record.Record, error) { ran = true }) })
	require.False(t, ran)
	require.True(t, bad.Timestamp.IsZero())
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "ok", Value: []byte("v")}))
	require.NoError(t, p.Flush(ctx))
	require.Zero(t, p.BufferedRecords())
}

// A record that fails before it is buffered has its promise run on the
// caller's goroutine (an unknown topic here), after it took buffer
// space: a promise that panics there must not keep that space, or every
// later Flush would wait for it for ever.
func TestPanickingPromiseOnTheCallersGoroutineFreesItsSpace(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.DefaultTopic("t"))
	ctx := testCtx(t)
	r := &record.Record{Topic: "nope", Value: []byte("v")}
	require.Panics(t, func() {
		p.Produce(ctx, r, func(_ *record.Record, err error) {
			require.ErrorIs(t, err, api.ErrUnknownTopicOrPartition)
			panic("promise: boom")
		})
	})
	require.Equal(t, "nope", r.Topic)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("after")}))
	require.NoError(t, p.Flush(ctx), "Flush waits for the space the failed record took")
	require.Zero(t, p.BufferedRecords())
}
