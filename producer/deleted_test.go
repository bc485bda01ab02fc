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
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A topic deleted after the producer wrote to it: a record produced to it
// fails with the broker's ErrUnknownTopicOrPartition (runnel.ErrUnknownTopic)
// once a look-up confirms the topic is gone, not at the delivery timeout
// (2 minutes by default, longer than this test may take); a record
// produced afterwards fails at once, as for a topic never created; and
// once the topic is created again, records go to it.
func TestDeletedTopicFailsItsRecords(t *testing.T) {
	// AcksNone too: it retries nothing, but a batch refused for an
	// unknown topic makes it look the topic up all the same.
	for _, c := range []struct {
		inFlight int
		acks     api.Acks
	}{{1, producer.AcksAll}, {5, producer.AcksAll}, {5, producer.AcksNone}} {
		t.Run(fmt.Sprintf("MaxInFlight=%d/acks=%d", c.inFlight, c.acks), func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 2))
			p := newProducer(t, b, producer.DefaultTopic("t"), producer.MaxInFlight(c.inFlight), producer.Acks(c.acks))
			ctx := testCtx(t)
			require.NoError(t, p.ProduceSync(ctx, value("before"), value("before")))
			require.NoError(t, b.DeleteTopic(ctx, "t"))

			// Bounded below the test's ctx, so that a producer that waits
			// for the delivery timeout fails here, not at the test's end.
			sctx, cancel := context.WithTimeout(ctx, testkit.HangGuard)
			defer cancel()
			err := p.ProduceSync(sctx, value("x"), value("y"), value("z"))
			require.ErrorIs(t, err, api.ErrUnknownTopicOrPartition)
			require.ErrorIs(t, err, runnel.ErrUnknownTopic)
			require.NotErrorIs(t, err, producer.ErrDeliveryTimeout)
			require.NotErrorIs(t, err, context.DeadlineExceeded)
			require.NoError(t, p.Flush(ctx))
			require.Zero(t, p.BufferedRecords())

			// Known gone: the next record fails before Produce returns.
			var got error
			ran := false
			p.Produce(ctx, value("later"), func(_ *record.Record, err error) { got, ran = err, true })
			require.True(t, ran, "failed at once")
			require.ErrorIs(t, got, api.ErrUnknownTopicOrPartition)

			// Created again: found again.
			runneltest.CreateTopic(t, b, "t", log.TopicConfig{Partitions: 3})
			r := value("after")
			require.NoError(t, p.ProduceSync(ctx, r))
			require.Equal(t, []string{"after"}, values(readRecords(t, b, "t", r.Partition)))
		})
	}
}

// DeleteTopic while goroutines produce to the topic, through a real
// in-memory broker with its default fsync policy: every record's promise
// runs with nil or the broker's unknown-topic error (none waits for the
// delivery timeout, so Flush returns well within the test's ctx), and
// the records acknowledged before the deletion were all there to delete.
func TestDeleteTopicWhileProducing(t *testing.T) {
	if testing.Short() {
		t.Skip("produces for a while")
	}
	for _, inFlight := range []int{1, 5} {
		t.Run(fmt.Sprint("MaxInFlight=", inFlight), func(t *testing.T) {
			b, err := runnel.Open(runnel.Config{})
			require.NoError(t, err)
			defer b.Close()
			ctx := testCtx(t)
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3}))
			p, err := producer.New(b, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight))
			require.NoError(t, err)
			defer p.Close()

			var ok, unknown atomic.Int64
			var mu sync.Mutex
			var other []error
			promise := func(_ *record.Record, err error) {
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, api.ErrUnknownTopicOrPartition):
					unknown.Add(1)
				default:
					mu.Lock()
					other = append(other, err)
					mu.Unlock()
				}
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						p.Produce(ctx, value(fmt.Sprintf("%d-%d", w, i)), promise)
						if i%50 == 0 {
							time.Sleep(time.Millisecond)
						}
					}
				}()
			}
			until(t, ctx, func() bool { return ok.Load() >= 200 }, "records delivered")
			require.NoError(t, b.DeleteTopic(ctx, "t"))
			until(t, ctx, func() bool { return unknown.Load() >= 100 }, "records failed as unknown")
			close(stop)
			wg.Wait()
			require.NoError(t, p.Flush(ctx), "no record waits for the delivery timeout")
			require.Empty(t, other)
			require.Zero(t, p.BufferedRecords())
		})
	}
}

// until polls cond until it holds, failing the test if ctx ends first.
func until(t *testing.T, ctx context.Context, cond func() bool, what string) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("waited in vain for", what)
		case <-time.After(time.Millisecond):
		}
	}
}

// goneClient is a Client in front of a real broker whose topic "t" can be
// made to look deleted: Produce and Partitions answer
// ErrUnknownTopicOrPartition for it while gone is set, and Produce also
// when produceGone is set (a broker that has not caught up).
type goneClient struct {
	*hookClient
	gone        atomic.Bool
	produceGone atomic.Int32 // answer the next n produce requests unknown
	lookups     atomic.Int32
	lookupErr   atomic.Pointer[error] // Partitions fails with it, if set
}

