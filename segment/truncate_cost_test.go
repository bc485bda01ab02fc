package segment

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestTruncateWithoutTimestampsReadsOnlyTheTail: a segment none of whose
// batches has a timestamp (-1, or one before the epoch, which the segment
// takes for none) has no time index entry and a max timestamp of -1;
// TruncateTo then reads the headers of the batches after the offset index
// entry below the cut, not every header from the segment's start, as
// Kafka's LogSegment.truncateTo, which looks for the max timestamp of what
// it keeps only when the segment has one (maxTimestampSoFar >= 0). The
// scan from the start that TruncateTo makes when the time index has no
// entry (see TestTruncateMaxTimestampWithoutTimeEntries) read every
// header of such a segment, however large, at each truncation: 400 reads
// here, where the tail takes a few.
func TestTruncateWithoutTimestampsReadsOnlyTheTail(t *testing.T) {
	var (
		mu       sync.Mutex
		counting bool
		reads    atomic.Int64
	)
	count := vfs.InjectorFunc(func(op vfs.Op, name string) error {
		mu.Lock()
		on := counting
		mu.Unlock()
		if on && op == vfs.OpRead && strings.HasSuffix(name, LogSuffix) {
			reads.Add(1)
		}
		return nil
	})
	fsys := vfs.WithFaults(vfs.NewMem(), count)
	const dir = "/data/topic-0"
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const batches = 400
	s := mustCreate(t, fsys, dir, 0, Config{}) // an index point every 4 KiB
	for i := range int64(batches) {
		ts := int64(record.NoTimestamp)
		if i%2 == 1 {
			ts = -1_000 // before the epoch
		}
		if err := s.Append(mkBatch(t, i, []int64{ts}, 100, -1)); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.MaxTimestamp(); got != -1 {
		t.Fatalf("MaxTimestamp = %d, want -1", got)
	}
	mu.Lock()
	counting = true
	mu.Unlock()
	if next, err := s.TruncateTo(batches - 1); err != nil || next != batches-1 {
		t.Fatalf("TruncateTo(%d) = %d, %v", batches-1, next, err)
	}
	mu.Lock()
	counting = false
	mu.Unlock()
	if got := s.MaxTimestamp(); got != -1 {
		t.Fatalf("MaxTimestamp after TruncateTo = %d, want -1", got)
	}
	// The batches after the index entry below the cut: about 4 KiB of
	// ~190-byte batches, a header read each, and the lookups'.
	if n := reads.Load(); n > batches/4 {
		t.Fatalf("TruncateTo read the log %d times for %d batches: it scanned from the segment's start", n, batches)
	}
}
