package log

import (
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestOpenWriteFails: each file-system step by which Open makes
// what it found durable and consistent (the cleaner checkpoint reset, the
// producer-state snapshot, an older runnel's snapshot replaced, the
// snapshots past the end removed, the leader epochs past it dropped, the
// clean-shutdown marker and a cut-short write removed), on the path after
// a clean Close and on that after a crash, fails Open with its error; and
// the Open after it, the fault gone, finds the log whole, its producer's
// state kept.
func TestOpenWriteFails(t *testing.T) {
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
		{"clean/legacy snapshot not read", func(e *env) {
			rename(e, snapshotName(6), producerFile)
		}, fault{vfs.OpOpen, producerFile}},
		{"crash/snapshot past the end not read", func(e *env) {
			crashed(e)
			rename(e, snapshotName(6), snapshotName(100)) // and none at the end
		}, fault{vfs.OpOpen, snapshotName(100)}},
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
			l := openProducerLog(t, e)
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
			requireWhole(t, l)
			requireDuplicate(t, l, keyedProducerBatch(t, 5, "k"), 5)
			res := appendOK(t, l, keyedProducerBatch(t, 6, "k"))
			require.False(t, res.Duplicate)
		})
	}
}

// openFailingKth opens e's log under cfg with the k-th operation
// op on a file whose name ends in suffix failing (vfs.ErrInjected); no
// fault comes after the Open.
func openFailingKth(e *env, cfg Config, op vfs.Op, suffix string, k int) (*Log, error) {
	var seen atomic.Int64
	var armed atomic.Bool
	armed.Store(true)
	defer armed.Store(false)
	faulty := vfs.WithFaults(e.fs, vfs.InjectorFunc(func(o vfs.Op, n string) error {
		if armed.Load() && o == op && strings.HasSuffix(n, suffix) && seen.Add(1) == int64(k) {
			return vfs.ErrInjected
		}
		return nil
	}))
	return Open(e.dir, cfg, Options{FS: faulty, Clock: e.clock})
}

// sweepIndexFaults builds a log with setup, for each operation
// of Open's on segment 0's indexes (their opens, reads, truncations) that
// could fail, and requires an Open whose k-th such operation fails to fail
// with it, and the Open after it, the fault gone, to pass check. A case
// ends at the first k whose Open succeeds (there are fewer operations).
func sweepIndexFaults(t *testing.T, cfg Config, setup func(t *testing.T, e *env), check func(t *testing.T, l *Log)) {
	t.Helper()
	for _, suffix := range []string{segment.IndexSuffix, segment.TimeIndexSuffix} {
		name := segment.FileName(0, suffix)
		for _, op := range []vfs.Op{vfs.OpOpen, vfs.OpRead, vfs.OpTruncate} {
			for k := 1; ; k++ {
				require.Less(t, k, 100, "%s %s", op, name)
				// On the OS's file system, whose index files are mapped: a
				// sealed index made writable again reads its entries.
				e := &env{t: t, fs: vfs.OS, dir: filepath.Join(t.TempDir(), "topic-0"), clock: newClock()}
				setup(t, e)
				l, err := openFailingKth(e, cfg, op, name, k)
				if err == nil {
					require.NoError(t, l.Close())
					break
				}
				require.ErrorIs(t, err, vfs.ErrInjected, "%s %s #%d", op, name, k)
				l = e.open(cfg)
				check(t, l)
				require.NoError(t, l.Close())
			}
		}
	}
}

// TestOpenIndexFaultsStaleTimeIndex: a clean-shutdown marker
// whose max timestamp is not the active segment's (its time index came
// back from another moment: see TestCleanMarkerTimeIndexOfAnotherMoment)
// makes Open recover that segment as after a crash; when any step on its
// indexes fails, Open fails with the error, and the next one recovers the
// log whole. (Written for the Unseal at log.go:601, which it does not
// fail: the active segment opens unsealed, and its Unseal does no I/O.)
func TestOpenIndexFaultsStaleTimeIndex(t *testing.T) {
	const ts = 1_700_000_000_000
	cfg := Config{Sync: SyncAlways, IndexIntervalBytes: 1}
	sweepIndexFaults(t, cfg, func(t *testing.T, e *env) {
		l := e.open(cfg)
		appendOK(t, l, valueBatch(t, ts, "a"))
		appendOK(t, l, valueBatch(t, ts+100, "b"))
		appendOK(t, l, valueBatch(t, ts+50, "c"))
		require.NoError(t, l.Close())
		writeMemFile(t, e.fs, filepath.Join(e.dir, segment.FileName(0, segment.TimeIndexSuffix)), nil)
	}, func(t *testing.T, l *Log) {
		require.EqualValues(t, 3, l.LogEndOffset())
		requireWhole(t, l)
		off, ok, err := l.OffsetForTime(ts + 100)
		require.NoError(t, err)
		require.True(t, ok)
		require.EqualValues(t, 1, off)
	})
}

// TestOpenIndexFaultsStaleMarker: a stale clean-shutdown marker
// (records appended after the Close that wrote it: see
// TestOpenStaleCleanShutdownMarker) makes Open recover the active segment
// as after a crash; when any step on its indexes fails, Open fails with
// the error, and the next one recovers the log whole. (As
// TestOpenIndexFaultsStaleTimeIndex, for log.go:629.)
func TestOpenIndexFaultsStaleMarker(t *testing.T) {
	const ts = 1_700_000_000_000
	cfg := Config{Sync: SyncAlways}
	sweepIndexFaults(t, cfg, func(t *testing.T, e *env) {
		l := e.open(cfg)
		appendOK(t, l, valueBatch(t, ts, "a", "b"))
		require.NoError(t, l.Close())
		marker, rp := filepath.Join(e.dir, cleanShutdownFile), filepath.Join(e.dir, recoveryPointFile)
		oldMarker, oldRP := readAllFile(t, e.fs, marker), readAllFile(t, e.fs, rp)
		l = e.open(cfg)
		appendOK(t, l, valueBatch(t, ts, "c"))
		appendOK(t, l, valueBatch(t, ts, "d"))
		require.NoError(t, l.Close())
		// The marker and recovery point of the first Close: stale.
		writeMemFile(t, e.fs, marker, oldMarker)
		writeMemFile(t, e.fs, rp, oldRP)
	}, func(t *testing.T, l *Log) {
		require.EqualValues(t, 4, l.LogEndOffset())
		requireWhole(t, l)
	})
}

// TestOpenHugeCleanMarker: a clean-shutdown marker larger than a
// checkpoint can be is not read (nor trusted): Open recovers the log as
// after a crash, whole, and removes it.
func TestOpenHugeCleanMarker(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a", "b"))
	require.NoError(t, l.Close())
	f, err := e.fs.Create(filepath.Join(e.dir, cleanShutdownFile))
	require.NoError(t, err)
	require.NoError(t, f.Truncate(maxCheckpointBytes+1))
	require.NoError(t, f.Close())

	l = e.open(cfg)
	defer l.Close()
	require.False(t, l.Recovery().Clean)
	require.EqualValues(t, 2, l.LogEndOffset())
	requireWhole(t, l)
	_, err = e.fs.Stat(filepath.Join(e.dir, cleanShutdownFile))
	require.Error(t, err, "the marker goes")
}
