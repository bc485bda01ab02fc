package segment

import (
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/vfs"
)

// TestTruncateMaxTimestampWithoutTimeEntries: a segment whose time index
// lost its entries (a time index of another moment; Open cannot tell
// when the batches after the offset index's last entry hold the largest
// timestamp, as here) is truncated below that batch: the max timestamp
// of what it keeps is that of its batches, as Kafka's
// LogSegment.truncateTo reads it from the last time index entry's batch
// on (from the start when there is none). TruncateTo took it from the
// batches after the offset index entry below the cut alone, with the
// first batch's (for a lost entry (0, base)), and missed the larger
// timestamp of a batch between: the log's OffsetForTime then skipped the
// segment, and retention judged it too young. Found by the log's
// TestTimeModel.
func TestTruncateMaxTimestampWithoutTimeEntries(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		const ts int64 = 1_700_000_000_000
		cfg := Config{IndexIntervalBytes: 1} // an index point a batch
		s := mustCreate(t, fsys, dir, 0, cfg)
		for i, x := range []int64{ts, ts + 100, ts + 50, ts + 200} {
			if err := s.Append(mkBatch(t, int64(i), []int64{x}, 5, -1)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		f, err := fsys.Create(filepath.Join(dir, FileName(0, TimeIndexSuffix)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		s, needs := mustOpen(t, fsys, dir, 0, cfg, true)
		if needs {
			t.Fatal("Open reports needsRecovery: the test needs a segment it trusts")
		}
		if got := s.MaxTimestamp(); got != ts+200 {
			t.Fatalf("MaxTimestamp = %d, want %d", got, ts+200)
		}
		if next, err := s.TruncateTo(3); err != nil || next != 3 {
			t.Fatalf("TruncateTo(3) = %d, %v", next, err)
		}
		if got := s.MaxTimestamp(); got != ts+100 {
			t.Fatalf("MaxTimestamp after TruncateTo(3) = %d, want %d", got, ts+100)
		}
		if got := s.MaxTimestampOffset(); got != 1 {
			t.Fatalf("MaxTimestampOffset after TruncateTo(3) = %d, want 1", got)
		}
		if off, ok, err := s.FindTime(ts+100, 0); err != nil || !ok || off != 1 {
			t.Fatalf("FindTime(%d) = %d, %v, %v; want 1", ts+100, off, ok, err)
		}
	})
}
