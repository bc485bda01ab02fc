package log

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReview44DoSRollCostDoesNotGrowWithSegments: a roll forgets the
// creation times of the segments no longer listed (segment.ms's wall
// clock, createdAt) at a cost that does not grow with the segments the
// log holds. It looked at every entry at every roll: with a tiny
// SegmentBytes, as a tenant's topic config may set (14 bytes, so that
// each batch rolls a segment), N appends cost O(N² log N), 81% of the
// CPU of 8,000 one-record produces in memory (the first 500 took
// 0.45 s, the last 4,000 5.9 s).
func TestReview44DoSRollCostDoesNotGrowWithSegments(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 14, Sync: SyncNever, RetentionTime: -1})
	defer l.Close()
	scanned := 0
	testHookCreatedScan = func(n int) { scanned += n }
	defer func() { testHookCreatedScan = nil }()
	const rolls = 2000
	for range rolls + 1 {
		appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), "v"))
	}
	require.Equal(t, rolls+1, l.Segments())
	t.Logf("%d rolls looked at %d creation times", rolls, scanned)
	require.LessOrEqual(t, scanned, 4*rolls, "entries looked at over %d rolls", rolls)
}
