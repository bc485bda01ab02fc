package log

import (
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestSnapshotRowsOutOfRange: a snapshot row that rows never writes is
// malformed (ErrBadCheckpoint; Open then takes an older snapshot or the
// log itself), not read cut to its field's type or kept as a producer
// that cannot exist. Found by FuzzSnapshot: a producer id of -7 was read
// as a producer's, and an epoch of 70000 as 4464.
func TestSnapshotRowsOutOfRange(t *testing.T) {
	const now = 1_700_000_000_000_000_000
	for _, row := range [][]int64{
		{-7, 1, 0, 4, 10, 14},      // a negative producer id
		{-1, 1, 0, 4, 10, 14},      // the header's mark again
		{3, 70000, 0, 4, 10, 14},   // an epoch beyond int16
		{3, -32769, 0, 4, 10, 14},  // an epoch below int16
		{3, 1, 1 << 40, 4, 10, 14}, // a sequence beyond int32
		{3, 1, 0, -4, 10, 14},      // a negative sequence
		{3, 1, 0, 4, 14, 10},       // offsets out of order
		{3, 1, 0, 4, -10, 14},      // a negative offset
		{lastAppendRow, -3, now, 0, 0, 0},
		{appendTimeRow, -3, 5, 1000, 0, 0}, // a negative producer id
		{appendTimeRow, 3, -5, 1000, 0, 0}, // a negative offset
		{appendTimeRow, 3, 5, -2, 0, 0},    // a time below -1
	} {
		fs := vfs.NewMem()
		require.NoError(t, fs.MkdirAll("/d", 0o755))
		rows := [][]int64{{-1, 40, 0, 0, 0, 0}, {3, 1, 5, 5, 5, 5}, row}
		require.NoError(t, writeCheckpoint(fs, "/d", snapshotName(40), checkpointV1, rows))
		l := &Log{fs: fs, dir: "/d"}
		_, err := l.readSnapshot(snapshotFile{off: 40, name: snapshotName(40)}, now)
		require.ErrorIs(t, err, ErrBadCheckpoint, "%v", row)
	}
	// A producer's rows of two epochs: rows writes one.
	fs := vfs.NewMem()
	require.NoError(t, fs.MkdirAll("/d", 0o755))
	rows := [][]int64{{-1, 40, 0, 0, 0, 0}, {3, 1, 0, 0, 1, 1}, {3, 2, 1, 1, 2, 2}}
	require.NoError(t, writeCheckpoint(fs, "/d", snapshotName(40), checkpointV1, rows))
	l := &Log{fs: fs, dir: "/d"}
	_, err := l.readSnapshot(snapshotFile{off: 40, name: snapshotName(40)}, now)
	require.ErrorIs(t, err, ErrBadCheckpoint)
	// What rows writes reads back.
	rows = [][]int64{{-1, 40, 0, 0, 0, 0}, {3, 1, 2147483647, 1, 10, 12}, {lastAppendRow, 3, now - 1, 0, 0, 0}, {appendTimeRow, 3, 10, 1_700_000_000_000, 0, 0}}
	require.NoError(t, writeCheckpoint(fs, "/d", snapshotName(40), checkpointV1, rows))
	ps, err := l.readSnapshot(snapshotFile{off: 40, name: snapshotName(40)}, now)
	require.NoError(t, err)
	require.Equal(t, rows[1:], ps.rows())
}

// TestSnapshotAppendTimeRowsMatching: an append-time row (-3) gives its
// time to the batch of its producer that begins at its offset, wherever
// it lies among the rows (before the producer's rows too); a row for a
// batch the snapshot does not hold (another offset, a producer it does
// not know, a batch pushed out of the last maxProducerBatches) and a row
// of time -1 give nothing: the batch stays unknownAppendTime, its time
// read from the log when a duplicate asks. Of two rows for one batch the
// last wins. (Review of the rows -3 of diff22; no bug found.)
func TestSnapshotAppendTimeRowsMatching(t *testing.T) {
	const now = 1_700_000_000_000_000_000
	rows := [][]int64{
		{-1, 40, 0, 0, 0, 0},
		{appendTimeRow, 3, 20, 7000, 0, 0}, // before its producer's rows
		{3, 1, 0, 0, 10, 10},               // pushed out by the five after it
		{3, 1, 1, 1, 20, 20},
		{3, 1, 2, 2, 21, 21},
		{3, 1, 3, 3, 22, 22},
		{3, 1, 4, 4, 23, 23},
		{3, 1, 5, 5, 24, 24},
		{appendTimeRow, 3, 10, 6000, 0, 0}, // the batch pushed out
		{appendTimeRow, 3, 25, 6500, 0, 0}, // no batch at 25
		{appendTimeRow, 9, 20, 6600, 0, 0}, // no producer 9
		{appendTimeRow, 3, 21, -1, 0, 0},   // -1: none
		{appendTimeRow, 3, 22, 8000, 0, 0},
		{appendTimeRow, 3, 22, 8100, 0, 0}, // again: the last wins
	}
	fs := vfs.NewMem()
	require.NoError(t, fs.MkdirAll("/d", 0o755))
	require.NoError(t, writeCheckpoint(fs, "/d", snapshotName(40), checkpointV1, rows))
	l := &Log{fs: fs, dir: "/d"}
	ps, err := l.readSnapshot(snapshotFile{off: 40, name: snapshotName(40)}, now)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	got := map[int64]int64{}
	for _, b := range ps[3].batches {
		got[b.firstOffset] = b.appendTime
	}
	require.Equal(t, map[int64]int64{20: 7000, 21: unknownAppendTime, 22: 8100, 23: unknownAppendTime, 24: unknownAppendTime}, got)
	// Written back: one row per batch with a time, after the others.
	out := ps.rows()
	require.Equal(t, [][]int64{{appendTimeRow, 3, 20, 7000, 0, 0}, {appendTimeRow, 3, 22, 8100, 0, 0}}, out[len(out)-2:])
}
