package log

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// Tests that close gaps a mutation-testing pass over retention.go,
// producers.go and segment recovery found: each fails with a mutant of the
// code that the rest of the suite let through.

// TestDeleteRecordsBeforeNegative: any negative offset is refused as out of
// range, -1 too (a log whose start offset is 0 would otherwise take it for
// one at or below its start and answer 0, no error).
func TestDeleteRecordsBeforeNegative(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), "a", "b"))
	for _, off := range []int64{-1, -2, -1 << 62} {
		_, err := l.DeleteRecordsBefore(off)
		require.ErrorIs(t, err, ErrOffsetOutOfRange, "offset %d", off)
	}
	require.Zero(t, l.LogStartOffset())
}

// segmentBases lists l's segments' base offsets, oldest first.
func segmentBases(l *Log) []int64 {
	var out []int64
	for _, s := range *l.segs.Load() {
		out = append(out, s.Base())
	}
	return out
}

// TestDeleteRecordsBeforeAtSegmentBase: an offset that is exactly the base
// of a segment deletes every segment before it at once, the one just below
// included (it holds nothing at or past the new start), as Kafka's
// deletion of the segments whose next one starts at or below the log
// start offset.
func TestDeleteRecordsBeforeAtSegmentBase(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 200})
	defer l.Close()
	for i := range 12 {
		appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), fmt.Sprint(i)))
	}
	bases := segmentBases(l)
	require.Greater(t, len(bases), 3)
	start, err := l.DeleteRecordsBefore(bases[2])
	require.NoError(t, err)
	require.Equal(t, bases[2], start)
	require.Equal(t, bases[2:], segmentBases(l), "the segments wholly below the new start are deleted")
	// One past a base keeps the segment holding it.
	start, err = l.DeleteRecordsBefore(bases[3] + 1)
	require.NoError(t, err)
	require.Equal(t, bases[3]+1, start)
	require.Equal(t, bases[3:], segmentBases(l))
}
