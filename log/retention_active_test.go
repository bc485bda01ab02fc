package log

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRetentionDeletesExpiredActiveSegment: as in Kafka, a log whose every
// record is past retention.ms loses them all, the active segment too (it
// rolls first): a topic that went quiet does not keep its last segment
// forever, as it did when only rolled segments could go (and a quiet log
// never rolls).
func TestRetentionDeletesExpiredActiveSegment(t *testing.T) {
	for _, sync := range []SyncPolicy{SyncAlways, SyncPeriodic, SyncNever} {
		t.Run(sync.String(), func(t *testing.T) {
			e := newEnv(t)
			cfg := Config{Sync: sync, SegmentBytes: 500, RetentionTime: time.Hour}
			l := e.open(cfg)
			now := e.clock.Now().UnixMilli()
			for i := range 20 {
				appendOK(t, l, valueBatch(t, now, fmt.Sprint(i)))
			}
			require.NoError(t, l.Flush(context.Background()))
			require.Greater(t, l.Segments(), 1)

			e.clock.Advance(30 * time.Minute)
			n, err := l.ApplyRetention(context.Background())
			require.NoError(t, err)
			require.Zero(t, n)

			e.clock.Advance(31 * time.Minute)
			_, err = l.ApplyRetention(context.Background())
			require.NoError(t, err)
			require.EqualValues(t, 20, l.LogStartOffset(), "every record is past retention.ms")
			require.EqualValues(t, 20, l.LogEndOffset())
			require.Equal(t, 1, l.Segments())
			_, err = l.Read(19, 100, math.MaxInt64)
			require.ErrorIs(t, err, ErrOffsetOutOfRange)

			// Nothing more to delete: the new active segment is empty.
			n, err = l.ApplyRetention(context.Background())
			require.NoError(t, err)
			require.Zero(t, n)
			require.Equal(t, 1, l.Segments())

			appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), "after"))
			recs := readAll(t, l, 20)
			require.Len(t, recs, 1)
			require.EqualValues(t, 20, recs[0].Offset)

			require.NoError(t, l.Close())
			l = e.open(cfg)
			defer l.Close()
			require.EqualValues(t, 20, l.LogStartOffset())
			require.EqualValues(t, 21, l.LogEndOffset())
		})
	}
}

// TestRetentionStopsAtHighWatermark: as Kafka's, retention deletes no
// segment that holds records at or past the high watermark (under
// SyncAlways the durable offset), so that the log start offset is never
// past it: consumers would see an earliest offset past the latest.
func TestRetentionStopsAtHighWatermark(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 300, RetentionTime: time.Hour})
	defer l.Close()
	old := e.clock.Now().UnixMilli()
	var waits []Durability
	for i := range 20 {
		_, d, err := l.AppendAsync(context.Background(), valueBatch(t, old, fmt.Sprint(i)), AppendOptions{})
		require.NoError(t, err)
		waits = append(waits, d)
	}
	require.Greater(t, l.Segments(), 2)
	e.clock.Advance(2 * time.Hour)
	_, err := l.ApplyRetention(context.Background())
	require.NoError(t, err)
	o := l.Offsets()
	require.LessOrEqual(t, o.Start, o.Durable, "the log start offset passed the high watermark")

	for _, d := range waits {
		require.NoError(t, d.Wait(context.Background()))
	}
	_, err = l.ApplyRetention(context.Background())
	require.NoError(t, err)
	o = l.Offsets()
	require.EqualValues(t, 20, o.Start)
	require.EqualValues(t, 20, o.Durable)
}

// TestRetentionKeepsActiveSegmentWithoutTimestamp: an active segment whose
// records carry no timestamp (max timestamp -1) has no age to judge, and
// stays until it rolls (a rolled one goes: see docs/details.md, "Producer
// timestamps": "time retention takes a rolled segment with no timestamp above
// -1 as past retention.ms").
func TestRetentionKeepsActiveSegmentWithoutTimestamp(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{RetentionTime: time.Hour})
	defer l.Close()
	for i := range 3 {
		appendOK(t, l, valueBatch(t, -1, fmt.Sprint(i)))
	}
	e.clock.Advance(2 * time.Hour)
	n, err := l.ApplyRetention(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, readAll(t, l, 0), 3)

	require.NoError(t, l.Roll())
	n, err = l.ApplyRetention(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.EqualValues(t, 3, l.LogStartOffset())
}

// TestRetentionWarnsOfFutureTimestamps: a rolled segment whose records are
// stamped in the future stops time retention there (as in Kafka: the
// segments after it stay too, however old), and says so in a warning.
func TestRetentionWarnsOfFutureTimestamps(t *testing.T) {
	e := newEnv(t)
	var logs bytes.Buffer
	// A record stamped a day ahead, which TimestampAfterMax would refuse
	// (an hour by default): the segments such a record held before the
	// bound, or holds with it off, are what the warning is for.
	l, err := Open(e.dir, Config{RetentionTime: time.Hour, TimestampAfterMax: -1}, Options{FS: e.fs, Clock: e.clock,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	require.NoError(t, err)
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	for _, ts := range []int64{now - 3_600_000*3, now + 3_600_000*24, now - 3_600_000*3} {
		appendOK(t, l, valueBatch(t, ts, fmt.Sprint(ts)))
		require.NoError(t, l.Roll())
	}
	n, err := l.ApplyRetention(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.EqualValues(t, 1, l.LogStartOffset())
	require.Contains(t, logs.String(), "timestamp in the future")
}

// TestRetentionKeepsTheActiveSegmentEndingOnePastTheLast: time
// retention keeps the active segment of a log whose end is
// MaxLogEndOffset+1 (a batch of one record at the largest base: no
// segment can start at its end), as it keeps one ending further past it
// (TestLogPastTheLastEndKeepsOpening). Kills: the check moved to
// an end past MaxLogEndOffset+1, which rolled (ErrRollFailed).
func TestRetentionKeepsTheActiveSegmentEndingOnePastTheLast(t *testing.T) {
	e := newEnv(t)
	writeSegmentFile(t, e.fs, e.dir, maxSegmentBase, gapBatch(t, maxSegmentBase, 0))
	l := e.open(Config{RetentionTime: time.Second})
	defer l.Close()
	require.Equal(t, int64(MaxLogEndOffset+1), l.LogEndOffset())
	e.clock.Advance(time.Hour) // the record, stamped 1 ms, is past retention.ms
	_, err := l.ApplyRetention(context.Background())
	require.NoError(t, err)
	require.Len(t, readAll(t, l, maxSegmentBase), 1, "the active segment stays")
}
