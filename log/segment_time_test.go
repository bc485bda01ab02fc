package log

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
)

// TestSegmentTimeByRecordTimestamps: segment.ms counts, as Kafka's
// LogSegment.timeWaitedForRoll does, from the timestamp of the active
// segment's first batch to that of the batch being appended (the wall
// clock only for a segment whose first batch has no timestamp). It
// counted from the later of the first batch's timestamp and the time the
// segment was created or the log opened: a log reopened more often than
// segment.ms (a service deployed every day, with the week's default)
// never rolled by time, nor at max.compaction.lag.ms; and records
// stamped in the past (a backfill) rolled by the wall clock, not by their
// own times.
func TestSegmentTimeByRecordTimestamps(t *testing.T) {
	batch := func(ts int64, v string) []byte {
		return batchOf(t, compression.None, kv{key: []byte(v), value: []byte(v), ts: ts})
	}
	t.Run("across reopens", func(t *testing.T) {
		e := newEnv(t)
		cfg := Config{SegmentTime: time.Hour}
		l := e.open(cfg)
		now := func() int64 { return e.clock.Now().UnixMilli() }
		appendOK(t, l, batch(now(), "a"))
		for range 3 {
			e.clock.Advance(25 * time.Minute)
			require.NoError(t, l.Close())
			l = e.open(cfg)
			appendOK(t, l, batch(now(), "b"))
		}
		defer l.Close()
		require.Equal(t, 2, l.Segments(), "75 minutes after the first batch, reopened every 25: rolled once")
	})
	t.Run("a backfill", func(t *testing.T) {
		e := newEnv(t)
		l := e.open(Config{SegmentTime: 20 * time.Hour}) // each day's first batch is 24 h after the day before's
		defer l.Close()
		old := e.clock.Now().Add(-30 * 24 * time.Hour).UnixMilli()
		for day := range 5 {
			for h := range 4 {
				appendOK(t, l, batch(old+int64(day)*24*3600_000+int64(h)*3600_000, "x"))
			}
		}
		require.Equal(t, 5, l.Segments(), "a segment per day of the records' times")
	})
	t.Run("no timestamps: the wall clock", func(t *testing.T) {
		e := newEnv(t)
		l := e.open(Config{SegmentTime: time.Hour})
		defer l.Close()
		appendOK(t, l, batch(-1, "a"))
		e.clock.Advance(59 * time.Minute)
		appendOK(t, l, batch(-1, "b"))
		require.Equal(t, 1, l.Segments())
		e.clock.Advance(2 * time.Minute)
		appendOK(t, l, batch(-1, "c"))
		require.Equal(t, 2, l.Segments())
	})
}

// TestSegmentTimeRollsStrictlyPast: the active segment rolls once the
// records are more than segment.ms newer than its first batch, not at
// exactly segment.ms, as Kafka's LogSegment.shouldRoll compares
// (timeWaitedForRoll > maxSegmentMs).
func TestSegmentTimeRollsStrictlyPast(t *testing.T) {
	e := newEnv(t)
	// Records an hour and 1 ms ahead of the clock: no TimestampAfterMax.
	l := e.open(Config{SegmentTime: time.Hour, TimestampAfterMax: -1})
	defer l.Close()
	first := e.clock.Now().UnixMilli()
	batch := func(ts int64) []byte { return batchOf(t, compression.None, kv{value: []byte("v"), ts: ts}) }
	appendOK(t, l, batch(first))
	appendOK(t, l, batch(first+3600_000))
	require.Equal(t, 1, l.Segments(), "exactly segment.ms after the first batch: not yet")
	appendOK(t, l, batch(first+3600_001))
	require.Equal(t, 2, l.Segments(), "past it")
}

// TestSegmentTimeBelowAMillisecond: a SegmentTime below 1 ms counts as
// 0 ms (Config's doc), and a segment rolls once records are more than
// that newer than its first batch: an append of records 1 ms newer rolls
// it, one stamped in the same millisecond does not.
func TestSegmentTimeBelowAMillisecond(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentTime: 500 * time.Microsecond})
	defer l.Close()
	first := e.clock.Now().UnixMilli()
	batch := func(ts int64) []byte { return batchOf(t, compression.None, kv{value: []byte("v"), ts: ts}) }
	appendOK(t, l, batch(first))
	appendOK(t, l, batch(first))
	require.Equal(t, 1, l.Segments(), "the same millisecond as the first batch")
	appendOK(t, l, batch(first+1))
	require.Equal(t, 2, l.Segments(), "1 ms newer")
}

// TestSegmentTimeAfterTruncationEmptiesTheSegment: a truncation that
// leaves the active segment empty starts its wall-clock wait for
// segment.ms again, as Kafka's LogSegment.truncateTo resets its created
// time then: records without a timestamp appended after it roll
// segment.ms after the truncation, not after the segment was first
// created. The wait counted from the creation, so the second append after
// such a truncation rolled a segment.
func TestSegmentTimeAfterTruncationEmptiesTheSegment(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentTime: time.Hour})
	defer l.Close()
	appendOK(t, l, valueBatch(t, -1, "a"))
	e.clock.Advance(2 * time.Hour)
	end, err := l.TruncateTo(0)
	require.NoError(t, err)
	require.Zero(t, end)
	appendOK(t, l, valueBatch(t, -1, "b"))
	e.clock.Advance(time.Minute)
	appendOK(t, l, valueBatch(t, -1, "c"))
	require.Equal(t, 1, l.Segments(), "a minute after the truncation emptied the segment")
	e.clock.Advance(time.Hour)
	appendOK(t, l, valueBatch(t, -1, "d"))
	require.Equal(t, 2, l.Segments(), "past segment.ms since the truncation")
}
