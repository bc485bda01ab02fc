package log

import (
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
