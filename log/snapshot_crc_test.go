package log

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// replaceMemFile makes data the content of the file name in fsys.
func replaceMemFile(t *testing.T, fsys vfs.FS, name string, data []byte) {
	t.Helper()
	f, err := fsys.Create(name)
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
}

// TestOpenSkipsASnapshotWithADigitChanged: a snapshot changed in a way
// that still parses (one digit of a remembered batch: its offset, its
// sequence number, its producer's epoch) fails its checksum, and is
// skipped as an unparseable one is: Open loads the older snapshot and
// replays the batches after it, and retries are answered as they were
// before the change. Loaded, the changed snapshot answered a retry with
// the wrong offset, refused a new batch as fenced or out of order, or
// took a new batch for a duplicate.
func TestOpenSkipsASnapshotWithADigitChanged(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for seq := range int32(3) {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 0-2
	}
	require.NoError(t, l.Roll()) // a snapshot at 3
	for seq := int32(3); seq < 6; seq++ {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 3-5
	}
	require.NoError(t, l.Roll()) // a snapshot at 6: the newest, holding all of the state
	name := filepath.Join(e.dir, snapshotName(6))
	good := readWhole(t, e.fs, name)
	// The rows of the batches the producer's window holds, 1-5: id, epoch,
	// first and last sequence, first and last offset.
	require.Contains(t, string(good), "\n1 0 1 1 1 1\n1 0 2 2 2 2\n1 0 3 3 3 3\n1 0 4 4 4 4\n1 0 5 5 5 5\n")

	for _, tc := range []struct{ what, from, to string }{
		{"its offset: a retry answered at 8", "\n1 0 5 5 5 5\n", "\n1 0 5 5 8 5\n"},
		{"its epoch: the producer fenced", "\n1 0 1 1 1 1\n", "\n1 1 1 1 1 1\n"},
		{"its last sequence 4: a retry appended again", "\n1 0 5 5 5 5\n", "\n1 0 5 4 5 5\n"},
		{"its last sequence 6: a retry refused", "\n1 0 5 5 5 5\n", "\n1 0 5 6 5 5\n"},
	} {
		mem := e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
		changed := strings.Replace(string(good), tc.from, tc.to, 1)
		require.NotEqual(t, string(good), changed)
		replaceMemFile(t, mem, name, []byte(changed))

		l2, err := Open(e.dir, cfg, Options{FS: mem, Clock: e.clock})
		require.NoError(t, err, tc.what)
		info := l2.Recovery()
		require.EqualValues(t, 3, info.ProducerSnapshot, "%s: %+v", tc.what, info)
		require.Equal(t, 3, info.ProducerBatchesReplayed, "%s: %+v", tc.what, info)
		for _, seq := range []int32{3, 5} {
			dup := appendOK(t, l2, idemBatch(t, 1, 0, seq, 1))
			require.True(t, dup.Duplicate, "%s: sequence %d", tc.what, seq)
			require.EqualValues(t, seq, dup.FirstOffset, "%s: sequence %d", tc.what, seq)
		}
		res := appendOK(t, l2, idemBatch(t, 1, 0, 6, 1))
		require.False(t, res.Duplicate, tc.what)
		require.EqualValues(t, 6, res.FirstOffset, tc.what)
		_, err = l2.Append(context.Background(), idemBatch(t, 1, 0, 8, 1), AppendOptions{})
		require.ErrorIs(t, err, ErrOutOfOrderSequence, tc.what)
		require.NoError(t, l2.Close())
	}
	require.NoError(t, l.Close())
}

// reopenWithOlderSnapshot writes producer 1's batches of sequence 0 to 3
// (offsets 0-3) to a new log and closes it (a snapshot at 4); older then
// makes that snapshot an older runnel's, and unless clean the log is made
// one that was not closed cleanly. Reopened, the log loads the snapshot
// at 4, replays nothing, and answers a retry of sequence 2 as a duplicate
// at offset 2; reopenWithOlderSnapshot returns it open.
func reopenWithOlderSnapshot(t *testing.T, clean bool, older func(e *env)) (*env, Config, *Log) {
	t.Helper()
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for seq := range int32(4) {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 0-3
	}
	require.NoError(t, l.Close()) // a snapshot at 4
	older(e)
	if !clean {
		require.NoError(t, e.fs.Remove(filepath.Join(e.dir, cleanShutdownFile)))
	}

	l = e.open(cfg)
	info := l.Recovery()
	require.Equal(t, clean, info.Clean)
	require.EqualValues(t, 4, info.ProducerSnapshot, "clean %v: %+v", clean, info)
	require.Zero(t, info.ProducerBatchesReplayed, "clean %v", clean)
	dup := appendOK(t, l, idemBatch(t, 1, 0, 2, 1))
	require.True(t, dup.Duplicate, "clean %v", clean)
	require.EqualValues(t, 2, dup.FirstOffset, "clean %v", clean)
	return e, cfg, l
}

// TestOpenLoadsASnapshotWithoutChecksum: a snapshot written by a runnel
// before snapshots carried a checksum (version 0, Kafka's checkpoint
// layout) still loads, and the next snapshot written is of the new
// version.
func TestOpenLoadsASnapshotWithoutChecksum(t *testing.T) {
	for _, clean := range []bool{true, false} {
		e, _, l := reopenWithOlderSnapshot(t, clean, func(e *env) {
			// The snapshot as the older runnel wrote it: no checksum line,
			// no producer's last append (older still); in the unclean
			// case, CRLF line ends too.
			old := "0\n5\n-1 4 0 0 0 0\n1 0 0 0 0 0\n1 0 1 1 1 1\n1 0 2 2 2 2\n1 0 3 3 3 3\n"
			if !clean {
				old = strings.ReplaceAll(old, "\n", "\r\n")
			}
			replaceMemFile(t, e.fs, filepath.Join(e.dir, snapshotName(4)), []byte(old))
		})
		res := appendOK(t, l, idemBatch(t, 1, 0, 4, 1))
		require.False(t, res.Duplicate, "clean %v", clean)
		require.EqualValues(t, 4, res.FirstOffset, "clean %v", clean)
		require.NoError(t, l.Close()) // a snapshot at 5
		data := readWhole(t, e.fs, filepath.Join(e.dir, snapshotName(5)))
		require.True(t, bytes.HasPrefix(data, []byte("1\n")), "clean %v: %q", clean, data)
	}
}
