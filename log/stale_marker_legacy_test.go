package log

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
)

// TestCleanMarkerOfOlderRunnelWithoutRecoveryPoint: an older runnel's
// empty marker beside no recovery-point file (a directory copied without
// it, which a marker that parses stands in for with its log end). Such a
// marker was trusted: nothing was scanned. Not trusted since the marker
// records the log end, it left the recovery point at 0, so that Open
// scanned every segment, as after a crash with nothing durable, and cut
// a batch gone bad in the first sealed segment as a torn write, with
// every segment after it. The Close that wrote the marker had sealed and
// synced the segments below the active one: only the active segment is
// scanned, as beside a recovery point.
func TestCleanMarkerOfOlderRunnelWithoutRecoveryPoint(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, SegmentBytes: 100}
	l := e.open(cfg)
	for _, v := range []string{"a", "b", "c", "d"} {
		appendOK(t, l, valueBatch(t, ts, v)) // a segment each
	}
	require.NoError(t, l.Close())
	writeMemFile(t, e.fs, filepath.Join(e.dir, cleanShutdownFile), nil)
	require.NoError(t, e.fs.Remove(filepath.Join(e.dir, recoveryPointFile)))
	first := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix))
	data := readAllFile(t, e.fs, first)
	data[len(data)-1] ^= 0xff // the value of the first segment's record: a bad CRC
	writeMemFile(t, e.fs, first, data)

	l = e.open(cfg)
	defer l.Close()
	info := l.Recovery()
	require.False(t, info.Clean)
	require.Equal(t, 1, info.SegmentsScanned, "the active segment alone")
	require.Zero(t, info.SegmentsDeleted)
	require.Equal(t, 4, l.Segments())
	require.EqualValues(t, 4, l.LogEndOffset())
	recs := readAll(t, l, 1)
	require.Len(t, recs, 3)
	require.Equal(t, "b", string(recs[0].Value))
}
