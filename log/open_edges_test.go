package log

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestTruncateAfterASnapshotWhoseRenameFailed: a snapshot write that fails
// at its rename leaves its offset listed (see snapshotProducersLocked)
// and no file under its name: a truncation below it takes the missing
// file as removed, and succeeds.
func TestTruncateAfterASnapshotWhoseRenameFailed(t *testing.T) {
	e, mem, l := logWithFailedSnapshotAt5(t, vfs.OpRename)
	defer l.Close()
	names, err := mem.List(e.dir)
	require.NoError(t, err)
	require.NotContains(t, snapshotOffsets(names), int64(5))

	end, err := l.TruncateTo(3)
	require.NoError(t, err)
	require.EqualValues(t, 3, end)
	res := appendOK(t, l, idemBatch(t, 1, 0, 3, 1))
	require.False(t, res.Duplicate)
	require.EqualValues(t, 3, res.FirstOffset)
}

// TestLogStartAtTheLargestSegmentBase: a log start offset checkpoint at
// the largest base offset a segment can have is a log's (an empty one
// starts its segment there); only one past it is refused.
func TestLogStartAtTheLargestSegmentBase(t *testing.T) {
	for _, start := range []int64{maxSegmentBase, maxSegmentBase + 1} {
		e := newEnv(t)
		require.NoError(t, vfs.MkdirAllDurable(e.fs, e.dir, 0o755))
		require.NoError(t, writeOffset(e.fs, e.dir, logStartFile, start))
		l, err := Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock})
		if start > maxSegmentBase {
			require.ErrorIs(t, err, ErrBadCheckpoint)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, Offsets{Start: start, Durable: start, End: start}, l.Offsets())
		// At MaxLogEndOffset already, it takes no record (this
		// append was once taken, past where a segment can start; see
		// TestAppendPastTheLastOffsetIsRefused).
		_, err = l.Append(context.Background(), valueBatch(t, 1, "a"), AppendOptions{})
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
		require.Equal(t, Offsets{Start: start, Durable: start, End: start}, l.Offsets())
		require.NoError(t, l.Close())
	}
}

// TestUntrustedMarkerBesideARecoveryPoint: a clean-shutdown marker that
// is not trusted (unreadable) beside a recovery-point file leaves the
// recovery point as the file says: the segments from it on are scanned,
// and a bad batch in a sealed one past it is cut as a torn write, with
// the segments after it. Only beside no recovery-point file does the
// active segment's base stand for it.
func TestUntrustedMarkerBesideARecoveryPoint(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, SegmentBytes: 100}
	l := e.open(cfg)
	for _, v := range []string{"a", "b", "c"} {
		appendOK(t, l, valueBatch(t, 1, v)) // a segment each
	}
	require.Equal(t, 3, l.Segments())
	require.NoError(t, l.Close())
	require.NoError(t, writeOffset(e.fs, e.dir, recoveryPointFile, 1))
	writeMemFile(t, e.fs, filepath.Join(e.dir, cleanShutdownFile), []byte("1\n1\n3 3\n"))
	second := filepath.Join(e.dir, segment.FileName(1, segment.LogSuffix))
	data := readAllFile(t, e.fs, second)
	data[len(data)-1] ^= 0xff // a bad CRC in the sealed segment past the recovery point
	writeMemFile(t, e.fs, second, data)

	l = e.open(cfg)
	defer l.Close()
	info := l.Recovery()
	require.False(t, info.Clean)
	require.EqualValues(t, 1, info.RecoveryPoint, "%+v", info)
	require.Positive(t, info.TruncatedBytes, "%+v", info)
	require.Equal(t, 1, info.SegmentsDeleted, "%+v", info)
	require.EqualValues(t, 1, l.LogEndOffset())
}

