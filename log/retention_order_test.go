package log

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRetentionTimeGoesOnAfterSize: Kafka's deleteOldSegments runs the
// size rule before the time rule, each from the oldest segment left, so a
// segment that time alone keeps (its records newer than those after it)
// may go for its size, and the time rule then goes on past it in the same
// run. runnel ran time first and stopped there: the segments after it,
// past retention.ms, stayed until the next run (the randomized parity
// test, TestParitySegments seed 1, found it). Fails on the old code: log
// start at the second segment's base, not the log end.
func TestRetentionTimeGoesOnAfterSize(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now().UnixMilli()
	old := now - 2*time.Hour.Milliseconds()
	one := int64(len(valueBatch(t, now, "a")))
	// One batch a segment: a recent one, then two past retention.ms (the
	// last in the active segment).
	l := e.open(Config{SegmentBytes: one, RetentionTime: time.Hour, RetentionBytes: 2 * one})
	defer l.Close()
	appendOK(t, l, valueBatch(t, now, "a"))
	appendOK(t, l, valueBatch(t, old, "b"))
	appendOK(t, l, valueBatch(t, old, "c"))
	require.Len(t, *l.segs.Load(), 3)

	// Size takes the first segment (the log less it is still 2 batches),
	// time the other two, the active one rolled first.
	_, err := l.ApplyRetention(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(3), l.LogStartOffset())
	require.Equal(t, int64(3), l.LogEndOffset())
}
