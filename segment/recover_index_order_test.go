package segment

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
)

// TestRecoverFailedLeavesNoIndexAheadOfTimeIndex: a Recover of a sealed
// segment that fails part way (a write or sync of its indexes failing,
// and every one after it: a burst, as a dying disk gives) must leave
// files that the next Open, in the same boot or after a crash, either
// recovers again or reads right. Open trusts a sealed segment's offset
// index as far as its last entry and scans only the batches after it
// (for the max timestamp among them); it cannot tell a time index that
// lost entries before that point (see
// TestTruncateMaxTimestampWithoutTimeEntries): so no .index may ever hold
// entries that the .timeindex beside it does not cover. Before, Recover
// rebuilt both in place and sealed the offset index first: when the
// .index was written and the .timeindex write failed (or its sync), the
// reopened segment held a full offset index and an empty time index, its
// max timestamp was taken from the batches after the last offset index
// entry, below the largest, and the log's OffsetForTime skipped the
// record that has it (log.TestCrashSimTransientFaults seed 688352733590:
// OffsetForTime(1700001623000) = 23, want 19, after a compaction whose
// directory sync failed and a reopen in the same boot whose recovery of
// the compacted segment failed at "sync .index, write .timeindex").
// Every writing operation of the Recover fails in turn, from there on.
// Fails on the old code.
func TestRecoverFailedLeavesNoIndexAheadOfTimeIndex(t *testing.T) {
	const ts = tsBase
	// More index points than an index writes at a time (flushEntries),
	// the largest timestamp in the second batch.
	stamps := make([]int64, 300)
	for i := range stamps {
		stamps[i] = ts + int64(i%50)
	}
	stamps[1] = ts + 200
	const maxOffset = 1
	for _, lost := range []bool{true, false} {
		t.Run(fmt.Sprintf("timeIndexLost=%v", lost), func(t *testing.T) {
			testRecoverFailedIndexOrder(t, lost, stamps, maxOffset)
		})
	}
}

func testRecoverFailedIndexOrder(t *testing.T, lost bool, stamps []int64, maxOffset int64) {
	const ts = tsBase
	writing := []vfs.Op{vfs.OpCreate, vfs.OpWrite, vfs.OpSync, vfs.OpTruncate, vfs.OpRemove, vfs.OpRename, vfs.OpSyncDir}
	isWriting := func(op vfs.Op) bool {
		for _, w := range writing {
			if op == w {
				return true
			}
		}
		return false
	}
	cfg := Config{IndexIntervalBytes: 1} // an index point a batch
	const dir = "/d"
	// setup writes the sealed segment and opens it again. With lost, its
	// time index is gone: Open then reports needsRecovery. Either way
	// Recover rebuilds both indexes (a log recovers the segment that
	// holds its recovery point whatever Open says).
	setup := func(t *testing.T, fsys vfs.FS) *Segment {
		if err := vfs.MkdirAllDurable(fsys, dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := mustCreate(t, fsys, dir, 0, cfg)
		for i, x := range stamps {
			if err := s.Append(mkBatch(t, int64(i), []int64{x}, 5, -1)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Seal(true); err != nil {
			t.Fatal(err)
		}
		mustClose(t, s)
		if lost {
			if err := fsys.Remove(filepath.Join(dir, FileName(0, TimeIndexSuffix))); err != nil {
				t.Fatal(err)
			}
		}
		if err := fsys.SyncDir(dir); err != nil {
			t.Fatal(err)
		}
		s, needs, err := Open(fsys, dir, 0, cfg, OpenOptions{Limit: int64(len(stamps))})
		if err != nil {
			t.Fatal(err)
		}
		if needs != lost {
			t.Fatalf("Open reports needsRecovery %v", needs)
		}
		return s
	}
	// check opens the segment again, recovers it if Open says so, and
	// checks its max timestamp and a search for it.
	check := func(t *testing.T, fsys vfs.FS, what string) {
		s, needs, err := Open(fsys, dir, 0, cfg, OpenOptions{Limit: int64(len(stamps))})
		if err != nil {
			t.Fatalf("%s: Open: %v", what, err)
		}
		defer s.Close()
		if needs {
			if _, err := s.Recover(0); err != nil {
				t.Fatalf("%s: Recover: %v", what, err)
			}
		}
		if got := s.MaxTimestamp(); got != ts+200 || s.MaxTimestampOffset() != maxOffset {
			t.Fatalf("%s: reopened (needsRecovery %v, %d offset and %d time index entries): MaxTimestamp %d at %d, want %d at %d",
				what, needs, s.oidx.Entries(), s.tidx.Entries(), got, s.MaxTimestampOffset(), ts+200, maxOffset)
		}
		if off, ok, err := s.FindTime(ts+200, 0); err != nil || !ok || off != maxOffset {
			t.Fatalf("%s: FindTime(%d) = %d, %v, %v; want %d", what, ts+200, off, ok, err, maxOffset)
		}
	}

	// Count the writing operations of a Recover that succeeds.
	var count atomic.Int64
	var counting atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if counting.Load() && isWriting(op) {
			count.Add(1)
		}
		return nil
	}))
	s := setup(t, fsys)
	counting.Store(true)
	if _, err := s.Recover(0); err != nil {
		t.Fatal(err)
	}
	counting.Store(false)
	mustClose(t, s)
	check(t, fsys, "no fault")
	n := int(count.Load())
	if n == 0 {
		t.Fatal("Recover made no writing operation")
	}

	for at := range n {
		var armed atomic.Bool
		var seen atomic.Int64
		var failed []string
		mem := vfs.NewMem()
		fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
			if !armed.Load() || !isWriting(op) {
				return nil
			}
			if seen.Add(1)-1 >= int64(at) {
				failed = append(failed, fmt.Sprintf("%s %s", op, filepath.Base(name)))
				return vfs.ErrInjected
			}
			return nil
		}))
		s := setup(t, fsys)
		armed.Store(true)
		_, err := s.Recover(0)
		cerr := s.Close()
		armed.Store(false)
		if err == nil && cerr == nil {
			t.Fatalf("writing operation %d: no fault met", at)
		}
		if err != nil && !errors.Is(err, vfs.ErrInjected) {
			t.Fatalf("writing operation %d: Recover: %v", at, err)
		}
		what := fmt.Sprintf("writing operations from %d failing (%s)", at, strings.Join(failed, ", "))
		// In the same boot, and after a power cut, as each is left.
		crashed := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailZeros})
		check(t, fsys, what)
		check(t, crashed, what+", then a power cut")
	}
}
