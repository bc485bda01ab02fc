package log

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
)

// TestUntrustedMarkerWithoutRecoveryPoint: a clean-shutdown marker that
// Open does not trust, beside no recovery-point file (a directory copied
// without it, which a marker that parses stands in for with its log
// end): an older runnel's empty one, one that does not parse, or one
// whose max timestamp is not the active segment's. The first two were
// trusted before the marker recorded the log end: nothing was scanned.
// Not trusted since, they left the recovery point at 0, so that Open
// scanned every segment, as after a crash with nothing durable, and cut
// a batch gone bad in the first sealed segment as a torn write, with
// every segment after it. The Close that wrote the marker had sealed and
// synced the segments below the active one: only the active segment is
// scanned, as beside a recovery point.
func TestUntrustedMarkerWithoutRecoveryPoint(t *testing.T) {
	const ts = 1_700_000_000_000
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, e *env)
	}{
		{"older runnel's", func(t *testing.T, e *env) {
			writeMemFile(t, e.fs, filepath.Join(e.dir, cleanShutdownFile), nil)
		}},
		{"unreadable", func(t *testing.T, e *env) {
			writeMemFile(t, e.fs, filepath.Join(e.dir, cleanShutdownFile), []byte("1\n1\n3 3\n"))
		}},
		{"time index of another moment", func(t *testing.T, e *env) {
			writeMemFile(t, e.fs, filepath.Join(e.dir, segment.FileName(2, segment.TimeIndexSuffix)), nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := Config{Sync: SyncAlways, SegmentBytes: 100, IndexIntervalBytes: 1}
			l := e.open(cfg)
			appendEach(t, l, ts, "a", "b", "c") // a segment each
			require.NoError(t, l.Close())
			cfg.SegmentBytes = 0
			l = e.open(cfg)
			appendOK(t, l, valueBatch(t, ts+100, "d"))
			appendOK(t, l, valueBatch(t, ts+50, "e")) // segment 2 holds c, d and e
			require.Equal(t, 3, l.Segments())
			require.NoError(t, l.Close())
			tc.edit(t, e)
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
			require.Equal(t, 3, l.Segments())
			require.EqualValues(t, 5, l.LogEndOffset())
			recs := readAll(t, l, 1)
			require.Len(t, recs, 4)
			require.Equal(t, "b", string(recs[0].Value))
			off, ok, err := l.OffsetForTime(ts + 1)
			require.NoError(t, err)
			require.True(t, ok)
			require.EqualValues(t, 3, off)
		})
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
	appendEach(t, l, 1, "a", "b", "c") // a segment each
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
