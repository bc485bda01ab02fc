package runnel

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestPowerCutTakesReadRecordsUnderSyncNever pins what docs/details.md
// and the log package promise readers of a log that does not fsync before
// acknowledging (SyncPeriodic between flushes, SyncNever): the high
// watermark is the log end, so a consumer reads records that are not
// durable yet, and a power cut may take them, their offsets then going to
// the records appended after it — also above a log start that
// DeleteRecords moved past what was durable (the log is emptied at its
// start, which never comes back down: only the offsets below it are never
// handed out again). The docs said "Nothing a consumer read is cut or
// handed out again" and "so no offset is handed out twice" without that
// limit; under SyncAlways neither happens (TestCrashReadersSee).
func TestPowerCutTakesReadRecordsUnderSyncNever(t *testing.T) {
	for _, deleted := range []bool{false, true} {
		name := "plain"
		if deleted {
			name = "DeleteRecords"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			mem := vfs.NewMem()
			b, err := Open(Config{Dir: "/data", FS: mem, MaintenanceInterval: time.Hour})
			require.NoError(t, err)
			defer b.Close()
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{Sync: log.SyncNever}}))
			_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "a", "b", "c", "d")})
			require.NoError(t, err)
			require.Equal(t, []string{"a", "b", "c", "d"}, fetchT(t, b), "read below the high watermark")
			start := int64(0)
			if deleted {
				start, err = b.DeleteRecords(ctx, "t", 0, 2)
				require.NoError(t, err)
			}

			b2, err := Open(Config{Dir: "/data", FS: mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailDrop}), MaintenanceInterval: time.Hour})
			require.NoError(t, err)
			defer func() { require.NoError(t, b2.Close()) }()
			info, err := b2.DescribeTopic(ctx, "t")
			require.NoError(t, err)
			p := info.Partitions[0]
			require.Equal(t, start, p.LogStartOffset, "the log start never comes back down")
			require.Equal(t, start, p.HighWatermark, "the records read were not durable: the power cut took them")
			resp, err := b2.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "after")})
			require.NoError(t, err)
			require.Equal(t, start, resp.BaseOffset, "an offset a consumer read goes to another record")
		})
	}
}