func (c *goneClient) Partitions(ctx context.Context, topic string) (int, error) {
	c.lookups.Add(1)
	if e := c.lookupErr.Load(); e != nil {
		return 0, *e
	}
	if c.gone.Load() {
		return 0, fmt.Errorf("%w: %s", api.ErrUnknownTopicOrPartition, topic)
	}
	return c.hookClient.Partitions(ctx, topic)
}

func newGoneClient(b *runnel.Broker) *goneClient {
	c := &goneClient{hookClient: &hookClient{b: b}}
	c.setHook(func(_ context.Context, _ int, req *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		if c.gone.Load() {
			return api.ProduceResponse{}, fmt.Errorf("%w: %s-%d", api.ErrUnknownTopicOrPartition, req.Topic, req.Partition)
		}
		if c.produceGone.Add(-1) >= 0 {
			return api.ProduceResponse{}, fmt.Errorf("%w: %s-%d (not yet)", api.ErrUnknownTopicOrPartition, req.Topic, req.Partition)
		}
		return next()
	})
	return c
}

// With a fake: the broker refuses a batch as unknown and the look-up that
// follows confirms it: the batch fails with the broker's error after one
// request, and so do the records buffered for the partition behind it.
func TestUnknownTopicConfirmedFailsTheBatchAndTheBuffered(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newGoneClient(b)
	g := newGate()
	p := newProducer(t, c, producer.DefaultTopic("t"))
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, value("before")))

	// Hold the next request, buffer more behind it, then delete.
	c.setHook(func(ctx context.Context, call int, req *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		if _, err := g.hook(ctx, call, req, func() (api.ProduceResponse, error) { return api.ProduceResponse{}, nil }); err != nil {
			return api.ProduceResponse{}, err
		}
		if c.gone.Load() {
			return api.ProduceResponse{}, fmt.Errorf("%w: %s-%d", api.ErrUnknownTopicOrPartition, req.Topic, req.Partition)
		}
		return next()
	})
	o := newOrder()
	p.Produce(ctx, value("a"), o.promise())
	testkit.Await(t, g.entered, "a's request at the gate")
	p.Produce(ctx, value("b"), o.promise())
	p.Produce(ctx, value("c"), o.promise())
	c.gone.Store(true)
	g.release()
	waitOrFatal(t, ctx, o, "the records of a deleted topic wait for the delivery timeout")
	require.Equal(t, []string{"a", "b", "c"}, o.seen)
	for _, v := range o.seen {
		require.ErrorIs(t, o.errs[v], api.ErrUnknownTopicOrPartition, v)
	}
	require.Len(t, c.requests(), 2, "before, then a; b and c failed with a")
	require.NoError(t, p.Flush(ctx))
	require.Zero(t, p.BufferedRecords())
}

// The transient cases are retried: a produce refused as unknown while the
// look-up finds the topic (a broker that has not caught up), and a
// look-up that fails otherwise.
func TestUnknownTopicNotConfirmedIsRetried(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := newGoneClient(b)
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond))
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, value("first")))

	c.produceGone.Store(3)
	require.NoError(t, p.ProduceSync(ctx, value("a")))
	require.Len(t, c.requests(), 5, "first, then a three times refused and once taken")

	// The topic looks gone to produce, and the look-up cannot tell.
	busy := fmt.Errorf("look-up failed: %w", api.ErrRequestTimedOut)
	c.lookupErr.Store(&busy)
	c.produceGone.Store(3)
	require.NoError(t, p.ProduceSync(ctx, value("b")))
	require.Equal(t, []string{"first", "a", "b"}, values(readRecords(t, b, "t", 0)))
}

// A record produced after the producer found a deleted topic created
// again is delivered to it, even when it joins the partition's buffer
// while the producer is still failing the records buffered before (those
// of the look-up that found the topic gone): the promise of the refused
// batch creates the topic again and produces a record, which the
// producer's own look-up finds back. Before the fix, the failing of
// "every record then buffered" took it too, at the look-up's
// ErrUnknownTopicOrPartition (found by TestLifecycleStress in package
// runnel: a record produced after CreateTopic returned failed with
// ErrUnknownTopic).
func TestRecordAfterTopicIsBackIsNotAbandoned(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 2))
	p := newProducer(t, b, producer.DefaultTopic("t"), producer.RecordPartitioner(producer.ManualPartitioner()))
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Partition: 1, Value: []byte("before")}))
	require.NoError(t, b.DeleteTopic(ctx, "t"))

	var oldErr, newErr, createErr error
	done := make(chan struct{})
	fresh := &record.Record{Partition: 1, Value: []byte("new")}
	p.Produce(ctx, &record.Record{Partition: 1, Value: []byte("old")}, func(_ *record.Record, err error) {
		oldErr = err
		createErr = b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2})
		p.TryProduce(ctx, fresh, func(_ *record.Record, err error) { newErr = err; close(done) })
	})
	require.NoError(t, p.Flush(ctx))
	testkit.Await(t, done, "the fresh record's promise")
	require.ErrorIs(t, oldErr, runnel.ErrUnknownTopic)
	require.NoError(t, createErr)
	require.NoError(t, newErr, "produced after the producer found the topic back")
	require.Equal(t, []string{"new"}, values(readRecords(t, b, "t", 1)))
}

