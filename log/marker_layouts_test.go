package log

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/segment"
)

// TestMarkerLayouts: the clean-shutdown marker a Close writes records the
// active segment's time index entry count as its fifth field, and Open
// trusts it; a marker of four fields, without the count, as a runnel of
// before that wrote it, is still read and trusted (the count unchecked,
// -1); and a runnel that reads four fields (the layout of before) does not
// take a marker of five for one of its own: it recovers the active
// segment, as after a crash, rather than misread it.
func TestMarkerLayouts(t *testing.T) {
	const ts int64 = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, IndexIntervalBytes: 1} // an index entry a batch
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, ts, "a"))
	appendOK(t, l, valueBatch(t, ts+100, "b"))
	appendOK(t, l, valueBatch(t, ts+50, "c"))
	require.NoError(t, l.Close())

	m, why, err := readMarker(e.fs, e.dir)
	require.NoError(t, err)
	require.Empty(t, why)
	tidx, err := readMemFile(e.fs, filepath.Join(e.dir, segment.FileName(0, segment.TimeIndexSuffix)))
	require.NoError(t, err)
	require.Positive(t, m.timeEntries)
	require.EqualValues(t, len(tidx)/index.TimeEntrySize, m.timeEntries, "the entries Close left")
	path := filepath.Join(e.dir, cleanShutdownFile)
	five, err := readMemFile(e.fs, path)
	require.NoError(t, err)
	_, err = parseCheckpoint(five, oldMarkerWidth, path)
	require.ErrorIs(t, err, ErrBadCheckpoint, "a runnel that reads four fields refuses five")

	l = e.open(cfg)
	require.True(t, l.Recovery().Clean, "the marker Close wrote")
	require.NoError(t, l.Close())

	m, _, err = readMarker(e.fs, e.dir)
	require.NoError(t, err)
	writeMemFile(t, e.fs, path, appendCheckpoint(nil, checkpointV1,
		[][]int64{{m.end, m.activeBase, m.maxTimestamp, m.maxTimestampOffset}}))
	old, why, err := readMarker(e.fs, e.dir)
	require.NoError(t, err)
	require.Empty(t, why)
	require.Equal(t, cleanMarker{end: m.end, activeBase: m.activeBase, maxTimestamp: m.maxTimestamp,
		maxTimestampOffset: m.maxTimestampOffset, timeEntries: -1}, old)
	l = e.open(cfg)
	require.True(t, l.Recovery().Clean, "a marker of four fields is trusted")
	segs := *l.segs.Load()
	require.EqualValues(t, ts+100, segs[len(segs)-1].MaxTimestamp())
	require.NoError(t, l.Close())
}
