package runnel_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// TestNegativeMeansZeroReachesTheLogs: a topic's DeleteRetentionTime and
// MinCleanableDirtyRatio of -1 ask for 0 (log.Config: "negative means
// zero"), and DescribeTopic says 0, but the broker filled in the
// defaults (turning -1 into 0) and the log then took those zeros for
// "default": its logs ran with delete.retention.ms of a day and a dirty
// ratio of 0.5. Here a Maintain must compact a log whose dirty part is
// well below half of it, and a tombstone must go at the first pass after
// the one that cleaned it, the clock standing still. Found by
// TestRetCompProperty (seed 709291709212: a superseded record left after a
// Maintain with a dirty ratio of 0).
func TestNegativeMeansZeroReachesTheLogs(t *testing.T) {
	ctx := context.Background()
	clock := &rcClock{}
	clock.ms.Store(1_700_000_000_000)
	b, err := runnel.Open(runnel.Config{Clock: clock, MaintenanceInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := log.Config{CleanupPolicy: log.Compact, SegmentBytes: 14, // a segment per batch
		DeleteRetentionTime: -1, MinCleanableDirtyRatio: -1}
	if err := b.CreateTopic(ctx, "c", log.TopicConfig{Partitions: 1, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	info, err := b.DescribeTopic(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config.Config; c.DeleteRetentionTime != 0 || c.MinCleanableDirtyRatio != 0 {
		t.Fatalf("DescribeTopic: DeleteRetentionTime %v, MinCleanableDirtyRatio %v; want 0 and 0", c.DeleteRetentionTime, c.MinCleanableDirtyRatio)
	}
	produce := func(key string, value []byte) {
		t.Helper()
		var bld record.Builder
		bld.Add(&record.Record{Key: []byte(key), Value: value, Timestamp: clock.Now()})
		data, err := bld.AppendTo(nil, compression.None)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Produce(ctx, &api.ProduceRequest{Topic: "c", Acks: api.AcksAll, Batches: data}); err != nil {
			t.Fatal(err)
		}
	}
	keys := func() map[int64]string {
		t.Helper()
		out := map[int64]string{}
		for off, hw := int64(0), int64(1); off < hw; {
			resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "c", Offset: off}}})
			if err != nil || resp.Partitions[0].Err != nil {
				t.Fatalf("Fetch: %v %v", err, resp.Partitions[0].Err)
			}
			hw = resp.Partitions[0].HighWatermark
			for bt, err := range record.Batches(resp.Partitions[0].Records) {
				if err != nil {
					t.Fatal(err)
				}
				for r, err := range bt.Records() {
					if err != nil {
						t.Fatal(err)
					}
					out[r.Offset] = fmt.Sprintf("%s=%s", r.Key, r.Value)
				}
				off = bt.NextOffset()
			}
		}
		return out
	}
	maintain := func() {
		t.Helper()
		if err := b.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		produce(fmt.Sprintf("k%d", i), []byte("v"))
	}
	produce("k0", nil) // offset 10: a tombstone superseding offset 0
	produce("roll", []byte("v"))
	maintain() // k0's record goes; the tombstone gets its delete horizon, now
	if got := keys(); got[0] != "" || got[10] != "k0=" {
		t.Fatalf("after the first Maintain: %v; want offset 0 gone and the tombstone at 10", got)
	}
	produce("k1", []byte("w")) // offset 12: the dirty part, about a tenth of the log
	produce("roll", []byte("v"))
	maintain()
	got := keys()
	if got[1] != "" {
		t.Errorf("after the second Maintain (dirty ratio 0): %v; want offset 1 (k1, superseded at 12) gone", got)
	}
	if got[10] != "" {
		t.Errorf("after the second Maintain (delete.retention.ms 0): %v; want the tombstone at 10 gone", got)
	}
}
