package producer_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestSynctestProduceSyncDoesNotLinger: ProduceSync waits for its
// records, so a batch of its lingering for more would only delay its
// caller: franz-go's kgo un-lingers the partitions ProduceSync produces to
// (v1.20.7, "ProduceSync now automatically un-lingers any partition that
// is produced to"), which the Linger doc cites ("kgo now lingers 10 ms by
// default, but not in ProduceSync"), and the README's NewPublisher pairs
// Linger(5ms) with a ProduceSync per event. On the fake clock: a
// ProduceSync through a producer with a minute's Linger returns at once,
// its record sent at once, with the record lingering before it on its
// partition; a Produce afterwards still lingers. It failed: ProduceSync
// returned a minute later, when the linger ended.
func TestSynctestProduceSyncDoesNotLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		p, err := producer.New(c, producer.Linger(time.Minute))
		require.NoError(t, err)
		defer p.Close()
		a := produceAt(t, p, "a") // lingering, on the partition the ProduceSync writes to
		time.Sleep(time.Millisecond)
		t1 := time.Now()
		r := &record.Record{Topic: "t", Value: []byte("b")}
		require.NoError(t, p.ProduceSync(t.Context(), r))
		require.Equal(t, t1, time.Now(), "ProduceSync waited for the linger")
		require.Equal(t, []time.Time{t1}, c.sent(), "one request, at once, with both records")
		ra := <-a
		require.NoError(t, ra.err)
		require.Equal(t, t1, ra.at)
		require.EqualValues(t, 1, r.Offset)

		// Produce lingers as before.
		t2 := time.Now()
		require.NoError(t, (<-produceAt(t, p, "c")).err)
		require.Equal(t, t2.Add(time.Minute), time.Now())
		require.Equal(t, []time.Time{t1, t2.Add(time.Minute)}, c.sent())
	})
}

// The same for a topic other than the producer's first: the
// ProduceSync's record joins the lingering batch without the topic's
// lock in place (see markHotLocked), not in produce, which does so only
// for the first topic's records (see hotTopic). Its partition is
// un-lingered all the same.
func TestSynctestProduceSyncDoesNotLingerInASecondTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		require.NoError(t, c.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 1}))
		p, err := producer.New(c, producer.Linger(time.Minute))
		require.NoError(t, err)
		defer p.Close()
		first := produceAt(t, p, "first") // to "t", the producer's first topic
		a := make(chan error, 1)
		p.Produce(t.Context(), &record.Record{Topic: "u", Value: []byte("a")}, func(_ *record.Record, err error) { a <- err })
		time.Sleep(time.Millisecond)
		t1 := time.Now()
		require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "u", Value: []byte("b")}))
		require.Equal(t, t1, time.Now(), "ProduceSync waited for the linger")
		require.NoError(t, <-a)
		require.NoError(t, p.Flush(t.Context()))
		require.NoError(t, (<-first).err)
	})
}

// TestProduceSyncAmongLingeringProduces: goroutines call
// ProduceSync while others Produce through the same producer, whose
// Linger is a minute, to the same partitions: every ProduceSync returns
// with its records written (the testkit.HangGuard bound turns a linger into a
// failure), in order with the asynchronous records around them, and a
// Flush delivers the rest.
func TestProduceSyncAmongLingeringProduces(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 3))
	p := newProducer(t, b, producer.DefaultTopic("t"), producer.Linger(time.Minute),
		producer.RecordPartitioner(producer.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	var wg sync.WaitGroup
	var asyncErrs atomic.Int32
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				r := &record.Record{Partition: int32(i % 3), Value: fmt.Appendf(nil, "%d-%d", g, i)}
				if g%2 == 0 {
					if err := p.ProduceSync(ctx, r); err != nil {
						t.Errorf("ProduceSync %s: %v", r.Value, err)
						return
					}
					continue
				}
				p.Produce(context.Background(), r, func(_ *record.Record, err error) {
					if err != nil {
						asyncErrs.Add(1)
					}
				})
			}
		}()
	}
	wg.Wait()
	require.NoError(t, ctx.Err(), "the ProduceSync calls waited for the linger")
	require.NoError(t, p.Flush(ctx))
	require.Zero(t, asyncErrs.Load())
	n := 0
	for part := range int32(3) {
		last := map[string]int{}
		for _, v := range values(readRecords(t, b, "t", part)) {
			var g, i int
			_, err := fmt.Sscanf(v, "%d-%d", &g, &i)
			require.NoError(t, err)
			k := fmt.Sprint(g)
			if prev, ok := last[k]; ok {
				require.Greater(t, i, prev, "partition %d: %s after %d-%d", part, v, g, prev)
			}
			last[k] = i
			n++
		}
	}
	require.Equal(t, 6*40, n)
}

// TestSynctestProduceSyncBatchesItsRecords: a ProduceSync ends the
// linger of its partitions once it has buffered all its records, as kgo's
// does, so that its records of one partition go in one request rather
// than the first alone and the rest after it. It failed on the first fix
// (each record ended its batch's linger as it joined): the partition's
// goroutine, woken by the first record, sent the batch while the others
// were being buffered (two requests or more in every run of 20 rounds).
func TestSynctestProduceSyncBatchesItsRecords(t *testing.T) {
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			c := bubbleBroker(t)
			p, err := producer.New(c, producer.Linger(time.Minute))
			require.NoError(t, err)
			defer p.Close()
			var recs []*record.Record
			for i := range 2000 {
				recs = append(recs, &record.Record{Topic: "t", Value: fmt.Appendf(nil, "v%d", i)})
			}
			t1 := time.Now()
			require.NoError(t, p.ProduceSync(t.Context(), recs...))
			require.Equal(t, t1, time.Now(), "ProduceSync waited for the linger")
			require.Equal(t, []time.Time{t1}, c.sent(), "one request, with the 2,000 records")
			for i, r := range recs {
				require.EqualValues(t, i, r.Offset)
			}
		})
	}
}

// TestSynctestProduceSyncManyPartitions: a ProduceSync whose
// records go to more partitions than syncParts searches before it keeps
// a set (syncPartsScan) ends the linger of each of them once: one
// request per partition, at once, every record written.
func TestSynctestProduceSyncManyPartitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleBroker(t)
		const parts = 40
		require.NoError(t, c.CreateTopic(t.Context(), "many", log.TopicConfig{Partitions: parts}))
		p, err := producer.New(c, producer.Linger(time.Minute), producer.RecordPartitioner(producer.ManualPartitioner()))
		require.NoError(t, err)
		defer p.Close()
		var recs []*record.Record
		for i := range 10 * parts {
			recs = append(recs, &record.Record{Topic: "many", Partition: int32(i % parts), Value: fmt.Appendf(nil, "v%d", i)})
		}
		t1 := time.Now()
		require.NoError(t, p.ProduceSync(t.Context(), recs...))
		require.Equal(t, t1, time.Now(), "ProduceSync waited for the linger")
		require.Len(t, c.sent(), parts, "one request per partition")
		for i, r := range recs {
			require.EqualValues(t, i/parts, r.Offset, "record %d", i)
		}
	})
}

// TestSynctestProduceSyncStickyDoesNotLinger: ProduceSync does not
// wait for Linger (its doc) also when the partitioner moves its record on
// as it would open a new batch (KIP-480: the default
// StickyKeyPartitioner's OnNewBatch, which a topic's first record without
// a key meets, takes it to another partition of a topic of 2): the
// partition the record lands on is un-lingered too. On the fake clock,
// with a minute's Linger, each ProduceSync returns at once.
func TestSynctestProduceSyncStickyDoesNotLinger(t *testing.T) {
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
