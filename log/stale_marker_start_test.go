package log

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestStaleMarkerLogStartPastTheEnd: a clean-shutdown marker put back
// after a crash (see TestOpenStaleCleanShutdownMarker) whose recovery point
// is where the segments end, with a log start offset checkpoint past that
// end — DeleteRecordsBefore moved the start up to records appended after
// the clean Close, never synced, lost to the crash. Open takes the log
// for closed cleanly and brings the start down to the end in memory only:
// the checkpoint stayed past the end, so that the Open after the next
// crash moved the start above the records appended, and synced, in
// between, hiding them. Such a marker is stale (a clean Close writes a
// start at most its end): the log is now opened as after a crash.
func TestStaleMarkerLogStartPastTheEnd(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncNever}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, ts, "a", "b")) // 0-1
	require.NoError(t, l.Close())

	l = e.open(cfg)
	appendOK(t, l, valueBatch(t, ts, "c", "d")) // 2-3, never synced
	_, err := l.DeleteRecordsBefore(4)
	require.NoError(t, err)
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	l.Close()
	forgeCleanMarker(t, e.fs, e.dir) // the stale marker

	l = e.open(cfg)
	require.EqualValues(t, 2, l.LogEndOffset())
	require.EqualValues(t, 2, l.LogStartOffset())
	require.False(t, l.Recovery().Clean, "a start past the end: the marker is stale")
	appendOK(t, l, valueBatch(t, ts, "e", "f", "g")) // 2-4
	require.NoError(t, l.Flush(context.Background()))
	l = e.crashReopen(l, cfg)
	defer l.Close()
	require.EqualValues(t, 5, l.LogEndOffset())
	require.EqualValues(t, 2, l.LogStartOffset(), "the records appended after the open are hidden")
	require.Len(t, readAll(t, l, l.LogStartOffset()), 3)
}
