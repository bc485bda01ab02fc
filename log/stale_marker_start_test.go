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
// the clean Close, never synced, lost to the crash. Such a marker is stale
// (a clean Close writes a start at most its end), and the log is emptied
// as after a crash with a start past the end (see
// TestLogStartPastTheRecoveredEnd), as Kafka's LogLoader does whether the
// shutdown was clean or not: a new segment at the log start, which stays.
// Open once took the log for closed cleanly and brought the start down to
// the end in memory only (after the next crash the start moved above the
// records appended, and synced, in between, hiding them); then, as after
// a crash, on disk too.
func TestStaleMarkerLogStartPastTheEnd(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncNever}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, ts, "a", "b")) // 0-1
	require.NoError(t, l.Close())

	l = e.open(cfg)
	appendOK(t, l, valueBatch(t, ts, "c", "d")) // 2-3, never synced
	_, err := l.DeleteRecordsBefore(context.Background(), 4)
	require.NoError(t, err)
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	l.Close()
	forgeCleanMarker(t, e.fs, e.dir) // the stale marker

	l = e.open(cfg)
	require.EqualValues(t, 4, l.LogEndOffset())
	require.EqualValues(t, 4, l.LogStartOffset())
	require.False(t, l.Recovery().Clean, "a start past the end: the marker is stale")
	require.Equal(t, 1, l.Recovery().SegmentsDeleted)
	names, err := e.fs.List(e.dir)
	require.NoError(t, err)
	require.NotContains(t, names, cleanShutdownFile, "the stale marker goes")
	res := appendOK(t, l, valueBatch(t, ts, "e", "f", "g")) // 4-6
	require.EqualValues(t, 4, res.FirstOffset)
	require.NoError(t, l.Flush(context.Background()))
	l = e.crashReopen(l, cfg)
	defer l.Close()
	require.EqualValues(t, 7, l.LogEndOffset())
	require.EqualValues(t, 4, l.LogStartOffset())
	recs := readAll(t, l, l.LogStartOffset())
	require.Len(t, recs, 3)
	require.Equal(t, "e", string(recs[0].Value))
}