// TestStaleMarkerAtZeroWithoutRecoveryPointFile: a clean-shutdown marker
// stands for the recovery point of a directory copied without that file,
// and is checked as one: a marker at log end 0 beside records is stale
// (see TestStaleMarkerRecoveryPointZero), the log recovered as after a
// crash, and the recovery point written at its end.
func TestStaleMarkerAtZeroWithoutRecoveryPointFile(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for _, v := range []string{"a", "b", "c"} {
		appendOK(t, l, valueBatch(t, ts, v)) // 0, 1, 2
	}
	require.NoError(t, l.Close())
	l = e.open(cfg)
	_, err := l.TruncateTo(1) // the recovery point lowered to 0
	require.NoError(t, err)
	appendOK(t, l, valueBatch(t, ts, "x")) // 1
	appendOK(t, l, valueBatch(t, ts, "y")) // 2
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	l.Close()
	forgeCleanMarker(t, e.fs, e.dir) // the stale marker, at 0
	require.NoError(t, e.fs.Remove(filepath.Join(e.dir, recoveryPointFile)))

	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 3, l.LogEndOffset())
	require.False(t, l.Recovery().Clean, "a clean Close at 0 leaves an empty log: the marker is stale")
	rp, err := readOffset(e.fs, e.dir, recoveryPointFile, -1)
	require.NoError(t, err)
	require.EqualValues(t, 3, rp)
}

// TestStaleMarkerPastTheRecoveryPoint: a clean-shutdown marker whose log
// end is past the recovery point checkpoint is of another moment than
// the files, though all else in it (the active segment's base, its max
// timestamp and time index) is theirs and the segment ends at the
// recovery point: the log is recovered as after a crash.
func TestStaleMarkerPastTheRecoveryPoint(t *testing.T) {
	requireForgedMarkerRecovered(t, Config{Sync: SyncAlways}, func(int) int64 { return 1_700_000_000_000 }, func(mk *cleanMarker) {
		require.EqualValues(t, 3, mk.end)
		mk.end = 5 // records 3 and 4, which the files do not hold
	})
}

// TestCleanMarkerOfAnEmptyTimeIndex: a clean-shutdown marker that counts
// no entry in the active segment's time index, beside a time index that
// holds some, is of another moment than the files (a count of 0 is a
// count; only -1, an older layout's, is none): recovered as after a
// crash.
func TestCleanMarkerOfAnEmptyTimeIndex(t *testing.T) {
	cfg := Config{Sync: SyncAlways, IndexIntervalBytes: 1}
	requireForgedMarkerRecovered(t, cfg, func(int) int64 { return 1_700_000_000_001 }, func(mk *cleanMarker) {
		require.Positive(t, mk.timeEntries)
		mk.timeEntries = 0
	})
}

// TestOpenKeepsSegmentsPastADeletionGapAtTheLogStart: as
// TestOpenKeepsSegmentsPastADeletionGap, with the log start offset at the
// base of the segment past the gap (the deletion removed the segments
// below it, and a crash kept the removal of a later one only): that
// segment holds the log start's records, and stays with those after it.
func TestOpenKeepsSegmentsPastADeletionGapAtTheLogStart(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, SegmentBytes: 100}
	l := e.open(cfg)
	for _, v := range []string{"a", "b", "c", "d"} {
		appendOK(t, l, valueBatch(t, ts, v)) // a segment each: bases 0 to 3
	}
	require.NoError(t, l.Discard())
	require.NoError(t, segment.RemoveFiles(e.fs, e.dir, 1, segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix))
	require.NoError(t, writeOffset(e.fs, e.dir, logStartFile, 2))
	require.NoError(t, writeOffset(e.fs, e.dir, recoveryPointFile, 1))

	l = e.open(cfg)
	defer l.Close()
	require.Zero(t, l.Recovery().SegmentsDeleted)
	require.EqualValues(t, 2, l.LogStartOffset())
	require.EqualValues(t, 4, l.LogEndOffset(), "the segments past the gap are kept")
	require.Equal(t, []string{"c", "d"}, values(readAll(t, l, 2)))
}

