package log

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestCrashReorderTruncateIndexes: TruncateTo into a segment whose indexes
// were synced (here by a clean Close) deletes the segments after it, cuts
// its .log and zeroes the indexes' dropped entries in place, then syncs the
// .log. It crashes here at that failed sync, with every tail mode and many
// reorderings (vfs.CrashOptions.Reorder): a real disk may have committed
// some of the removals and not others, the .log's new size or not, and
// some sectors of the zeroed index entries, each file on its own. Reopened,
// the log must hold its records without a hole (truncated, or not, or
// shortened by whole segments from its end), know its largest timestamp and
// find every record by time.
//
// It failed before TruncateTo synced the directory between the removals
// and the cut, and removed the segments newest first: the crash could keep
// the cut of the first segment and the segments after it (a hole, with the
// records TruncateTo dropped back after it), or remove the middle segment
// only.
func TestCrashReorderTruncateIndexes(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 10
	}
	for _, segBytes := range []int64{0, 2000} {
		cfg := Config{IndexIntervalBytes: 1, SegmentBytes: segBytes}
		for _, mode := range crashTails {
			for seed := range seeds {
				t.Run(fmt.Sprintf("segment=%d/%s/%d", segBytes, mode, seed), func(t *testing.T) {
					mem := vfs.NewMem()
					var armed atomic.Bool
					e := newEnv(t)
					e.fs = vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
						if armed.Load() && op == vfs.OpSync && strings.HasSuffix(name, ".log") {
							return vfs.ErrInjected
						}
						return nil
					}))
					l := e.open(cfg)
					const n = 60 // one record per batch, timestamps rising
					for i := range n {
						appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i)*1000, fmt.Sprintf("v%d", i)))
					}
					require.NoError(t, l.Close())
					l = e.open(cfg)
					armed.Store(true)
					cut := int64(5 + seed%40)
					_, err := l.TruncateTo(cut)
					require.ErrorIs(t, err, vfs.ErrInjected)
					clone := mem.CrashClone(vfs.CrashOptions{Tail: mode, Reorder: true,
						Rand: rand.New(rand.NewPCG(uint64(seed), uint64(mode)))})
					l.Close()

					e.fs = clone
					l = e.open(cfg)
					defer l.Close()
					end := l.LogEndOffset()
					// TruncateTo deletes the segments after the one it cuts,
					// and the crash may keep some of them: newest first, so
					// that the log is whole, truncated or not.
					require.True(t, end >= cut && end <= n, "log end offset %d: not in [%d, %d]", end, cut, n)
					names, _ := clone.List(e.dir)
					recs := readAll(t, l, 0)
					require.Len(t, recs, int(end), "a hole in the log; files %q", names)
					off, ok, err := l.OffsetOfMaxTimestamp(context.Background())
					require.NoError(t, err)
					require.True(t, ok)
					require.Equal(t, end-1, off, "the offset of the largest timestamp, with records [0, %d)", end)
					for i, r := range recs {
						got, ok, err := l.OffsetForTime(r.Timestamp.UnixMilli())
						require.NoError(t, err)
						require.True(t, ok)
						require.EqualValues(t, i, got, "offset for the time of record %d", i)
					}
				})
			}
		}
	}
}
