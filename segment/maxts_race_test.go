package segment

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestMaxTimestampBelowDuringAppend: MaxTimestampBelow while an Append of
// several batches indexes them. The segment's next offset counts all of
// them before their index entries are added, so a reader may ask for the
// largest timestamp below an offset inside the Append, and find an index
// point's offset entry without its time entry (or the other way round):
// the answer must still be the batches'. With the offset entry first, the
// time entry before it said the largest timestamp up to the index point
// before, and the batches between the two were not read.
func TestMaxTimestampBelowDuringAppend(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		rng := rand.New(rand.NewPCG(11, 12))
		s := mustCreate(t, fsys, dir, 100, Config{IndexIntervalBytes: 500})
		m := &model{base: 100}
		checks := 0
		testHookBetweenIndexes = func(seg *Segment) {
			if seg != s {
				return
			}
			checks++
			// Below the next offset: at or past it, the answer is
			// MaxTimestamp, which the Append raises batch by batch
			// after it raised the next offset.
			for end := m.base - 1; end < s.NextOffset(); end++ {
				if got, err := s.MaxTimestampBelow(end); err != nil || got != m.maxTsBelow(end) {
					for _, b := range m.batches {
						t.Logf("batch [%d,%d] pos %d size %d max %d", b.base, b.last, b.pos, b.size, b.maxTs)
					}
					t.Logf("offset entries %v time entries %v next %d size %d", offsetEntries(s), timeEntries(s), s.NextOffset(), s.Size())
					t.Fatalf("during an Append: MaxTimestampBelow(%d) = %d, %v; want %d", end, got, err, m.maxTsBelow(end))
				}
			}
		}
		defer func() { testHookBetweenIndexes = nil }()
		for range 40 {
			// Several batches in one Append, the timestamps mostly
			// growing, so that index points fall inside the Appends with
			// new maxima between them.
			bs := make([]record.Batch, 2+rng.IntN(5))
			for i := range bs {
				ts := make([]int64, 1+rng.IntN(4))
				for j := range ts {
					ts[j] = tsBase + int64(len(m.batches)+i)*10 + rng.Int64N(30) - 10
				}
				bs[i] = mkBatch(t, 0, ts, 50+rng.IntN(150), -1)
			}
			appendBatches(t, s, m, bs...)
		}
		if checks < 10 {
			t.Fatalf("test bug: %d index points", checks)
		}
		checkState(t, s, m)
	})
}

// TestMaxTimestampBelowClosedUnder: a Close (a compaction's swap, which
// deletes the segments it replaced while searches read them) that runs
// between MaxTimestampBelow's lookups of the offset and the time index.
// Close sets the segment closed and closes its indexes before its .log;
// a closed index has no entries, which the time index's lookup must not
// take for the lost zero entry at the base (the first batch's max
// timestamp as the answer, read from the .log still open): the call
// answers correctly or fails with ErrClosed.
func TestMaxTimestampBelowClosedUnder(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{IndexIntervalBytes: 1})
		m := &model{}
		for i := range 10 {
			ts := tsBase + int64(i)
			if i == 3 {
				ts += 100 // the largest, in a batch before the index entry below end
			}
			appendBatches(t, s, m, mkBatch(t, 0, []int64{ts}, 50, -1))
		}
		if err := s.Seal(false); err != nil {
			t.Fatal(err)
		}
		end := m.batches[8].base
		want := m.maxTsBelow(end)
		testHookMaxTsEntry = func(seg *Segment) {
			if seg != s || s.closed.Swap(true) {
				return
			}
			// Close's steps before it closes the .log.
			if err := errors.Join(s.oidx.Close(), s.tidx.Close()); err != nil {
				t.Error(err)
			}
		}
		defer func() { testHookMaxTsEntry = nil }()
		got, err := s.MaxTimestampBelow(end)
		// The rest of Close, which the hook left: the .log stays open
		// otherwise, and on Windows the test's directory cannot be
		// removed.
		if cerr := s.log.Close(); cerr != nil {
			t.Error(cerr)
		}
		if err == nil && got != want || err != nil && !errors.Is(err, ErrClosed) {
			t.Fatalf("MaxTimestampBelow(%d) closed under it = %d, %v; want %d or ErrClosed", end, got, err, want)
		}
	})
}
