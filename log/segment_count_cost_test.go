package log

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRollCostDoesNotGrowWithSegments: a roll forgets the
// creation times of the segments no longer listed (segment.ms's wall
// clock, createdAt) at a cost that does not grow with the segments the
// log holds. It looked at every entry at every roll: with a tiny
// SegmentBytes, as a tenant's topic config may set (14 bytes, so that
// each batch rolls a segment), N appends cost O(N² log N), 81% of the
// CPU of 8,000 one-record produces in memory (the first 500 took
// 0.45 s, the last 4,000 5.9 s).
func TestRollCostDoesNotGrowWithSegments(t *testing.T) {
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

// TestSnapshotPruneCostDoesNotGrowWithSegments: under
// SyncNever each roll writes a producer-state snapshot that stays until
// the next fsync (Maintain) moves the recovery point past it, and prunes
// the list of snapshots; a roll's cost over SyncAlways's must not grow
// with the snapshots listed. The prune copied the whole list at every
// roll, and the list, left without room, was copied again by the next
// roll's insertion: with a tiny SegmentBytes, 21 bytes more a roll for
// each segment rolled since the last Maintain (4,000 one-batch rolls:
// 144 KB a roll against SyncAlways's 60 KB), N rolls O(N²) between two
// maintenance runs. In -short it rolls to 2,000 segments (the old
// prune's growth there, 35 KB a roll, is nearly five times the bound).
func TestSnapshotPruneCostDoesNotGrowWithSegments(t *testing.T) {
	const few, rolls = 200, 200
	many := 4000
	if testing.Short() {
		many = 2000
	}
	perRoll := func(sync SyncPolicy) (atFew, atMany int64) {
		e := newEnv(t)
		l := e.open(Config{SegmentBytes: 14, Sync: sync, RetentionTime: -1})
		defer l.Close()
		proto := valueBatch(t, e.clock.Now().UnixMilli(), "v")
		buf := make([]byte, len(proto))
		appendOne := func() { copy(buf, proto); appendOK(t, l, buf) } // each rolls
		measure := func() int64 {
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			for range rolls {
				appendOne()
			}
			runtime.ReadMemStats(&m1)
			return int64(m1.TotalAlloc-m0.TotalAlloc) / rolls
		}
		for l.Segments() < few {
			appendOne()
		}
		atFew = measure()
		for l.Segments() < many {
			appendOne()
		}
		return atFew, measure()
	}
	neverFew, neverMany := perRoll(SyncNever)
	alwaysFew, alwaysMany := perRoll(SyncAlways)
	t.Logf("bytes a roll at %d and %d segments: SyncNever %d, %d; SyncAlways %d, %d", few, many, neverFew, neverMany, alwaysFew, alwaysMany)
	growth := (neverMany - alwaysMany) - (neverFew - alwaysFew)
	require.LessOrEqual(t, growth, int64(4*(many-few)),
		"SyncNever's extra cost a roll grew by %d bytes from %d to %d segments", growth, few, many)
}
