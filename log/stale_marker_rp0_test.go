package log

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestStaleMarkerRecoveryPointZero: a stale clean-shutdown marker (see
// TestOpenStaleCleanShutdownMarker) beside a recovery point of 0 — a
// truncation into the first segment lowered it there after the clean
// Close — and one non-empty segment at base 0. A clean Close at 0 leaves
// an empty log, but Open checks where the active segment ends only
// against a positive recovery point (segment.OpenOptions.End): it took
// the log for closed cleanly and left the checkpoint at 0, below the
// records it had acknowledged before the crash, so that the next crash's
// Open took them for a torn write: the last one gone bad on disk was cut,
// instead of reported.
func TestStaleMarkerRecoveryPointZero(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	appendEach(t, l, ts, "a", "b", "c") // 0, 1, 2
	require.NoError(t, l.Close())

	l = e.open(cfg)
	_, err := l.TruncateTo(1)
	require.NoError(t, err)
	appendOK(t, l, valueBatch(t, ts, "x")) // 1
	yPos := (*l.segs.Load())[0].Size()
	appendOK(t, l, valueBatch(t, ts, "y")) // 2
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	l.Close()
	rp, err := readOffset(e.fs, e.dir, recoveryPointFile, -1)
	require.NoError(t, err)
	require.EqualValues(t, 0, rp, "the truncation lowered the recovery point")
	forgeCleanMarker(t, e.fs, e.dir) // the stale marker

	l = e.open(cfg)
	require.EqualValues(t, 3, l.LogEndOffset())
	require.False(t, l.Recovery().Clean, "a clean Close at 0 leaves an empty log: the marker is stale")

	// y's records go bad on disk; then a crash.
	f, err := e.fs.Open(filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix)))
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{0xff}, yPos+record.HeaderSize+2)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	l.Close()

	l, err = Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock})
	if err == nil {
		defer l.Close()
		t.Fatalf("acknowledged records cut as a torn write: opened with log end %d", l.LogEndOffset())
	}
	require.ErrorIs(t, err, record.ErrCorrupt)
}