// heldLookUpClient is a broker whose next Partitions call, once armed,
// asks the broker and then holds the broker's answer until release is
// closed: answered is closed once the broker has answered. The topic can
// be created again between the broker's answer and the producer's
// reading of it.
type heldLookUpClient struct {
	*runnel.Broker
	armed    atomic.Bool
	answered chan struct{}
	release  chan struct{}
}

func (c *heldLookUpClient) Partitions(ctx context.Context, topic string) (int, error) {
	n, err := c.Broker.Partitions(ctx, topic)
	if c.armed.CompareAndSwap(true, false) {
		close(c.answered)
		select {
		case <-c.release:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return n, err
}

// A record produced after CreateTopic returned is delivered to the new
// topic, even when it joins the partition's buffer while the look-up
// that confirms the old topic gone is under way: the broker answered
// "unknown" before the topic was created again, and the producer reads
// that answer after the record was buffered. Only the records buffered
// before the look-up fail with the refused batch. Before the fix, the
// records buffered when the producer read the answer failed with it,
// this one too (found by TestLifecycleStress in package runnel: "produced
// to partition 0 after the topic was created ..., and not deleted since,
// failed: unknown topic or partition").
func TestRecordAfterCreateDuringGoneLookUpIsNotAbandoned(t *testing.T) {
	for _, inFlight := range []int{1, 5} {
		t.Run(fmt.Sprint("MaxInFlight=", inFlight), func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			c := &heldLookUpClient{Broker: b, answered: make(chan struct{}), release: make(chan struct{})}
			p := newProducer(t, c, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight))
			ctx := testCtx(t)
			require.NoError(t, p.ProduceSync(ctx, value("before")))
			require.NoError(t, b.DeleteTopic(ctx, "t"))

			// "old" is refused, and the look-up that follows is answered
			// "unknown" and held.
			c.armed.Store(true)
			o := newOrder()
			p.Produce(ctx, value("old"), o.promise())
			select {
			case <-c.answered:
			case <-ctx.Done():
				t.Fatal("no look-up after the refusal")
			}
			runneltest.CreateTopic(t, b, "t", log.TopicConfig{Partitions: 1})
			p.Produce(ctx, value("new"), o.promise())
			close(c.release)
			waitOrFatal(t, ctx, o, "the promises did not run")
			require.Equal(t, []string{"old", "new"}, o.seen)
			require.ErrorIs(t, o.errs["old"], runnel.ErrUnknownTopic)
			require.NoError(t, o.errs["new"], "produced after CreateTopic returned")
			require.Equal(t, []string{"new"}, values(readRecords(t, b, "t", 0)))
		})
	}
}

// TestTopicCreatedAgainWithMorePartitionsIsNotSeen pins the Producer
// doc's word on a topic deleted and created again between two batches
// with more partitions: no batch is refused, so the producer keeps the
// count it knew, and its keyed records land where that count puts them,
// until MetadataMaxAge's look-up, from which they land where the new
// count does. In a synctest bubble: on the wall clock, the records of the
// first part could outlast a 50 ms MetadataMaxAge on a loaded machine.
func TestTopicCreatedAgainWithMorePartitionsIsNotSeen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const age = 50 * time.Millisecond
		b := newBroker(t, runneltest.Topic("t", 2))
		p := newProducer(t, b, producer.DefaultTopic("t"), producer.MetadataMaxAge(age))
		ctx := t.Context()
		keyed := func(i int) *record.Record { return &record.Record{Key: fmt.Appendf(nil, "k%d", i)} }
		require.NoError(t, p.ProduceSync(ctx, keyed(0)))
		require.NoError(t, b.DeleteTopic(ctx, "t"))
		runneltest.CreateTopic(t, b, "t", log.TopicConfig{Partitions: 8})
		t0 := time.Now()
		stale := 0
		for i := range 20 {
			r := keyed(i)
			require.NoError(t, p.ProduceSync(ctx, r))
			require.Equal(t, producer.KeyPartition(r.Key, 2), r.Partition, "key %s", r.Key)
			if r.Partition != producer.KeyPartition(r.Key, 8) {
				stale++
			}
		}
		require.Less(t, time.Since(t0), age, "the bubble's clock moved: the first part is not before MetadataMaxAge")
		require.Positive(t, stale, "no key whose partition differs between 2 and 8: the test shows nothing")
		time.Sleep(age)
		for try := 0; ; try++ {
			moved := true
			for i := range 20 {
				r := keyed(i)
				require.NoError(t, p.ProduceSync(ctx, r))
				moved = moved && r.Partition == producer.KeyPartition(r.Key, 8)
			}
			if moved {
				break
			}
			require.Less(t, try, 100, "the new count never followed")
			time.Sleep(age / 10)
		}
	})
}
