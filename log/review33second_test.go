package log

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestImportedHistoryAgesByItsOwnTimes: RetentionTime's doc (session
// 33): under CreateTime, what of a history imported with its events' own
// times is older than RetentionTime goes at the next maintenance run, a
// segment at a time, when SegmentTime is a fraction of RetentionTime
// (segments roll by the records' times, as Kafka's segment.ms does).
func TestImportedHistoryAgesByItsOwnTimes(t *testing.T) {
	e := newEnv(t)
	const day = 24 * time.Hour
	cfg := Config{RetentionTime: 7 * day, SegmentTime: day}
	l := e.open(cfg)
	defer l.Close()
	now := e.clock.Now()
	// 30 days of history, a batch an hour, imported at once.
	for h := 30 * 24; h >= 1; h-- {
		appendOK(t, l, valueBatch(t, now.Add(-time.Duration(h)*time.Hour).UnixMilli(), "v"))
	}
	_, err := l.ApplyRetention(context.Background())
	require.NoError(t, err)
	recs := readAll(t, l, l.LogStartOffset())
	require.NotEmpty(t, recs)
	oldest := recs[0].Timestamp
	require.True(t, oldest.After(now.Add(-8*day-time.Hour)), "the oldest record left is %v old", now.Sub(oldest))
}

// TestLogAppendTimeAgesByTheAppend: RetentionTime's doc (session
// 33): under LogAppendTime a record's age is the broker's time of its
// append, whatever time the producer gave: an imported history stays
// until RetentionTime after its import.
func TestLogAppendTimeAgesByTheAppend(t *testing.T) {
	e := newEnv(t)
	const day = 24 * time.Hour
	cfg := Config{RetentionTime: 7 * day, SegmentTime: day, TimestampType: LogAppendTime}
	l := e.open(cfg)
	defer l.Close()
	now := e.clock.Now()
	for h := 30 * 24; h >= 1; h-- {
		appendOK(t, l, valueBatch(t, now.Add(-time.Duration(h)*time.Hour).UnixMilli(), "v"))
	}
	n, err := l.ApplyRetention(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)
	require.EqualValues(t, 0, l.LogStartOffset())
	require.Len(t, readAll(t, l, 0), 30*24)
}
