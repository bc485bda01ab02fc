package segment

import (
	"testing"

	"github.com/runnel/runnel/vfs"
)

// TestFirstBatchTimestampOfNoTimestamp: a first batch without a timestamp
// (max timestamp -1) is the first batch all the same: FirstBatchTimestamp
// is -1 (the log then rolls by the segment's creation time, and
// max.compaction.lag.ms skips the segment, as in Kafka), not the max
// timestamp of the batch appended after it, as it was in the process that
// appended them (a reopened segment said -1).
func TestFirstBatchTimestampOfNoTimestamp(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		cfg := Config{IndexIntervalBytes: 1}
		s := mustCreate(t, fsys, dir, 0, cfg)
		m := &model{}
		appendBatches(t, s, m, mkBatch(t, 0, []int64{-1, -3}, 10, -1))
		appendBatches(t, s, m, mkBatch(t, 0, []int64{tsBase}, 10, -1), mkBatch(t, 0, []int64{tsBase + 1}, 10, -1))
		if got := s.FirstBatchTimestamp(); got != -1 {
			t.Fatalf("FirstBatchTimestamp = %d, want -1", got)
		}
		checkState(t, s, m)
		mustClose(t, s)
		s, needs := mustOpen(t, fsys, dir, 0, cfg, true)
		if needs {
			t.Fatal("needs recovery after Close")
		}
		appendBatches(t, s, m, mkBatch(t, 0, []int64{tsBase + 2}, 10, -1))
		checkState(t, s, m)
		if _, err := s.Recover(0); err != nil {
			t.Fatal(err)
		}
		checkState(t, s, m)
	})
}
