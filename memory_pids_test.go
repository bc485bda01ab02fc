package runnel_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// stepClock is a log.Clock that a test moves.
type stepClock struct{ ns atomic.Int64 }

func (c *stepClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// What docs/details.md (`log`) says an idempotent producer id costs a
// partition it wrote to: about 115 bytes of heap with one batch
// remembered and 350 with five (its last 5), until
// producer.id.expiration.ms after its last append, when the maintenance
// forgets it and the memory goes; nothing else bounds the number of ids
// (as in Kafka). On disk, so that the records are not on the heap: 20,000
// ids (10,000 under the race detector, whose every produce is slow: the
// heap's noise, a few hundred KB at most, is still a few tens of bytes an
// id, below the bounds' margins).
func TestProducerIDStateMemory(t *testing.T) {
	ids := 20_000
	if testkit.RaceEnabled {
		ids = 10_000
	}
	for _, tc := range []struct {
		batches int
		bound   int64 // per id
	}{{1, 200}, {5, 512}} {
		ctx := context.Background()
		clock := &stepClock{}
		clock.ns.Store(time.Now().UnixNano())
		b, err := runnel.Open(runnel.Config{Dir: t.TempDir(), Clock: clock, ProducerIDExpiration: time.Hour,
			MaintenanceInterval: time.Hour, TopicDefaults: log.Config{Sync: log.SyncNever}})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}); err != nil {
			t.Fatal(err)
		}
		before := leakcheck.HeapInUse()
		for id := range int64(ids) {
			for seq := range int32(tc.batches) {
				var bl record.Builder
				bl.SetProducer(id, 0, seq)
				bl.Append(clock.Now().UnixMilli(), nil, nil, nil)
				batch, err := bl.Finish(compression.None)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch}); err != nil {
					t.Fatal(err)
				}
			}
		}
		per := (leakcheck.HeapInUse() - before) / int64(ids)
		clock.ns.Add(int64(2 * time.Hour))
		if err := b.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		after := (leakcheck.HeapInUse() - before) / int64(ids)
		t.Logf("%d ids of %d batches: %d B of heap an id; %d B once expired", ids, tc.batches, per, after)
		if per > tc.bound {
			t.Errorf("%d ids of %d batches: %d B of heap an id, more than %d", ids, tc.batches, per, tc.bound)
		}
		if after > per/4 {
			t.Errorf("%d ids of %d batches: %d B of heap an id once they expired, of %d", ids, tc.batches, after, per)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
