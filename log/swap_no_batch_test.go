package log

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestOpenCompletesSwapWithoutBatch: a compaction's .log.swap that holds
// no batch replaces the segment of its base, whose name it takes, and no
// other. Open used to keep that segment's base in its list besides the
// swap's, and opened two segments of one base: for the active segment it
// failed on the index the swap's completion had removed (found by
// FuzzOpenFileName: its seed d13a3ce9e48214a1, a swap of one byte, less
// than a batch header).
func TestOpenCompletesSwapWithoutBatch(t *testing.T) {
	for _, which := range []string{"middle", "last"} {
		t.Run(which, func(t *testing.T) {
			const dir = "/d/t-0"
			cfg := Config{SegmentBytes: 200}
			mem := vfs.NewMem()
			l, err := Open(dir, cfg, Options{FS: mem, Clock: newClock()})
			require.NoError(t, err)
			for i := range 12 {
				appendOK(t, l, valueBatch(t, 1_700_000_000_000, fmt.Sprint(i)))
			}
			require.NoError(t, l.Flush(context.Background()))
			end := l.LogEndOffset()
			crashed := mem.CrashClone(vfs.CrashOptions{})
			require.NoError(t, l.Close())

			names, err := crashed.List(dir)
			require.NoError(t, err)
			var bases []int64
			for _, n := range names {
				if b, suffix, ok := segment.ParseFileName(n); ok && suffix == segment.LogSuffix {
					bases = append(bases, b)
				}
			}
			require.GreaterOrEqual(t, len(bases), 3)
			base, next := bases[1], bases[2]
			if which == "last" {
				base, next = bases[len(bases)-1], end
			}
			writeMemFile(t, crashed, filepath.Join(dir, segment.FileName(base, segment.LogSuffix+swapSuffix)), nil)

			l, err = Open(dir, cfg, Options{FS: crashed, Clock: newClock()})
			require.NoError(t, err)
			defer l.Close()
			segs := *l.segs.Load()
			for i := 1; i < len(segs); i++ {
				require.Greater(t, segs[i].Base(), segs[i-1].Base(), "segments %d and %d", i-1, i)
			}
			if which == "middle" {
				require.Equal(t, end, l.LogEndOffset())
			}
			var got []string
			for _, r := range readAll(t, l, 0) {
				got = append(got, string(r.Value))
			}
			var want []string
			for i := range l.LogEndOffset() {
				if i < base || i >= next {
					want = append(want, fmt.Sprint(i))
				}
			}
			require.Equal(t, want, got, "the records of segment %d go with it, no others", base)
		})
	}
}
