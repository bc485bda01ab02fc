package runnel_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestIdempotentRetryAfterItsBatchWent: an idempotent producer's last batch,
// sent again after retention, DeleteRecords or compaction removed it from
// the log, is answered as a duplicate at its offsets, as Kafka answers it
// (its producer state outlives the batch: KIP-360 keeps it when the log
// start passes it, and the cleaner keeps each producer's last batch), also
// after a config change reopened the log and after a Close and Open.
func TestIdempotentRetryAfterItsBatchWent(t *testing.T) {
	for _, how := range []string{"retention", "deleterecords", "compaction"} {
		for _, then := range []string{"", "reopen", "restart"} {
			t.Run(how+"/"+then, func(t *testing.T) { retryAfterItsBatchWent(t, how, then) })
		}
	}
}

func retryAfterItsBatchWent(t *testing.T, how, then string) {
	ctx := context.Background()
	clock := &maintRaceClock{}
	clock.ms.Store(1_700_000_000_000)
	cfg := runnel.Config{FS: vfs.NewMem(), Dir: "/r", Clock: clock, MaintenanceInterval: time.Hour}
	b, err := runnel.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close() }()
	tc := log.Config{SegmentBytes: 200, RetentionTime: time.Hour, MinCleanableDirtyRatio: 0.01, DeleteRetentionTime: time.Minute}
	if how == "compaction" {
		tc.CleanupPolicy = log.Compact
	}
	if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: tc}); err != nil {
		t.Fatal(err)
	}
	pid, _, err := b.InitProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	produce := func(data []byte) api.ProduceResponse {
		t.Helper()
		resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: data})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	batch := maintRaceEncode([]*maintRaceRec{{id: 1, key: []byte("k"), value: []byte("v1")}, {id: 2, key: []byte("k"), value: []byte("v2" + strings.Repeat("x", 150))}}, pid, 0, clock.ms.Load(), compression.None)
	first := produce(append([]byte(nil), batch...))
	clock.ms.Add(2 * time.Hour.Milliseconds())
	for i := range 30 { // others' records, newer, of the same key
		produce(maintRaceEncode([]*maintRaceRec{{id: int64(10 + i), key: []byte("k"), value: fmt.Appendf(nil, "o%d", i)}}, -1, 0, clock.ms.Load(), compression.None))
	}
	switch how {
	case "retention", "compaction":
		if err := b.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
	case "deleterecords":
		if _, err := b.DeleteRecords(ctx, "t", 0, 10); err != nil {
			t.Fatal(err)
		}
	}
	lo, err := b.ListOffset(ctx, "t", 0, api.Earliest)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Offset: lo.Offset}}})
	if err != nil {
		t.Fatal(err)
	}
	gone := lo.Offset > first.BaseOffset+1
	if how == "compaction" {
		gone = lo.Offset != 0 || firstValue(resp.Partitions[0].Records) != "v1"
	}
	if !gone {
		t.Fatalf("%s left the batch (log start %d)", how, lo.Offset)
	}
	switch then {
	case "reopen":
		if err := b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentBytes = 300 }); err != nil {
			t.Fatal(err)
		}
	case "restart":
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if b, err = runnel.Open(cfg); err != nil {
			t.Fatal(err)
		}
	}
	again, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: append([]byte(nil), batch...)})
	if err != nil || !again.Duplicate || again.BaseOffset != first.BaseOffset {
		t.Fatalf("sent again: %+v, %v; want a duplicate at %d", again, err, first.BaseOffset)
	}
}

func firstValue(data []byte) string {
	for bt := range batchesOf(data) {
		for r, err := range bt.Records() {
			if err == nil {
				return string(r.Value)
			}
		}
	}
	return ""
}

func batchesOf(data []byte) func(func(record.Batch) bool) {
	return func(yield func(record.Batch) bool) {
		for bt, err := range record.Batches(data) {
			if err != nil || !yield(bt) {
				return
			}
		}
	}
}
