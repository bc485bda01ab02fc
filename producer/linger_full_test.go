package producer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A Produce waiting for buffer space does not wait for the linger of the
// batches that hold it: while one waits, batches are sent without
// lingering, as Kafka's producer sends its batches once its buffer is
// exhausted (RecordAccumulator.ready: a thread waits for memory) and
// franz-go stops lingering once MaxBufferedRecords is reached. Without
// that the Produce of a record the buffer had no room for waited for the
// whole Linger (an hour here), and failed with its ctx's error once that
// ended first (and so did the records of the lingering batch, sent at
// once then, their ctx ended). Both bounds, with the lingering batches
// on one partition and on several.
func TestProduceWaitingForSpaceEndsTheLinger(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts int
		opts  []producer.Opt
	}{
		{"records", 1, []producer.Opt{producer.MaxBufferedRecords(2)}},
		{"bytes", 1, []producer.Opt{producer.MaxBufferedBytes(60)}},
		{"records, three partitions", 3, []producer.Opt{producer.MaxBufferedRecords(4),
			producer.RecordPartitioner(producer.RoundRobinPartitioner())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", tc.parts))
			p := newProducer(t, b, append(tc.opts, producer.DefaultTopic("t"),
				producer.Linger(time.Hour), producer.DeliveryTimeout(2*time.Hour))...)
			// A hang guard: without the fix the third Produce waits an
			// hour for space.
			ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
			defer cancel()
			in := recs("r", 9)
			out := newOutcome()
			for _, r := range in {
				p.Produce(ctx, r, out.promise())
			}
			// Every Produce got its space: the last batch may still
			// linger.
			require.NoError(t, p.Flush(ctx))
			out.wait()
			for _, r := range in {
				require.NoError(t, out.err(r), "%s", r.Value)
			}
			var got []string
			for part := range int32(tc.parts) {
				got = append(got, values(readRecords(t, b, "t", part))...)
			}
			require.ElementsMatch(t, values(in), got)
			for part := range int32(tc.parts) {
				var want []string
				for _, r := range in {
					if r.Partition == part {
						want = append(want, string(r.Value))
					}
				}
				require.Equal(t, want, values(readRecords(t, b, "t", part)), fmt.Sprint("partition ", part))
			}
		})
	}
}

// The same from several goroutines at once, to several partitions and
// topics, with both bounds small: every Produce gets its space while
// batches linger for an hour, and every record is written, in produce
// order per goroutine and partition.
func TestProduceWaitingForSpaceEndsTheLingerConcurrently(t *testing.T) {
	b := newBroker(t, runneltest.Topic("a", 3), runneltest.Topic("b", 2))
	p := newProducer(t, b, producer.MaxBufferedRecords(5), producer.MaxBufferedBytes(150),
		producer.Linger(time.Hour), producer.DeliveryTimeout(2*time.Hour))
	// A hang guard: a Produce left waiting for the linger fails with it.
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	const goroutines = 4
	perG := 300
	if testing.Short() {
		perG = 100
	}
	outs := make([]*outcome, goroutines)
	in := make([][]*record.Record, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := newOutcome()
			outs[g] = out
			for i := range perG {
				topic := []string{"a", "b"}[i%2]
				r := &record.Record{Topic: topic, Key: []byte(fmt.Sprint(g, i%3)), Value: []byte(fmt.Sprintf("%d-%d", g, i))}
				in[g] = append(in[g], r)
				p.Produce(ctx, r, out.promise())
			}
		}()
	}
	wg.Wait() // every Produce got its space, none waited for an hour
	require.NoError(t, p.Flush(ctx))
	for g := range goroutines {
		outs[g].wait()
		for _, r := range in[g] {
			require.NoError(t, outs[g].err(r), "%s", r.Value)
		}
	}
	for _, topic := range []string{"a", "b"} {
		n := map[string]int{"a": 3, "b": 2}[topic]
		for part := range int32(n) {
			last := map[int]int{}
			for _, r := range readRecords(t, b, topic, part) {
				var g, i int
				_, err := fmt.Sscanf(string(r.Value), "%d-%d", &g, &i)
				require.NoError(t, err)
				if prev, ok := last[g]; ok {
					require.Greater(t, i, prev, "%s-%d", topic, part)
				}
				last[g] = i
			}
		}
	}
}
