package log

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestCompactionSkippedGroupNotCheckpointed: a DeleteRecords that removes
// the first segment of a group while the cleaner builds it makes the
// cleaner drop the group's swap (the segments moved); the checkpoint must
// not then move past the rest of the group, never cleaned, or the
// dirty-only key map would never look at it again: a key's old value and
// its tombstone would both stay, the tombstone would go at its horizon,
// and the deleted key come back with its old value. (It did, before the
// fix.)
func TestCompactionSkippedGroupNotCheckpointed(t *testing.T) {
	var hook func(op vfs.Op, name string)
	l, clock := hookedLog(t, Config{SegmentBytes: 1000, CleanupPolicy: Compact | Delete, DeleteRetentionTime: time.Minute}, &hook)
	var err error
	ts := clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("x"), value: []byte("filler"), ts: ts})) // 0
	require.NoError(t, l.Roll())
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: []byte("v1"), ts: ts})) // 1
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: nil, ts: ts}))          // 2: k deleted
	require.NoError(t, l.Roll())

	hook = func(op vfs.Op, name string) {
		if op != vfs.OpCreate || !strings.HasSuffix(name, segment.LogSuffix+cleanedSuffix) {
			return
		}
		hook = nil
		_, err := l.DeleteRecordsBefore(context.Background(), 1) // removes segment 0, the group's first
		require.NoError(t, err)
	}
	_, err = l.Compact(context.Background())
	require.NoError(t, err)

	// Later passes (new data elsewhere would call for them).
	requireKeyStaysDeleted(t, l, clock)
}

// requireKeyStaysDeleted runs a compaction pass, another once the
// tombstones' delete.retention.ms (a minute here) has passed, and checks
// that key "k", which a tombstone deleted, did not come back.
func requireKeyStaysDeleted(t *testing.T, l *Log, clock *fakeClock) {
	t.Helper()
	_, err := l.Compact(context.Background())
	require.NoError(t, err)
	clock.Advance(2 * time.Minute)
	_, err = l.Compact(context.Background())
	require.NoError(t, err)
	got, _ := latestByKey(t, l)
	v, ok := got["k"]
	require.True(t, !ok || v == nil, "key k, deleted by its tombstone, came back with %q", v)
}

// TestOlderCleanerCheckpointNotTrusted: an older runnel mapped the whole
// cleanable part every pass, so the checkpoint it left did not have to
// mean "deduplicated below" (its TruncateTo lowered it in memory only,
// and records appended again below the checkpoint on disk were never
// cleaned). Taken as the end of a deduplicated section, it let a key's
// old value and its tombstone both stay, the tombstone go at its horizon
// and the deleted key come back; the older file is now ignored, and the
// first pass maps the whole log.
func TestOlderCleanerCheckpointNotTrusted(t *testing.T) {
	mem := vfs.NewMem()
	cfg := Config{SegmentBytes: 1000, CleanupPolicy: Compact, DeleteRetentionTime: time.Minute}
	clock := newClock()
	open := func() *Log {
		l, err := Open("/d/t-0", cfg, Options{FS: mem, Clock: clock})
		require.NoError(t, err)
		return l
	}
	l := open()
	ts := clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("1"), ts: ts}))
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("b"), value: []byte("2"), ts: ts}))
	require.NoError(t, l.Roll())
	_, err := l.Compact(context.Background())
	require.NoError(t, err) // checkpoint 2
	_, err = l.TruncateTo(0)
	require.NoError(t, err)
	// What the older runnel left on disk: the checkpoint it had before the
	// truncation (it lowered it in memory only).
	require.NoError(t, writeOffset(mem, "/d/t-0", oldCleanerFile, 2))
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: []byte("v1"), ts: ts})) // 0
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: nil, ts: ts}))          // 1: k deleted
	require.NoError(t, l.Roll())
	require.NoError(t, l.Close())

	l = open() // the upgraded runnel
	defer l.Close()
	requireKeyStaysDeleted(t, l, clock)
}

// TestFutureTimestampDoesNotBlockCompaction: with min.compaction.lag.ms
// 0, Kafka applies no time test to what it cleans, and neither does
// runnel now; it required every segment's max timestamp to be at most
// now, so one record stamped in the future (a producer's clock ahead)
// kept its segment and every one after it uncleaned until the wall clock
// passed it: forever for a far-future stamp.
func TestFutureTimestampDoesNotBlockCompaction(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 1000, CleanupPolicy: Compact})
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("k"), []byte("old"), now + 3_600_000})) // an hour ahead
	require.NoError(t, l.Roll())
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("k"), []byte("new"), now}))
	require.NoError(t, l.Roll())
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 2, res.FirstUncleanable, "sealed segments are cleanable with min.compaction.lag.ms 0")
	recs := readAll(t, l, 0)
	require.Len(t, recs, 1, "the superseded record stays")
}

