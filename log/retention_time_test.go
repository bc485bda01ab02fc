package log

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestImportedHistoryAgesByItsOwnTimes: RetentionTime's doc: under
// CreateTime, what of a history imported with its events' own
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

// TestLogAppendTimeAgesByTheAppend: RetentionTime's doc: under
// LogAppendTime a record's age is the broker's time of its
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

// TestRetentionCountsSegmentsGoneBeforeAFailedRoll: when every
// record is past retention.ms, ApplyRetention deletes the older segments,
// then rolls the active one so that it may go too. A roll that fails
// then left the older segments deleted and ApplyRetention answered 0,
// where its doc says it returns how many it deleted.
func TestRetentionCountsSegmentsGoneBeforeAFailedRoll(t *testing.T) {
	var armed atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpCreate && filepath.Ext(name) == ".log" {
			return syscall.EMFILE
		}
		return nil
	}))
	clock := newClock()
	l, err := Open("/p", Config{SegmentBytes: 200, RetentionTime: time.Hour, Sync: SyncNever}, Options{FS: fsys, Clock: clock})
	require.NoError(t, err)
	defer l.Close()
	now := clock.Now().UnixMilli()
	for i := range 3 {
		appendOK(t, l, valueBatch(t, now, string(make([]byte, 150)), fmt.Sprint(i)))
	}
	require.Equal(t, 3, l.Segments())
	clock.Advance(2 * time.Hour)
	armed.Store(true)
	n, err := l.ApplyRetention(context.Background())
	require.Error(t, err)
	require.Equal(t, 1, l.Segments(), "the older segments went before the roll")
	require.Equal(t, 2, n, "ApplyRetention's count")
}
