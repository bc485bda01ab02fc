package runnel_test

import (
	"bytes"
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
)

// TestFetchedBytesOutliveTheirSegment: the Key and Value of
// records fetched stay as they were (api.FetchedPartition: "the bytes are
// the caller's: they never change") after a compaction swapped their
// segment for a cleaned one of the same name, after retention deleted it,
// and after the topic was deleted and created again with new records in
// files of the same names — in memory, where the bytes are views of the
// log's files, and on disk.
func TestFetchedBytesOutliveTheirSegment(t *testing.T) {
	for _, disk := range []bool{false, true} {
		t.Run(fmt.Sprintf("disk=%v", disk), func(t *testing.T) {
			ctx := context.Background()
			clock := &maintRaceClock{}
			clock.ms.Store(1_700_000_000_000)
			cfg := runnel.Config{Clock: clock, MaintenanceInterval: time.Hour}
			if disk {
				cfg.Dir = t.TempDir()
			}
			b, err := runnel.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			tc := log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact | log.Delete, SegmentBytes: 300,
				MinCleanableDirtyRatio: 0.01, RetentionTime: time.Hour, DeleteRetentionTime: time.Minute, Sync: log.SyncNever}}
			if err := b.CreateTopic(ctx, "t", tc); err != nil {
				t.Fatal(err)
			}
			gen := 0
			produce := func(n int) {
				for i := range n {
					v := fmt.Sprintf("g%d-v%d-%s", gen, i, strings.Repeat("x", 40))
					data := maintRaceEncode([]*maintRaceRec{{id: int64(i), key: []byte(fmt.Sprint(i % 3)), value: []byte(v)}}, -1, 0, clock.ms.Load(), compression.None)
					if _, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: data}); err != nil {
						t.Fatal(err)
					}
				}
			}
			type kept struct {
				r          *record.Record
				key, value []byte
			}
			var ks []kept
			fetchAll := func() {
				for off := int64(0); ; {
					resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Offset: off}}})
					if err != nil || resp.Partitions[0].Err != nil {
						t.Fatal(err, resp.Partitions[0].Err)
					}
					next := off
					for bt, err := range record.Batches(resp.Partitions[0].Records) {
						if err != nil {
							t.Fatal(err)
						}
						for r, err := range bt.Records() {
							if err != nil {
								t.Fatal(err)
							}
							ks = append(ks, kept{r, bytes.Clone(r.Key), bytes.Clone(r.Value)})
						}
						next = bt.NextOffset()
					}
					if next == off {
						return
					}
					off = next
				}
			}
			check := func(when string) {
				t.Helper()
				for _, k := range ks {
					if !bytes.Equal(k.r.Key, k.key) || !bytes.Equal(k.r.Value, k.value) {
						t.Fatalf("%s: record at %d changed: %q=%q, was %q=%q", when, k.r.Offset, k.r.Key, k.r.Value, k.key, k.value)
					}
				}
			}
			produce(30)
			fetchAll()
			clock.ms.Add(time.Second.Milliseconds())
			if err := b.Maintain(ctx); err != nil { // compacts: the same names, cleaned
				t.Fatal(err)
			}
			if n := len(ks); n != 30 {
				t.Fatalf("read %d records", n)
			}
			before := len(ks)
			fetchAll()
			if len(ks)-before >= 30 {
				t.Fatalf("the compaction removed nothing: %d records", len(ks)-before)
			}
			produce(30)
			check("after a compaction")
			fetchAll()
			clock.ms.Add(2 * time.Hour.Milliseconds())
			produce(5)
			if err := b.Maintain(ctx); err != nil { // retention deletes
				t.Fatal(err)
			}
			if lo, err := b.ListOffset(ctx, "t", 0, api.Earliest); err != nil || lo.Offset == 0 {
				t.Fatalf("retention removed nothing: %+v, %v", lo, err)
			}
			check("after retention")
			if err := b.DeleteTopic(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			if err := b.CreateTopic(ctx, "t", tc); err != nil {
				t.Fatal(err)
			}
			gen++
			produce(60)
			check("after the topic was deleted and created again")
			if len(ks) < 60 {
				t.Fatalf("kept %d records", len(ks))
			}
		})
	}
}
