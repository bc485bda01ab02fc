package log

import (
	"bytes"
	"math"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/vfs"
)

// ReadWithin is ReadInto for a fetch's partition after the first with
// records: a first batch larger than maxBytes is neither read nor
// returned (nil), and the read does not go on to the next segment's
// batches instead, which would skip offsets. On the OS's file system
// the batch it does not read costs no memory: the broker's fetch read
// such a batch whole with ReadInto and dropped it (see the root
// package's TestReview45MemFetchOnDiskWithinMaxBytes).
func TestReview45MemReadWithin(t *testing.T) {
	for _, onDisk := range []bool{false, true} {
		name := "memory"
		if onDisk {
			name = "disk"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			if onDisk {
				e.fs, e.dir = vfs.OS, t.TempDir()
			}
			// Each batch a segment of its own: a big one at 0, a small one at 1.
			l := e.open(Config{SegmentBytes: 1000, RetentionTime: -1})
			defer l.Close()
			big := valueBatch(t, e.clock.Now().UnixMilli(), strings.Repeat("v", 100_000))
			small := valueBatch(t, e.clock.Now().UnixMilli(), "s")
			appendOK(t, l, big)
			appendOK(t, l, small)
			require.Equal(t, 2, l.Segments()) // the small one rolled the big one's

			whole, err := l.ReadInto(nil, 0, 100, math.MaxInt64)
			require.NoError(t, err)
			require.Len(t, whole, len(big), "ReadInto returns a first batch past maxBytes whole (KIP-74)")

			got, err := l.ReadWithin(nil, 0, 100, math.MaxInt64)
			require.NoError(t, err)
			require.Nil(t, got, "ReadWithin returned a batch past maxBytes, or the next segment's")

			got, err = l.ReadWithin(nil, 0, len(big), math.MaxInt64)
			require.NoError(t, err)
			require.True(t, bytes.Equal(got, whole), "a first batch that fits: as ReadInto")

			got, err = l.ReadWithin(nil, 1, len(small), math.MaxInt64)
			require.NoError(t, err)
			require.Len(t, got, len(small))

			_, err = l.ReadWithin(nil, 5, 100, math.MaxInt64)
			require.ErrorIs(t, err, ErrOffsetOutOfRange)

			if onDisk {
				runtime.GC()
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				for range 10 {
					if _, err := l.ReadWithin(nil, 0, 100, math.MaxInt64); err != nil {
						t.Fatal(err)
					}
				}
				runtime.ReadMemStats(&m1)
				per := (m1.TotalAlloc - m0.TotalAlloc) / 10
				t.Logf("ReadWithin of a %d-byte batch with maxBytes 100: %d bytes allocated a read", len(big), per)
				require.Less(t, per, uint64(len(big)/4), "the batch that does not fit was read")
			}
		})
	}
}

// After a failed fsync, the next Open writes each segment's bytes past
// the durable offset anew (see Segment.Rewrite): it reads them onto the
// heap, a segment's tail at once, so that its peak grows with what was
// not synced, up to segment.bytes (1 GiB by default) under SyncNever,
// where a flush comes only from the maintenance and rolls. 16 MiB
// appended under SyncNever, a Close whose flush fails: the next Open's
// live heap, sampled at every file operation, peaked 16.8 MB above
// where it was (go test -run TestReview45MemRewriteHoldsTheTail -v
// ./log): docs/details.md's "Memory bounds, by component" says so.
func TestReview45MemRewriteHoldsTheTail(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB on disk")
	}
	const tail = 16 << 20
	var armed, sampling atomic.Bool
	var peak atomic.Int64
	fsys := vfs.WithFaults(vfs.OS, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			return vfs.ErrInjected
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
	l, err := Open(dir, Config{Sync: SyncNever, RetentionTime: -1}, Options{FS: fsys, Clock: clock})
	require.NoError(t, err)
	v := strings.Repeat("v", 128<<10)
	for range tail / (256 << 10) {
		appendOK(t, l, valueBatch(t, clock.Now().UnixMilli(), v))
	}
	armed.Store(true)
	require.Error(t, l.Close(), "the flush of Close fails")

	base := leakcheck.LiveHeap()
	sampling.Store(true)
	l, err = Open(dir, Config{Sync: SyncNever, RetentionTime: -1}, Options{FS: fsys, Clock: clock})
	sampling.Store(false)
	require.NoError(t, err)
	defer l.Close()
	rewritten := l.Recovery().RewrittenBytes
	rose := max(peak.Load(), leakcheck.LiveHeap()) - base
	t.Logf("Open rewrote %d bytes after a failed fsync: its live heap peaked %.1f MB above where it was", rewritten, float64(rose)/1e6)
	require.Greater(t, rewritten, int64(tail/2))
	require.LessOrEqual(t, rose, rewritten+4<<20, "more than the tail it rewrote")
}
