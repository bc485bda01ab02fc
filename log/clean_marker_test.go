package log

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestOpenRemovesTheCleanShutdownMarkerWhenItScans: a log closed cleanly
// whose directory also holds what a failed write left (a checkpoint's
// .tmp file; a failed snapshot write in an fsync is logged and the log
// goes on) is opened as after a crash — Open removes the file and scans —
// and the clean-shutdown marker must go too. It stayed: the next crash
// was taken for a clean shutdown at the log end of that Close, and Open
// refused the records appended since as a corrupt batch past it.
func TestOpenRemovesTheCleanShutdownMarkerWhenItScans(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a", "b")) // 0-1
	require.NoError(t, l.Close())
	f, err := e.fs.Create(filepath.Join(e.dir, snapshotName(2)+tmpSuffix))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	l = e.open(cfg)
	require.False(t, l.Recovery().Clean, "a leftover .tmp file: scanned")
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "c")) // 2, fsynced
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "d")) // 3, fsynced

	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	l.Close()
	l2, err := Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock})
	require.NoError(t, err, "open after a crash")
	defer l2.Close()
	require.False(t, l2.Recovery().Clean, "a crash taken for a clean shutdown")
	require.EqualValues(t, 4, l2.LogEndOffset())
	require.Len(t, readAll(t, l2, 0), 4)
}
