package log

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/stretchr/testify/require"
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

// TestSegmentTimeAfterTruncateIntoOlderSegment: segment.ms's
// wall-clock wait, for an active segment whose first batch has no
// timestamp, counts from when that segment was created or the log opened
// (Kafka: its LogSegment's created time). A truncation that removes the
// active segment makes the one before it active again, not emptied: its
// wait goes on from its own creation, not from that of the segment the
// truncation removed.
func TestSegmentTimeAfterTruncateIntoOlderSegment(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentTime: time.Hour, SegmentBytes: 300}
	l := e.open(cfg)
	defer l.Close()
	small := func(v string) []byte { return batchOf(t, compression.None, kv{value: []byte(v), ts: -1}) }
	appendOK(t, l, small("a")) // the first segment, its wait from the open
	e.clock.Advance(50 * time.Minute)
	big := batchOf(t, compression.None, kv{value: make([]byte, 250), ts: -1})
	appendOK(t, l, big) // rolls by size: the second segment, created now
	require.Equal(t, 2, l.Segments())
	_, err := l.TruncateTo(1)
	require.NoError(t, err)
	require.Equal(t, 1, l.Segments())
	e.clock.Advance(20 * time.Minute) // 70 minutes after the first segment's creation
	appendOK(t, l, small("c"))
	require.Equal(t, 2, l.Segments(), "the first segment, 70 minutes old by the wall clock, rolled")
}

// TestSegmentTimeAfterTruncateIntoRolledSegment: as
// TestSegmentTimeAfterTruncateIntoOlderSegment, for a segment
// that rolled after the log opened: its wait counts from its roll.
func TestSegmentTimeAfterTruncateIntoRolledSegment(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentTime: time.Hour, SegmentBytes: 1000})
	defer l.Close()
	small := batchOf(t, compression.None, kv{value: []byte("a"), ts: -1})
	big := func() []byte { return batchOf(t, compression.None, kv{value: make([]byte, 600), ts: -1}) }
	appendOK(t, l, small)
	appendOK(t, l, big())
	e.clock.Advance(10 * time.Minute)
	require.EqualValues(t, 2, appendOK(t, l, big()).FirstOffset) // rolls: the second segment, at 10 minutes
	e.clock.Advance(10 * time.Minute)
	appendOK(t, l, big()) // rolls: the third, at 20 minutes
	require.Equal(t, 3, l.Segments())
	_, err := l.TruncateTo(3)
	require.NoError(t, err)
	require.Equal(t, 2, l.Segments())
	e.clock.Advance(45 * time.Minute) // 55 minutes after the second segment's roll
	appendOK(t, l, batchOf(t, compression.None, kv{value: []byte("b"), ts: -1}))
	require.Equal(t, 2, l.Segments(), "55 minutes old: not yet")
	e.clock.Advance(10 * time.Minute)
	appendOK(t, l, batchOf(t, compression.None, kv{value: []byte("c"), ts: -1}))
	require.Equal(t, 3, l.Segments(), "65 minutes old: rolled")
}

// TestSegmentTimesForgetRemovedSegments: the creation times the
// log keeps for segment.ms (createdAt) are those of its live segments,
// and of removed ones at most as many again: retention's removals are
// forgotten at a roll once the map holds twice as many entries as there
// are segments (before, at every roll, which made each roll's cost grow
// with the segments), so that a log that rolls and
// deletes for months keeps a bounded map. Kills: noteRolledLocked
// keeping the times of removed segments below the first live one (its
// check of the base found dropped).
func TestSegmentTimesForgetRemovedSegments(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 100})
	defer l.Close()
	appendEach(t, l, 1_700_000_000_000, "a", "b", "c", "d", "e", "f") // each rolls
	require.Equal(t, 6, l.Segments())
	for i := range 40 {
		_, err := l.DeleteRecordsBefore(context.Background(), l.LogEndOffset()-1)
		require.NoError(t, err)
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "g")) // rolls
		l.mu.Lock()
		segs, kept := len(*l.segs.Load()), len(l.createdAt)
		l.unlock()
		require.LessOrEqual(t, kept, 2*segs+1, "round %d: creation times kept for %d segments", i, segs)
	}
}

// TestLogAppendTimeBeforeTheEpochRollsByItsOwnTime: under
// LogAppendTime segment.ms compares the batches' stamps, the log's time,
// with the active segment's first: after the log's clock stepped back
// from 1 s past 1970 to before it, an append is stamped with a negative
// time and does not roll after a segment.ms of one hour, whatever
// CreateTime the producer set (here decades later). Kills: the roll's
// max timestamp taken from the batches when the append time is negative
// (the sign of the time, not the topic's type, deciding), which rolled.
func TestLogAppendTimeBeforeTheEpochRollsByItsOwnTime(t *testing.T) {
	e := newEnv(t)
	e.clock.t = time.UnixMilli(1000)
	l := e.open(Config{TimestampType: LogAppendTime, SegmentTime: time.Hour})
	defer l.Close()
	appendOK(t, l, batchOf(t, compression.None, kv{value: []byte("a"), ts: 1_700_000_000_000}))
	e.clock.t = time.UnixMilli(-5000)
	res := appendOK(t, l, batchOf(t, compression.None, kv{value: []byte("b"), ts: 1_700_000_000_000}))
	require.EqualValues(t, -5000, res.LogAppendTime)
	require.Equal(t, 1, l.Segments(), "rolled: the log's time went back, not an hour on")
}
