package log

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestReview40OpenWriteFails: each file-system step by which Open makes
// what it found durable and consistent (the cleaner checkpoint reset, the
// producer-state snapshot, an older runnel's snapshot replaced, the
// snapshots past the end removed, the leader epochs past it dropped, the
// clean-shutdown marker and a cut-short write removed), on the path after
// a clean Close and on that after a crash, fails Open with its error; and
// the Open after it, the fault gone, finds the log whole, its producer's
// state kept.
func TestReview40OpenWriteFails(t *testing.T) {
	cfg := Config{Sync: SyncAlways, RetentionTime: -1}
	type fault struct {
		op     vfs.Op
		suffix string
	}
	rename := func(e *env, from, to string) {
		require.NoError(t, e.fs.Rename(filepath.Join(e.dir, from), filepath.Join(e.dir, to)))
	}
	copyFile := func(e *env, from, to string) {
		writeMemFile(t, e.fs, filepath.Join(e.dir, to), readAllFile(t, e.fs, filepath.Join(e.dir, from)))
	}
	crashed := func(e *env) { // no clean Close
		require.NoError(t, e.fs.Remove(filepath.Join(e.dir, cleanShutdownFile)))
	}
	for _, c := range []struct {
		name  string
		setup func(e *env)
		fault fault
	}{
		{"clean/cleaner checkpoint reset", func(e *env) {
			require.NoError(t, writeOffset(e.fs, e.dir, cleanerFile, 100))
		}, fault{vfs.OpCreate, cleanerFile + tmpSuffix}},
		{"clean/snapshot of a replayed state", func(e *env) {
			removeProducerSnapshots(t, e.fs, e.dir)
		}, fault{vfs.OpCreate, snapshotSuffix + tmpSuffix}},
		{"clean/legacy snapshot replaced", func(e *env) {
			rename(e, snapshotName(6), producerFile)
		}, fault{vfs.OpRemove, producerFile}},
		{"clean/snapshot past the end removed", func(e *env) {
			copyFile(e, snapshotName(6), snapshotName(100))
		}, fault{vfs.OpRemove, snapshotName(100)}},
		{"clean/leader epochs past the end", func(e *env) {
			require.NoError(t, writeCheckpoint(e.fs, e.dir, leaderEpochFile, checkpointV0, [][]int64{{0, 0}, {5, 100}}))
		}, fault{vfs.OpCreate, leaderEpochFile + tmpSuffix}},
		{"crash/legacy snapshot replaced", func(e *env) {
			crashed(e)
			rename(e, snapshotName(6), producerFile)
		}, fault{vfs.OpRemove, producerFile}},
		{"crash/snapshot past the end removed", func(e *env) {
			crashed(e)
			copyFile(e, snapshotName(6), snapshotName(100))
		}, fault{vfs.OpRemove, snapshotName(100)}},
		{"crash/leader epochs past the end", func(e *env) {
			crashed(e)
			require.NoError(t, writeCheckpoint(e.fs, e.dir, leaderEpochFile, checkpointV0, [][]int64{{0, 0}, {5, 100}}))
		}, fault{vfs.OpCreate, leaderEpochFile + tmpSuffix}},
		{"marker beside a cut-short write", func(e *env) {
			writeMemFile(t, e.fs, filepath.Join(e.dir, recoveryPointFile+tmpSuffix), []byte("0\n"))
		}, fault{vfs.OpRemove, cleanShutdownFile}},
		{"cut-short write removed", func(e *env) {
			writeMemFile(t, e.fs, filepath.Join(e.dir, recoveryPointFile+tmpSuffix), []byte("0\n"))
		}, fault{vfs.OpRemove, recoveryPointFile + tmpSuffix}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			l := review40ProducerLog(t, e)
			require.NoError(t, l.Close())
			c.setup(e)

			n := 0
			faulty := vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if op == c.fault.op && strings.HasSuffix(name, c.fault.suffix) {
					n++
					return vfs.ErrInjected
				}
				return nil
			}))
			l, err := Open(e.dir, cfg, Options{FS: faulty, Clock: e.clock, ProducerExpiration: time.Hour})
			require.ErrorIs(t, err, vfs.ErrInjected)
			require.Nil(t, l)
			require.Equal(t, 1, n)

			l = e.open(cfg)
			defer l.Close()
			require.EqualValues(t, 6, l.LogEndOffset())
			review40RequireWhole(t, l)
			requireDuplicate(t, l, keyedProducerBatch(t, 5, "k"), 5)
			res := appendOK(t, l, keyedProducerBatch(t, 6, "k"))
			require.False(t, res.Duplicate)
		})
	}
}
