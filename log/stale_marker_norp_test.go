package log

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestCleanMarkerWithoutRecoveryPointFile: a clean-shutdown marker
// beside no recovery-point checkpoint at all (a directory copied without
// it) is trusted, as Kafka trusts its marker, not taken for a stale one
// and recovered from offset 0: that recovery would take a batch gone bad
// in a sealed segment for a torn tail, cut it, and remove every segment
// after it, losing sound records; trusted, the bad batch is reported
// when it is read, and the rest is read.
func TestCleanMarkerWithoutRecoveryPointFile(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, SegmentBytes: 100}
	l := e.open(cfg)
	appendEach(t, l, ts, "a", "b", "c") // a segment each
	require.NoError(t, l.Close())
	require.NoError(t, e.fs.Remove(filepath.Join(e.dir, recoveryPointFile)))
	first := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix))
	data := readAllFile(t, e.fs, first)
	data[len(data)-1] ^= 0xff // the value of the first segment's one batch: its CRC fails
	writeMemFile(t, e.fs, first, data)

	l = e.open(cfg)
	require.True(t, l.Recovery().Clean, "the marker is trusted")
	require.EqualValues(t, 3, l.LogEndOffset(), "no segment removed")
	recs := readAll(t, l, 1)
	require.Len(t, recs, 2)
	require.Equal(t, "b", string(recs[0].Value))
	require.Equal(t, "c", string(recs[1].Value))
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
	appendEach(t, l, ts, "a", "b", "c") // 0, 1, 2
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
