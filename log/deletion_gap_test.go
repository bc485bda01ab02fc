package log

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
)

// TestOpenKeepsSegmentsPastADeletionGap: a deletion of segments
// (DeleteRecords, retention) removes them oldest first, and a crash may
// keep the removal of a later one and not of an earlier one (and an
// older runnel went on past a removal that failed: see
// TestDeleteSegmentsStopsAtAFailedRemoval): either leaves a gap between
// the segments it did not remove, below the log start offset it had
// checkpointed first.
// Open took such a gap, past the recovery point, for a rolled segment
// that lost its last batches in a crash, and removed every later
// segment: acknowledged, fsynced records at and past the log start were
// lost. The crash simulation with transient faults found it (seed
// 131001656: a DeleteRecords whose removal of the first segment failed).
func TestOpenKeepsSegmentsPastADeletionGap(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, SegmentBytes: 100}
	l := e.open(cfg)
	appendEach(t, l, ts, "a", "b", "c", "d", "e") // a segment each: bases 0 to 4
	require.Equal(t, 5, l.Segments())
	require.NoError(t, l.Discard()) // no clean-shutdown marker: Open recovers
	// What the cut-short deletion of the segments below 3 left: the log
	// start checkpointed at 3, segment 1 removed, segments 0 and 2 not;
	// and a recovery point from before it, at segment 0's end.
	require.NoError(t, segment.RemoveFiles(e.fs, e.dir, 1, segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix))
	require.NoError(t, writeOffset(e.fs, e.dir, logStartFile, 3))
	require.NoError(t, writeOffset(e.fs, e.dir, recoveryPointFile, 1))

	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 3, l.LogStartOffset())
	require.EqualValues(t, 5, l.LogEndOffset(), "the segments past the gap are kept")
	recs := readAll(t, l, 3)
	require.Len(t, recs, 2)
	require.Equal(t, "d", string(recs[0].Value))
	require.Equal(t, "e", string(recs[1].Value))
}

// TestOpenKeepsSegmentsPastADeletionGapAtTheLogStart: as
// TestOpenKeepsSegmentsPastADeletionGap, with the log start offset at the
// base of the segment past the gap (the deletion removed the segments
// below it, and a crash kept the removal of a later one only): that
// segment holds the log start's records, and stays with those after it.
func TestOpenKeepsSegmentsPastADeletionGapAtTheLogStart(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, SegmentBytes: 100}
	l := e.open(cfg)
	appendEach(t, l, ts, "a", "b", "c", "d") // a segment each: bases 0 to 3
	require.NoError(t, l.Discard())
	require.NoError(t, segment.RemoveFiles(e.fs, e.dir, 1, segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix))
	require.NoError(t, writeOffset(e.fs, e.dir, logStartFile, 2))
	require.NoError(t, writeOffset(e.fs, e.dir, recoveryPointFile, 1))

	l = e.open(cfg)
	defer l.Close()
	require.Zero(t, l.Recovery().SegmentsDeleted)
	require.EqualValues(t, 2, l.LogStartOffset())
	require.EqualValues(t, 4, l.LogEndOffset(), "the segments past the gap are kept")
	require.Equal(t, []string{"c", "d"}, values(readAll(t, l, 2)))
}
