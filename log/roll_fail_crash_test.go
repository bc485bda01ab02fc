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

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// A crash at each file-system operation of a roll that fails (each way
// it can: the new segment's files not created, or the directory not
// opened for its fsync), of the append that fits the old segment after
// it, and of the roll that then succeeds: Open finds every acknowledged
// record, the indexes agree with the log, and OffsetForTime finds each
// record's timestamp. At each operation it crashes twice, without and
// with Reorder, each with a tail mode drawn from the run's sample seed
// (testkit.SampleSeed: RUNNEL_SAMPLE_SEED replays a run's, and runs
// after runs take each mode); RUNNEL_CRASH_POINTS=all takes every mode
// both ways.
func TestRollFailureCrashAtEachStep(t *testing.T) {
	ctx := context.Background()
	const ts = 1_700_000_000_000
	seed := testkit.SampleSeed(t)
	run := 0
	for _, failOp := range []string{"create .log", "create .index", "create .timeindex", "open dir"} {
		for _, sync := range []SyncPolicy{SyncAlways, SyncNever} {
			run++
			sample := rand.New(rand.NewPCG(seed, uint64(run)))
			t.Run(fmt.Sprintf("%s/%v", failOp, sync), func(t *testing.T) {
				mem := vfs.NewMem()
				var armed, failing atomic.Bool
				type point struct {
					clone *vfs.MemFS
					acked int
					what  string
				}
				var points []point
				acked := 0
				fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
					if !armed.Load() {
						return nil
					}
					i := len(points)
					for _, reorder := range []bool{false, true} {
						modes := crashTails
						if !testkit.CrashPointsAll() {
							modes = []vfs.TailMode{crashTails[sample.IntN(len(crashTails))]}
						}
						for _, mode := range modes {
							points = append(points, point{
								clone: mem.CrashClone(vfs.CrashOptions{Tail: mode, Reorder: reorder, Rand: rand.New(rand.NewPCG(uint64(i), uint64(mode)))}),
								acked: acked, what: fmt.Sprintf("before %v %s, tail %v, reorder %v", op, filepath.Base(name), mode, reorder),
							})
						}
					}
					if failing.Load() && op == vfs.OpCreate && failOp == "create "+filepath.Ext(name) {
						return syscall.EMFILE
					}
					return nil
				}))
				if failOp == "open dir" {
					fsys = &openDirFailFS{FS: fsys, armed: &failing, err: &os.PathError{Op: "open", Err: syscall.EMFILE}}
				}
				cfg := Config{SegmentBytes: 600, IndexIntervalBytes: 1, Sync: sync}
				l, err := Open("/p", cfg, Options{FS: fsys})
				require.NoError(t, err)
				defer l.Close()
				vals := []string{string(make([]byte, 30)), "b", string(make([]byte, 200)), "d", string(make([]byte, 200)), "f"}
				appendOK(t, l, valueBatch(t, ts, vals[0]))
				appendOK(t, l, valueBatch(t, ts+1, vals[1]))
				acked = 2
				armed.Store(true)
				failing.Store(true)
				_, err = l.Append(ctx, valueBatch(t, ts+2, vals[2]), AppendOptions{})
				require.ErrorIs(t, err, ErrRollFailed)
				require.NotErrorIs(t, err, ErrLogFenced)
				failing.Store(false)
				got := vals[:2:2]
				for i, v := range vals[3:] {
					res := appendOK(t, l, valueBatch(t, ts+3+int64(i), v))
					require.Equal(t, int64(len(got)), res.FirstOffset)
					got = append(got, v)
					acked = len(got)
				}
				require.Len(t, *l.segs.Load(), 2, "one roll failed, one succeeded")
				armed.Store(false)
				require.NotEmpty(t, points)
				for i, p := range points {
					l2, err := Open("/p", cfg, Options{FS: p.clone})
					require.NoError(t, err, "crash %d (%s)", i, p.what)
					recs := readAll(t, l2, 0)
					if sync == SyncAlways {
						require.GreaterOrEqual(t, len(recs), p.acked, "crash %d (%s): acknowledged records lost", i, p.what)
					}
					require.Equal(t, got[:len(recs)], values(recs), "crash %d (%s)", i, p.what)
					batches, recs2 := readBatches(t, l2, 0)
					checkIndexes(t, l2, scanSegmentFiles(t, p.clone, "/p"), batches, recs2, 0, l2.LogEndOffset())
					for j := range recs {
						off, ok, err := l2.OffsetForTime(recs[j].Timestamp.UnixMilli())
						require.NoError(t, err)
						require.True(t, ok && off == int64(j), "crash %d (%s): OffsetForTime of record %d: %d, %v", i, p.what, j, off, ok)
					}
					require.NoError(t, l2.Close())
				}
				t.Logf("%d crash points", len(points))
			})
		}
	}
}
