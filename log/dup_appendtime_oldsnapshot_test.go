package log

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// stripAppendTimeRows rewrites every producer-state snapshot in e's log
// directory as an older runnel wrote them: without the append-time rows
// (-3), so that the batches load with unknownAppendTime and a duplicate's
// answer comes from the log (appendTimeOf).
func stripAppendTimeRows(t *testing.T, e *env) {
	t.Helper()
	names, err := e.fs.List(e.dir)
	require.NoError(t, err)
	stripped := 0
	for _, off := range snapshotOffsets(names) {
		l := &Log{fs: e.fs, dir: e.dir}
		ps, err := l.readSnapshot(snapshotFile{off: off, name: snapshotName(off)}, e.clock.Now().UnixNano())
		require.NoError(t, err)
		rows := [][]int64{{-1, off, 0, 0, 0, 0}}
		for _, r := range ps.rows() {
			if r[0] == appendTimeRow {
				stripped++
				continue
			}
			rows = append(rows, r)
		}
		require.NoError(t, writeCheckpoint(e.fs, e.dir, snapshotName(off), checkpointV1, rows))
	}
	require.NotZero(t, stripped, "no append-time row to strip: the test would not reach appendTimeOf")
}

// TestDuplicateAppendTimeFromOlderSnapshot: after a reopen onto
// snapshots without append-time rows (an older runnel's), a retry of a
// LogAppendTime batch is answered with the time stamped on that batch,
// read from the log: the batch asked for and not its neighbour (each
// batch has its own time), also when the log start offset lies inside
// it; a batch wholly below the log start is gone, and answers -1.
func TestDuplicateAppendTimeFromOlderSnapshot(t *testing.T) {
	e := newEnv(t)
	app := Config{TimestampType: LogAppendTime}
	l := e.open(app)
	var times []int64
	for seq := int32(0); seq < 12; seq += 3 { // four batches of 3: offsets 0-2, 3-5, 6-8, 9-11
		res := appendOK(t, l, idemBatch(t, 1, 0, seq, 3))
		times = append(times, res.LogAppendTime)
		e.clock.Advance(time.Second)
	}
	require.Len(t, times, 4)
	for i := 1; i < len(times); i++ {
		require.Greater(t, times[i], times[i-1])
	}
	start, err := l.DeleteRecordsBefore(context.Background(), 4) // the first batch gone, the second cut into
	require.NoError(t, err)
	require.EqualValues(t, 4, start)
	require.NoError(t, l.Close())
	stripAppendTimeRows(t, e)
	e.clock.Advance(time.Minute)

	l = e.open(app)
	defer l.Close()
	for i, want := range map[int]int64{1: times[1], 2: times[2], 3: times[3]} {
		res := appendOK(t, l, idemBatch(t, 1, 0, int32(3*i), 3))
		require.True(t, res.Duplicate, "batch %d", i)
		require.EqualValues(t, 3*i, res.FirstOffset, "batch %d", i)
		require.Equal(t, want, res.LogAppendTime, "batch %d: its own append time, read from the log", i)
	}
	// The first batch is below the log start: the log no longer holds it.
	// (Its sequence numbers are still remembered, so it is a duplicate.)
	res := appendOK(t, l, idemBatch(t, 1, 0, 0, 3))
	require.True(t, res.Duplicate)
	require.EqualValues(t, -1, res.LogAppendTime)
}