// TestSyncFailedCheckpointInPlaceCountsAsWritten: a sync-failed checkpoint
// renamed into place whose directory fsync failed counts as written (see
// writeSyncFailed): the process does not remember the log as one whose
// checkpoint it could not write, and the next Open finds the checkpoint
// and writes the tail anew.
func TestSyncFailedCheckpointInPlaceCountsAsWritten(t *testing.T) {
	var armed, denyDir atomic.Bool
	mem := vfs.NewMem()
	e := newEnv(t)
	e.fs = vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			denyDir.Store(true)
			return vfs.ErrInjected
		}
		if op == vfs.OpSyncDir && denyDir.Load() {
			return vfs.ErrInjected
		}
		return nil
	}))
	l := e.open(Config{})
	appendOK(t, l, valueBatch(t, 1, "one"))
	armed.Store(true)
	_, err := l.Append(context.Background(), valueBatch(t, 1, "two"), AppendOptions{})
	require.ErrorIs(t, err, ErrLogFenced)
	_, err = mem.Stat(filepath.Join(e.dir, syncFailedFile))
	require.NoError(t, err, "in place")
	_, remembered := failedLogs.lookup(l.failedKey)
	require.False(t, remembered)
	denyDir.Store(false)
	require.NoError(t, l.Close())

	l = e.open(Config{})
	defer l.Close()
	require.Positive(t, l.Recovery().RewrittenBytes)
}

// TestOpenWithoutRecoveryPointKeepsSegmentsAfterAShortOne: beside no
// recovery-point file (segments copied from Kafka, whose cleaner may
// remove a segment's last batch), a rolled segment whose batches end
// below the next one's base is left as it is: not taken for one that
// lost its last batches in a crash, with every later segment removed.
func TestOpenWithoutRecoveryPointKeepsSegmentsAfterAShortOne(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, ts, "a"))
	size := l.Size()
	appendOK(t, l, valueBatch(t, ts, "b")) // segment 0 holds 0-1
	require.NoError(t, l.Roll())
	appendOK(t, l, valueBatch(t, ts, "c"))
	require.NoError(t, l.Roll())
	appendOK(t, l, valueBatch(t, ts, "d")) // segments 2 and 3
	require.NoError(t, l.Discard())
	require.NoError(t, e.fs.Remove(filepath.Join(e.dir, recoveryPointFile)))
	first := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix))
	writeMemFile(t, e.fs, first, readAllFile(t, e.fs, first)[:size]) // "b" gone

	l = e.open(cfg)
	defer l.Close()
	info := l.Recovery()
	require.Zero(t, info.SegmentsDeleted, "%+v", info)
	require.Equal(t, 3, l.Segments())
	require.EqualValues(t, 4, l.LogEndOffset())
	require.Equal(t, []string{"a", "c", "d"}, values(readAll(t, l, 0)))
}

// TestOpenIgnoresDotFiles: any name that starts with a dot is an OS's
// (macOS's .DS_Store and ._ files, NFS's .nfs ones): Open ignores it in
// a log's directory and leaves it there.
func TestOpenIgnoresDotFiles(t *testing.T) {
	names := []string{".DS_Store", "._00000000000000000000.log", ".nfs0001", ".x"}
	for _, name := range names {
		require.True(t, SystemFile(name), name)
		require.True(t, IsLogFile(name), name)
	}
	e := newEnv(t)
	l := e.open(Config{})
	appendOK(t, l, valueBatch(t, 1, "a"))
	require.NoError(t, l.Close())
	for _, name := range names {
		writeMemFile(t, e.fs, filepath.Join(e.dir, name), []byte("x"))
	}
	l = e.open(Config{})
	defer l.Close()
	require.EqualValues(t, 1, l.LogEndOffset())
	for _, name := range names {
		_, err := e.fs.Stat(filepath.Join(e.dir, name))
		require.NoError(t, err, name)
	}
}

