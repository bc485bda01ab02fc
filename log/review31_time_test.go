package log

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
)

// TestSegmentTimeAfterEmptiedSegmentRolled: a truncation that
// empties a segment starts its segment.ms wall-clock wait again (Kafka's
// LogSegment.truncateTo resets its created time), and the segment keeps
// that time: rolled afterwards, and made active again by a truncation
// that removes the segment after it, it counts from when it was emptied,
// not from its first roll (the log kept the roll's time).
func TestSegmentTimeAfterEmptiedSegmentRolled(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentTime: time.Hour})
	defer l.Close()
	noTs := func(vs ...string) []byte {
		recs := make([]kv, len(vs))
		for i, v := range vs {
			recs[i] = kv{value: []byte(v), ts: -1}
		}
		return batchOf(t, compression.None, recs...)
	}
	appendOK(t, l, noTs("a"))
	require.NoError(t, l.Roll()) // the second segment, at 1, created at 0
	e.clock.Advance(50 * time.Minute)
	appendOK(t, l, noTs("b", "c"))
	_, err := l.TruncateTo(2) // inside the batch at 1: the second segment emptied, at 50 minutes
	require.NoError(t, err)
	require.Equal(t, 2, l.Segments())
	appendOK(t, l, noTs("d"))
	require.NoError(t, l.Roll()) // the third segment, at 2
	appendOK(t, l, noTs("x"))
	_, err = l.TruncateTo(2) // removes it: the second is active again
	require.NoError(t, err)
	require.Equal(t, 2, l.Segments())
	e.clock.Advance(20 * time.Minute) // 70 minutes after its roll, 20 after it was emptied
	appendOK(t, l, noTs("e"))
	require.Equal(t, 2, l.Segments(), "emptied 20 minutes ago: not yet rolled")
	e.clock.Advance(41 * time.Minute)
	appendOK(t, l, noTs("f"))
	require.Equal(t, 3, l.Segments(), "emptied 61 minutes ago: rolled")
}

// TestSegmentTimeKeptByReopenOutlivesRoll: a Partition.Reopen (a
// config change, which Kafka makes in place) keeps the active segment's
// creation time, and the log must keep it for that segment after it rolls
// too: made active again by a truncation that removes the segment after
// it, it counts from its creation, as Kafka's LogSegment keeps it, not
// from the reopen (the log did not know of the kept time).
func TestSegmentTimeKeptByReopenOutlivesRoll(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentTime: time.Hour, RetentionTime: -1}
	p := NewPartition("t", 0, e.open(cfg))
	t.Cleanup(func() { p.Close() })
	appendOK(t, p.Log(), valueBatch(t, -1, "a")) // no timestamp: the wall clock counts, from 0
	e.clock.Advance(50 * time.Minute)
	require.NoError(t, p.Reopen(func() (*Log, error) { return Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock}) }))
	l := p.Log()
	require.NoError(t, l.Roll()) // the second segment, at 1
	appendOK(t, l, valueBatch(t, -1, "b"))
	_, err := l.TruncateTo(1) // removes it: the first is active again
	require.NoError(t, err)
	require.Equal(t, 1, l.Segments())
	e.clock.Advance(20 * time.Minute) // 70 minutes after its creation, 20 after the reopen
	appendOK(t, l, valueBatch(t, -1, "c"))
	require.Equal(t, 2, l.Segments(), "created 70 minutes ago: rolled")
}

// TestSegmentTimeOfOlderSegmentKeptByReopen: as
// TestSegmentTimeKeptByReopenOutlivesRoll, for a segment older
// than the one active at the reopen: made active again by a truncation,
// it counts from when it was created (here, when the log first opened),
// not from the reopen.
func TestSegmentTimeOfOlderSegmentKeptByReopen(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentTime: time.Hour, RetentionTime: -1}
	p := NewPartition("t", 0, e.open(cfg))
	t.Cleanup(func() { p.Close() })
	appendOK(t, p.Log(), valueBatch(t, -1, "a")) // the first segment, from the open at 0
	e.clock.Advance(10 * time.Minute)
	require.NoError(t, p.Log().Roll()) // the second, at 1, created at 10 minutes
	appendOK(t, p.Log(), valueBatch(t, -1, "b"))
	e.clock.Advance(40 * time.Minute)
	require.NoError(t, p.Reopen(func() (*Log, error) { return Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock}) }))
	l := p.Log()
	_, err := l.TruncateTo(1) // removes the second: the first is active again
	require.NoError(t, err)
	require.Equal(t, 1, l.Segments())
	e.clock.Advance(20 * time.Minute) // 70 minutes after the open, 20 after the reopen
	appendOK(t, l, valueBatch(t, -1, "c"))
	require.Equal(t, 2, l.Segments(), "created 70 minutes ago: rolled")
}

// TestSegmentTimeOfCleanedSegment: compaction writes its cleaned
// segment anew, as Kafka's cleaner does (a new LogSegment, created when
// it cleans): made active again by a truncation, the cleaned segment
// counts segment.ms's wall-clock wait from the cleaning, not from when
// the first segment of its group rolled, which the log kept for its base.
func TestSegmentTimeOfCleanedSegment(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentTime: time.Hour, CleanupPolicy: Compact, RetentionTime: -1})
	defer l.Close()
	keyed := func(k, v string) []byte {
		return batchOf(t, compression.None, kv{key: []byte(k), value: []byte(v), ts: -1})
	}
	appendOK(t, l, keyed("k", "a"))
	require.NoError(t, l.Roll()) // the second segment, at 1, created at 0
	appendOK(t, l, keyed("k", "b"))
	appendOK(t, l, keyed("j", "c"))
	require.NoError(t, l.Roll()) // the third, at 3
	appendOK(t, l, keyed("k", "d"))
	require.NoError(t, l.Roll()) // the fourth, at 4
	appendOK(t, l, keyed("i", "e"))
	e.clock.Advance(50 * time.Minute)
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.NotZero(t, res.SegmentsRewritten)
	_, err = l.TruncateTo(4) // removes the fourth: the last cleaned segment is active again
	require.NoError(t, err)
	segs := l.Segments()
	e.clock.Advance(20 * time.Minute) // 70 minutes after the log opened, 20 after the cleaning
	appendOK(t, l, keyed("h", "f"))
	require.Equal(t, segs, l.Segments(), "cleaned 20 minutes ago: not rolled")
	e.clock.Advance(41 * time.Minute)
	appendOK(t, l, keyed("g", "g"))
	require.Equal(t, segs+1, l.Segments(), "cleaned 61 minutes ago: rolled")
}
