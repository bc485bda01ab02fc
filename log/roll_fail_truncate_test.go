package log

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// A TruncateTo after a roll that failed, and whose removal of the new
// segment's files no directory fsync has made durable yet (rollRemoved:
// the directory could not be opened), cuts the active segment below the
// failed roll's base: that removal must be durable before the cut, as
// TruncateTo makes its own removals, or a crash that kept the cut and
// the creation of the failed roll's files, not their removal, leaves the
// cut segment followed by an empty one at the failed roll's base, a hole
// below the recovery point, which Open keeps: it ended the log at that
// base (4), past an offset (3) it does not hold. The old code synced the
// directory before the cut only when the truncation removed segments
// itself; this test failed on it (crash 33, before the truncation of
// 00000000000000000002.index: 3 records, log end 4).
func TestTruncateAfterUnsyncedRollRemovalLeavesNoHole(t *testing.T) {
	const ts = 1_700_000_000_000
	mem := vfs.NewMem()
	var failing, armed atomic.Bool
	type point struct {
		clone *vfs.MemFS
		what  string
	}
	var points []point
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if !armed.Load() {
			return nil
		}
		for seed := range uint64(16) {
			points = append(points, point{
				clone: mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailDrop, Reorder: true, Rand: rand.New(rand.NewPCG(uint64(len(points)), seed))}),
				what:  fmt.Sprintf("before %v %s, seed %d", op, filepath.Base(name), seed),
			})
		}
		return nil
	}))
	ofs := &openDirFailFS{FS: fsys, armed: &failing, err: &os.PathError{Op: "open", Err: syscall.EMFILE}}
	cfg := Config{SegmentBytes: 600, IndexIntervalBytes: 1}
	l, err := Open("/p", cfg, Options{FS: ofs})
	require.NoError(t, err)
	defer l.Close()
	for i := range 4 {
		appendOK(t, l, valueBatch(t, ts+int64(i), string(make([]byte, 100))))
	}
	// The recovery point at the log end (as Maintain checkpoints it): Open
	// trusts what is below it.
	require.NoError(t, l.checkpointRecovery(context.Background()))
	failing.Store(true)
	_, err = l.Append(context.Background(), valueBatch(t, ts+4, string(make([]byte, 200))), AppendOptions{})
	require.ErrorIs(t, err, ErrRollFailed)
	require.NotErrorIs(t, err, ErrLogFenced)
	failing.Store(false)
	require.True(t, l.rollRemoved)
	armed.Store(true)
	next, err := l.TruncateTo(3)
	require.NoError(t, err)
	require.Equal(t, int64(3), next)
	armed.Store(false)
	require.NotEmpty(t, points)
	for i, p := range points {
		l2, err := Open("/p", cfg, Options{FS: p.clone})
		require.NoError(t, err, "crash %d (%s)", i, p.what)
		end := l2.LogEndOffset()
		require.Contains(t, []int64{3, 4}, end, "crash %d (%s): the log ends at %d, neither before nor after the truncation", i, p.what, end)
		require.Len(t, readAll(t, l2, 0), int(end), "crash %d (%s)", i, p.what)
		require.NoError(t, l2.Close())
	}
	require.False(t, l.rollRemoved, "the truncation's directory fsync made the removal durable")
}
