package producer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/producer"
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
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
