package log

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

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