// TestCompactionSkippedGroupGoneMovesCheckpoint: a client's DeleteRecords
// removes, during each compaction pass, the whole first group (one
// segment): nothing of it is left to hold a key the map replaces, so the
// pass moves the cleaner checkpoint. It held it, pass after pass (from a
// review): with a DeleteRecords in every pass the checkpoint never moved
// and every pass mapped the same, growing, dirty section again.
func TestCompactionSkippedGroupGoneMovesCheckpoint(t *testing.T) {
	var hook func(op vfs.Op, name string)
	l, clock := hookedLog(t, Config{SegmentBytes: 1000, CleanupPolicy: Compact}, &hook)
	ts := clock.Now().UnixMilli()
	fill := func(round int) {
		for i := range 3 {
			// About 600 bytes a segment: each group is one segment.
			for k := range 4 {
				appendOK(t, l, batchOf(t, 0, kv{key: []byte{byte('a' + k)}, value: []byte(strings.Repeat("v", 100) + string(rune('0'+round)) + string(rune('0'+i))), ts: ts}))
			}
			require.NoError(t, l.Roll())
		}
	}
	var cleaned []int64
	for round := range 4 {
		fill(round)
		segs := *l.segs.Load()
		second := segs[1].Base()
		hook = func(op vfs.Op, name string) {
			if op != vfs.OpCreate || !strings.HasSuffix(name, segment.LogSuffix+cleanedSuffix) {
				return
			}
			hook = nil
			_, err := l.DeleteRecordsBefore(context.Background(), second) // the first group, whole
			require.NoError(t, err)
		}
		res, err := l.Compact(t.Context())
		require.NoError(t, err)
		hook = nil
		cleaned = append(cleaned, res.CleanedTo)
	}
	require.NotEqual(t, int64(0), cleaned[len(cleaned)-1], "cleaner checkpoint after each pass: %v", cleaned)
}

// TestMaintainAtRatioZeroCompactsOnlyWhatIsDirty: min.cleanable.dirty.ratio
// 0 means "compact whenever anything is dirty", as its doc says: a
// Maintain with nothing dirty runs no pass. It ran one at every Maintain
// (ratio 0 >= 0), reading and rewriting the whole cleanable log.
func TestMaintainAtRatioZeroCompactsOnlyWhatIsDirty(t *testing.T) {
	var hook func(op vfs.Op, name string)
	l, clock := hookedLog(t, Config{SegmentBytes: 300, CleanupPolicy: Compact, MinCleanableDirtyRatio: -1}, &hook)
	ts := clock.Now().UnixMilli()
	for i := range 20 {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte{byte('a' + i%3)}, value: []byte(strings.Repeat("v", 50)), ts: ts}))
	}
	passes := 0
	hook = func(op vfs.Op, name string) {
		if op == vfs.OpCreate && strings.HasSuffix(name, segment.LogSuffix+cleanedSuffix) {
			passes++
		}
	}
	require.NoError(t, l.Maintain(context.Background()))
	require.Positive(t, passes, "something was dirty")
	passes = 0
	for range 3 {
		require.NoError(t, l.Maintain(context.Background()))
	}
	require.Zero(t, passes, "nothing was dirty")
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("new"), ts: ts}))
	require.NoError(t, l.Roll())
	require.NoError(t, l.Maintain(context.Background()))
	require.Positive(t, passes, "a new dirty segment")
}

// TestDirtyRatioMustExceedMinCleanable: as Kafka's cleaner
// (LogCleanerManager: cleanableRatio > minCleanableRatio), Maintain
// compacts a log whose dirty ratio is more than min.cleanable.dirty.ratio,
// not one whose ratio equals it: at 1, only max.compaction.lag.ms makes a
// log compact, as in Kafka. Maintain compacted at a ratio equal to it (at
// least), so that a never-compacted log (ratio 1) compacted at 1 too.
func TestDirtyRatioMustExceedMinCleanable(t *testing.T) {
	for _, tc := range []struct {
		cfg       Config
		compacted bool
	}{
		{Config{MinCleanableDirtyRatio: 1}, false},
		{Config{MinCleanableDirtyRatio: 0.99}, true},
		{Config{MinCleanableDirtyRatio: 1, MaxCompactionLag: time.Millisecond}, true}, // overdue
	} {
		e := newEnv(t)
		cfg := tc.cfg
		cfg.CleanupPolicy, cfg.SegmentBytes = Compact, 300
		l := e.open(cfg)
		ts := e.clock.Now().UnixMilli()
		for range 20 {
			appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: []byte(strings.Repeat("v", 50)), ts: ts}))
		}
		e.clock.Advance(time.Second)
		require.Equal(t, 1.0, l.DirtyRatio(), "nothing compacted yet")
		require.NoError(t, l.Maintain(context.Background()))
		if tc.compacted {
			require.Zero(t, l.DirtyRatio(), "%+v", tc.cfg)
		} else {
			require.Equal(t, 1.0, l.DirtyRatio(), "%+v: a ratio of 1 is not more than 1", tc.cfg)
		}
		require.NoError(t, l.Close())
	}
}