// TestCleanOpenRemovesSnapshotsPastTheEnd: a producer-state snapshot past
// the log end beside a clean-shutdown marker (no Close leaves one: put
// there by hand, or with other files than the log's) describes batches
// the log does not hold: a clean Open removes it too, before appends
// pass its offset and the next Open after a crash would load it.
func TestCleanOpenRemovesSnapshotsPastTheEnd(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for seq := range int32(3) {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 0-2
	}
	require.NoError(t, l.Close())
	snap, err := readMemFile(e.fs, filepath.Join(e.dir, snapshotName(3)))
	require.NoError(t, err)
	writeMemFile(t, e.fs, filepath.Join(e.dir, snapshotName(10)), snap)

	l = e.open(cfg)
	defer l.Close()
	require.True(t, l.Recovery().Clean)
	offs, _ := e.snapshotFiles(t)
	require.NotContains(t, offs, int64(10))
}

// TestCloseCheckpointsTheLogStartOfItsFirstSegment: a log whose directory
// holds no log start offset checkpoint starts at its first segment's
// base (segments copied in): Close checkpoints that start, so that the
// log never starts lower again, even once its segment files are lost.
func TestCloseCheckpointsTheLogStartOfItsFirstSegment(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, vfs.MkdirAllDurable(e.fs, e.dir, 0o755))
	require.NoError(t, writeOffset(e.fs, e.dir, logStartFile, 100))
	l := e.open(Config{})
	appendOK(t, l, valueBatch(t, 1, "a")) // 100
	require.NoError(t, l.Close())
	require.NoError(t, e.fs.Remove(filepath.Join(e.dir, logStartFile)))

	l = e.open(Config{})
	require.EqualValues(t, 100, l.LogStartOffset())
	require.NoError(t, l.Close())
	start, err := readOffset(e.fs, e.dir, logStartFile, -1)
	require.NoError(t, err)
	require.EqualValues(t, 100, start)
}

// TestCleanMarkerOfAnotherMaxTimestampOffset: a clean-shutdown marker
// whose offset of the max timestamp is not the active segment's, all else
// in it being theirs, is of another moment than the files: recovered as
// after a crash.
func TestCleanMarkerOfAnotherMaxTimestampOffset(t *testing.T) {
	requireForgedMarkerRecovered(t, Config{Sync: SyncAlways}, func(i int) int64 { return 1_700_000_000_000 + int64(i) }, func(mk *cleanMarker) {
		require.EqualValues(t, 2, mk.maxTimestampOffset) // the max at 2
		mk.maxTimestampOffset = 1
	})
}

// requireForgedMarkerRecovered closes a log of three records (a, b and c,
// record i stamped ts(i)) cleanly, changes its clean-shutdown marker with
// forge, and opens it again: the marker is of another moment than the
// files, and the log is recovered as after a crash (its one segment
// scanned), whole.
func requireForgedMarkerRecovered(t *testing.T, cfg Config, ts func(i int) int64, forge func(mk *cleanMarker)) {
	t.Helper()
	e := newEnv(t)
	l := e.open(cfg)
	for i, v := range []string{"a", "b", "c"} {
		appendOK(t, l, valueBatch(t, ts(i), v))
	}
	require.NoError(t, l.Close())
	mk, why, err := readMarker(e.fs, e.dir)
	require.NoError(t, err)
	require.Empty(t, why)
	forge(&mk)
	writeMemFile(t, e.fs, filepath.Join(e.dir, cleanShutdownFile), appendMarker(nil, mk))

	l = e.open(cfg)
	defer l.Close()
	info := l.Recovery()
	require.False(t, info.Clean, "%+v", info)
	require.Equal(t, 1, info.SegmentsScanned, "%+v", info)
	require.EqualValues(t, 3, l.LogEndOffset())
	require.Equal(t, []string{"a", "b", "c"}, values(readAll(t, l, 0)))
}
