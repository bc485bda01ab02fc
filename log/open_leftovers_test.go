package log

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestCleanOpenRewritesAnUnreadableEndSnapshot: a log closed
// cleanly whose snapshot at the log end went bad (a digit changed: its
// checksum fails) opens cleanly, its producer state rebuilt from an older
// snapshot and the batches after it. That state is written as the
// snapshot at the end, as after any Open that did not load the end's: else
// compaction, free below the end, removes the producer's earlier batches,
// which no readable snapshot holds, and the Open after a crash, skipping
// the bad snapshot again, replays a log that no longer has them, and
// refuses a retry of one of them as out of order instead of answering it
// as a duplicate.
func TestCleanOpenRewritesAnUnreadableEndSnapshot(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, CleanupPolicy: Compact}
	l := e.open(cfg)
	for seq := range int32(5) {
		appendOK(t, l, keyedProducerBatch(t, seq, "k")) // 0-4, one key
	}
	require.NoError(t, l.Roll())  // a snapshot at 5; the segment of 0-4 sealed
	require.NoError(t, l.Close()) // the snapshot at 5 again, and the marker

	name := filepath.Join(e.dir, snapshotName(5))
	good := string(readWhole(t, e.fs, name))
	bad := strings.Replace(good, "\n1 0 3 3 3 3\n", "\n1 0 3 3 3 4\n", 1)
	require.NotEqual(t, good, bad)
	replaceMemFile(t, e.fs, name, []byte(bad))

	l = e.open(cfg)
	info := l.Recovery()
	require.True(t, info.Clean, "%+v", info)
	require.NotEqualValues(t, 5, info.ProducerSnapshot, "%+v", info)
	requireDuplicate(t, l, keyedProducerBatch(t, 3, "k"), 3)
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Equal(t, 4, res.RecordsRemoved, "%+v", res) // 0-3 go, the producer's last batch stays

	l = e.crashReopen(l, cfg)
	defer l.Close()
	requireDuplicate(t, l, keyedProducerBatch(t, 3, "k"), 3)
	requireDuplicate(t, l, keyedProducerBatch(t, 4, "k"), 4)
}

// TestOpenKeepsAForeignTmpFile: Open removes the temporary files
// the log leaves when a write is cut short (a checkpoint's, a snapshot's,
// a tail copy's: its own names with .tmp added), and refuses a directory
// holding a file no log writes with ErrNotLogDir, leaving it as it is —
// also one whose name merely ends in .tmp (IsLogFile says it is no log's,
// and the broker does not remove a directory holding it). An OS's file
// with .tmp added is ignored, as the OS's file is.
func TestOpenKeepsAForeignTmpFile(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a"))
	require.NoError(t, l.Close())
	for _, name := range []string{"notes.tmp", "00000000000000000000.tmp", recoveryPointFile + ".tmp.tmp"} {
		require.False(t, IsLogFile(name), name)
		mem := e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
		path := filepath.Join(e.dir, name)
		replaceMemFile(t, mem, path, []byte("someone's\n"))
		_, err := Open(e.dir, cfg, Options{FS: mem, Clock: e.clock})
		require.ErrorIs(t, err, ErrNotLogDir, name)
		require.Equal(t, "someone's\n", string(readWhole(t, mem, path)), name)
	}
	for _, name := range []string{recoveryPointFile + ".tmp", snapshotName(1) + ".tmp", ".DS_Store.tmp"} {
		mem := e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
		path := filepath.Join(e.dir, name)
		replaceMemFile(t, mem, path, []byte("cut short\n"))
		l, err := Open(e.dir, cfg, Options{FS: mem, Clock: e.clock})
		require.NoError(t, err, name)
		require.NoError(t, l.Close())
		_, err = mem.Stat(path)
		require.Equal(t, SystemFile(name), err == nil, "%s: %v", name, err)
	}
}

// TestOpenRefusesASwapGoneBadBeforeItRemovesAnything: a
// compaction's swap file (found when a crash came after its commit) is
// synced whole before it takes its name; one whose bytes went bad since
// (a batch's CRC fails, its last offset delta changed; bytes after its
// last batch; a batch below the one before it) is corrupt, and Open fails
// with record.ErrCorrupt before it changes anything. Its completion took
// the changed end for the swap's and removed the segments up to it, the
// active one too, acknowledged records with them, and then failed on the
// bad batch all the same. With the bad swap file removed, the log opens
// whole.
func TestOpenRefusesASwapGoneBadBeforeItRemovesAnything(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, CleanupPolicy: Compact}
	l := e.open(cfg)
	for _, v := range []string{"a", "b", "c"} {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, v))
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, v))
		require.NoError(t, l.Roll()) // segments at 0, 2, 4 and 6
	}
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "z")) // 6
	require.NoError(t, l.Close())
	seg0 := readWhole(t, e.fs, filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix)))
	second := int(record.BatchSize(seg0)) // position of the batch at 1

	for _, tc := range []struct {
		what   string
		change func([]byte) []byte
	}{
		{"a last offset delta changed", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[second+23:], 1000) // the batch at 1 said to end at 1001
			return b
		}},
		{"bytes after the last batch", func(b []byte) []byte { return append(b, make([]byte, record.HeaderSize)...) }},
		{"a batch below the one before it", func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[second:], 0)
			return b
		}},
	} {
		mem := e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
		swap := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix+swapSuffix))
		writeMemFile(t, mem, swap, tc.change(append([]byte(nil), seg0...)))
		before := memSnapshot(t, mem, e.dir)
		_, err := Open(e.dir, cfg, Options{FS: mem, Clock: e.clock})
		require.ErrorIs(t, err, record.ErrCorrupt, tc.what)
		require.Equal(t, before, memSnapshot(t, mem, e.dir), "%s: a refused Open changed the directory", tc.what)

		require.NoError(t, mem.Remove(swap))
		l, err := Open(e.dir, cfg, Options{FS: mem, Clock: e.clock})
		require.NoError(t, err, tc.what)
		require.Len(t, readAll(t, l, 0), 7, tc.what)
		require.NoError(t, l.Close())
	}
}
