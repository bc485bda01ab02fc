package log

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/vfs"
)

// tail46Tail is the unsynced tail of the TestTail46 logs: 16 MiB.
const tail46Tail = 16 << 20

// tail46Bound is how far above where it was the live heap of an Open
// that writes a 16 MiB tail anew (or puts it back from its copy) may
// peak: a few blocks of 1 MiB, not the tail.
const tail46Bound = 4 << 20

// TestTail46OpenHeapBounded: the Open after a failed fsync writes each
// segment's bytes past the durable offset anew, through a tail copy
// (see Segment.Rewrite and tailcopy.go), and the Open after one of those
// failed puts the copy back first (restoreTail): both stream the tail a
// block at a time, so that the live heap, sampled at every file
// operation, stays within a few MiB of where it was for a tail of 16
// MiB. Before, each read the tail onto the heap at once (16.8 MB above,
// see TestReview45MemRewriteHoldsTheTail's figure), up to SegmentBytes
// (1 GiB by default) under SyncNever; the restore then the rewrite both.
func TestTail46OpenHeapBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB on disk")
	}
	for _, restore := range []bool{false, true} {
		name := "rewrite"
		if restore {
			name = "restore"
		}
		t.Run(name, func(t *testing.T) {
			var armedSync, armedWrite, sampling atomic.Bool
			var peak atomic.Int64
			fsys := vfs.WithFaults(vfs.OS, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if strings.HasSuffix(name, ".log") {
					if op == vfs.OpSync && armedSync.CompareAndSwap(true, false) {
						return vfs.ErrInjected
					}
					if op == vfs.OpWrite && armedWrite.CompareAndSwap(true, false) {
						return vfs.ErrInjected
					}
				}
				if sampling.Load() {
					if h := leakcheck.LiveHeap(); h > peak.Load() {
						peak.Store(h)
					}
				}
				return nil
			}))
			dir := t.TempDir()
			clock := newClock()
			cfg := Config{Sync: SyncNever, RetentionTime: -1}
			l, err := Open(dir, cfg, Options{FS: fsys, Clock: clock})
			require.NoError(t, err)
			v := strings.Repeat("v", 128<<10)
			for range tail46Tail / (256 << 10) {
				appendOK(t, l, valueBatch(t, clock.Now().UnixMilli(), v))
			}
			armedSync.Store(true)
			require.ErrorIs(t, l.Close(), vfs.ErrInjected, "the flush of Close fails")
			if restore {
				// The rewrite's write back fails, after the cut: the tail
				// is in its copy alone, which the next Open puts back.
				armedWrite.Store(true)
				_, err := Open(dir, cfg, Options{FS: fsys, Clock: clock})
				require.ErrorIs(t, err, vfs.ErrInjected)
				require.False(t, armedWrite.Load())
				names, err := vfs.OS.List(dir)
				require.NoError(t, err)
				require.Contains(t, names, "00000000000000000000.log"+tailCopySuffix)
			}

			base := leakcheck.LiveHeap()
			sampling.Store(true)
			l, err = Open(dir, cfg, Options{FS: fsys, Clock: clock})
			sampling.Store(false)
			require.NoError(t, err)
			defer l.Close()
			rewritten := l.Recovery().RewrittenBytes
			rose := max(peak.Load(), leakcheck.LiveHeap()) - base
			t.Logf("Open rewrote %d bytes after a failed fsync (restore first: %t): its live heap peaked %.1f MB above where it was", rewritten, restore, float64(rose)/1e6)
			require.Greater(t, rewritten, int64(tail46Tail/2))
			require.LessOrEqual(t, rose, int64(tail46Bound), "the heap held the tail")
			require.Equal(t, int64(tail46Tail/(256<<10)), l.LogEndOffset(), "every record is back")
			last, err := l.Read(l.LogEndOffset()-1, 1, l.LogEndOffset())
			require.NoError(t, err)
			require.Len(t, last, len(valueBatch(t, clock.Now().UnixMilli(), v)), "the last batch read back whole")
		})
	}
}
