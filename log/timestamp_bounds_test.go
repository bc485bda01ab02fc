package log

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// The tests of TimestampBeforeMax and TimestampAfterMax (Kafka's
// message.timestamp.before.max.ms and after.max.ms, KIP-937, with Kafka
// 4's default after.max.ms of an hour, KIP-1030), against Kafka's
// LogValidator.validateTimestamp: on a CreateTime topic every record but
// those of timestamp -1 must lie within [now - before, now + after], the
// ends taken, by the broker's clock; one outside refuses the whole batch
// (INVALID_TIMESTAMP).

const hourMs = int64(3_600_000)

// tsBatch is a batch of one record a timestamp, each with a key.
func tsBatch(t testing.TB, codec compression.Codec, ts ...int64) []byte {
	t.Helper()
	recs := make([]kv, len(ts))
	for i, s := range ts {
		recs[i] = kv{key: []byte(fmt.Sprint("k", i)), value: []byte(fmt.Sprint("v", i)), ts: s}
	}
	return batchOf(t, codec, recs...)
}

// refusedTs appends data, which must be refused with ErrInvalidTimestamp
// (an ErrInvalidRecord too) leaving the log end at end and data as it
// was; it returns the error.
func refusedTs(t *testing.T, l *Log, data []byte, end int64) error {
	t.Helper()
	sent := bytes.Clone(data)
	_, err := l.Append(context.Background(), data, AppendOptions{})
	require.ErrorIs(t, err, ErrInvalidTimestamp)
	require.ErrorIs(t, err, ErrInvalidRecord)
	require.Equal(t, end, l.LogEndOffset(), "a refused append writes nothing")
	require.Equal(t, sent, data, "a refused append leaves the caller's bytes as they were")
	return err
}

// TestTimestampBoundsDefaults: the zero Config takes Kafka 4's bounds: no
// limit before the clock, an hour after it. Exactly an hour ahead is
// taken, a millisecond more refused, with a message that names the
// record's timestamp, the bound and the window, as Kafka's; any age is
// taken.
func TestTimestampBoundsDefaults(t *testing.T) {
	d := Config{}.WithDefaults()
	require.Equal(t, time.Hour, d.TimestampAfterMax)
	require.Equal(t, DefaultTimestampAfterMax, d.TimestampAfterMax)
	require.Zero(t, d.TimestampBeforeMax, "unlimited")

	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	appendOK(t, l, tsBatch(t, compression.None, now+hourMs))
	err := refusedTs(t, l, tsBatch(t, compression.None, now+hourMs+1), 1)
	require.ErrorContains(t, err, fmt.Sprintf("stamped %d", now+hourMs+1))
	require.ErrorContains(t, err, "message.timestamp.after.max.ms=3600000")
	require.ErrorContains(t, err, fmt.Sprintf("the log's time %d", now))
	require.ErrorContains(t, err, fmt.Sprintf("should be within [-inf, %d]", now+hourMs))
	// Any age: 0, the epoch, and before it.
	appendOK(t, l, tsBatch(t, compression.None, 0, 1, -5, now-100*24*hourMs))
	require.EqualValues(t, 5, l.LogEndOffset())
}

// TestTimestampBoundsEnds: each bound takes a record exactly at it and
// refuses one a millisecond past it, also at Kafka's 0 (a duration below
// a millisecond): a window of the clock's millisecond alone.
func TestTimestampBoundsEnds(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after time.Duration
		beforeMs      int64
		afterMs       int64
	}{
		{"an hour each", time.Hour, time.Hour, hourMs, hourMs},
		{"a day before, a minute after", 24 * time.Hour, time.Minute, 24 * hourMs, 60_000},
		{"Kafka's 0 both ways", time.Nanosecond, 999 * time.Microsecond, 0, 0},
		{"fractions dropped", time.Second + time.Microsecond, 2*time.Millisecond - 1, 1000, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(Config{TimestampBeforeMax: tc.before, TimestampAfterMax: tc.after})
			defer l.Close()
			now := e.clock.Now().UnixMilli()
			appendOK(t, l, tsBatch(t, compression.None, now-tc.beforeMs, now, now+tc.afterMs))
			window := fmt.Sprintf("should be within [%d, %d]", now-tc.beforeMs, now+tc.afterMs)
			err := refusedTs(t, l, tsBatch(t, compression.None, now, now+tc.afterMs+1), 3)
			require.ErrorContains(t, err, "TimestampAfterMax")
			require.ErrorContains(t, err, window)
			err = refusedTs(t, l, tsBatch(t, compression.None, now-tc.beforeMs-1, now), 3)
			require.ErrorContains(t, err, fmt.Sprintf("stamped %d", now-tc.beforeMs-1))
			require.ErrorContains(t, err, fmt.Sprintf("TimestampBeforeMax (message.timestamp.before.max.ms=%d) before the log's time %d", tc.beforeMs, now))
			require.ErrorContains(t, err, window)
		})
	}
}

// TestTimestampBoundsUnlimited: negative values (and TimestampBeforeMax's
// zero, its default) are no limit, to the ends of an int64.
func TestTimestampBoundsUnlimited(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{TimestampBeforeMax: -1, TimestampAfterMax: -time.Hour})
	defer l.Close()
	appendOK(t, l, tsBatch(t, compression.None, 1<<63-1, -1<<63, 0))

	// Only one bound: the message says the other end is open.
	l2, err := Open(e.dir+"-2", Config{TimestampBeforeMax: time.Hour, TimestampAfterMax: -1}, Options{FS: e.fs, Clock: e.clock})
	require.NoError(t, err)
	defer l2.Close()
	now := e.clock.Now().UnixMilli()
	appendOK(t, l2, tsBatch(t, compression.None, 1<<63-1))
	err = refusedTs(t, l2, tsBatch(t, compression.None, -1<<63), 1)
	require.ErrorContains(t, err, fmt.Sprintf("should be within [%d, +inf]", now-hourMs))
}

// TestTimestampBoundsSkipNoTimestamp: a record of timestamp -1 (none) is
// not checked, as Kafka's validateTimestamp skips NO_TIMESTAMP, even in a
// window that excludes -1; the other records of its batch are.
func TestTimestampBoundsSkipNoTimestamp(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{TimestampBeforeMax: time.Hour, TimestampAfterMax: time.Hour})
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	appendOK(t, l, tsBatch(t, compression.None, -1))
	appendOK(t, l, tsBatch(t, compression.None, -1, now, -1))
	refusedTs(t, l, tsBatch(t, compression.None, -1, now+hourMs+1), 4)
	refusedTs(t, l, tsBatch(t, compression.None, -1, -2), 4) // -2 is a timestamp, long before the window
}

// TestTimestampBoundsWholeAppend: one record out of the window among good
// ones refuses its batch, and with it every batch of the append: nothing
// is written; uncompressed and in every codec (its records are read as
// they decompress).
func TestTimestampBoundsWholeAppend(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			e := newEnv(t)
			l := e.open(Config{})
			defer l.Close()
			now := e.clock.Now().UnixMilli()
			err := refusedTs(t, l, tsBatch(t, codec, now, now-1, now+2*hourMs, now+1), 0)
			require.ErrorContains(t, err, fmt.Sprintf("stamped %d", now+2*hourMs))
			require.ErrorContains(t, err, "batch at 0")

			good := tsBatch(t, codec, now, now+1)
			bad := tsBatch(t, codec, now, now+2*hourMs)
			err = refusedTs(t, l, append(bytes.Clone(good), bad...), 0)
			require.ErrorContains(t, err, fmt.Sprintf("batch at %d", len(good)), "the second batch")

			appendOK(t, l, append(bytes.Clone(good), good...))
			require.Len(t, readAll(t, l, 0), 4)
		})
	}
}

// TestTimestampBoundsLogAppendTime: a LogAppendTime topic checks nothing
// (the log stamps its batches), as Kafka's validateTimestamp checks
// CreateTime topics only; switched to CreateTime (a reopen, as a config
// change does), the same batch is refused.
func TestTimestampBoundsLogAppendTime(t *testing.T) {
	e := newEnv(t)
	cfg := Config{TimestampType: LogAppendTime, TimestampBeforeMax: time.Hour}
	l := e.open(cfg)
	now := e.clock.Now().UnixMilli()
	far := func() []byte { return tsBatch(t, compression.Zstd, now+24*hourMs, now-24*hourMs) }
	res := appendOK(t, l, far())
	require.Equal(t, now, res.LogAppendTime)
	require.NoError(t, l.Close())

	cfg.TimestampType = CreateTime
	l = e.open(cfg)
	defer l.Close()
	refusedTs(t, l, far(), 2)
}

// TestTimestampBoundsByTheLogsClock: the window moves with the log's
// clock (Options.Clock): a batch refused now is taken once the clock has
// come within an hour of it, and one taken is refused once the clock has
// moved more than TimestampBeforeMax past it.
func TestTimestampBoundsByTheLogsClock(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{TimestampBeforeMax: time.Hour})
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	ahead := tsBatch(t, compression.None, now+3*hourMs)
	refusedTs(t, l, ahead, 0)
	e.clock.Advance(2 * time.Hour)
	appendOK(t, l, ahead)
	e.clock.Advance(3*time.Hour + time.Millisecond)
	refusedTs(t, l, tsBatch(t, compression.None, now+3*hourMs), 1)
}

// TestTimestampBoundsIdempotent: a batch of an idempotent producer refused
// for its timestamps leaves the producer's state as it was: its sequence
// number goes to the next batch, which is taken, not refused as out of
// order, nor answered as a duplicate; and a retry is checked before it is
// looked up as a duplicate.
func TestTimestampBoundsIdempotent(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	batch := func(seq int32, ts ...int64) []byte {
		var b record.Builder
		b.Reset()
		b.SetProducer(9, 0, seq)
		for _, s := range ts {
			b.Append(s, []byte("k"), []byte("v"), nil)
		}
		out, err := b.AppendTo(nil, compression.None)
		require.NoError(t, err)
		return out
	}
	appendOK(t, l, batch(0, now, now))
	refusedTs(t, l, batch(2, now, now+2*hourMs), 2)
	refusedTs(t, l, batch(2, now+2*hourMs), 2)
	res := appendOK(t, l, batch(2, now))
	require.False(t, res.Duplicate)
	require.EqualValues(t, 2, res.FirstOffset)
	requireDuplicate(t, l, batch(2, now), 2)
	res = appendOK(t, l, batch(3, now, now))
	require.EqualValues(t, 3, res.FirstOffset)

	// The bounds come before the look-up of duplicates, as Kafka's
	// LogValidator comes before its producer state: once the clock has
	// stepped back more than an hour, a retry of the last batch is
	// refused, not answered as a duplicate.
	e.clock.Advance(-2 * time.Hour)
	refusedTs(t, l, batch(3, now, now), 5)
	e.clock.Advance(2 * time.Hour)
	requireDuplicate(t, l, batch(3, now, now), 3)
}

// TestTimestampBoundsCompacted: on a compacted topic, whose records are
// decoded for their keys, the bounds hold too; a batch with a record
// without a key and another out of the window is refused with
// ErrInvalidTimestamp, as Kafka's processRecordErrors answers
// INVALID_TIMESTAMP when any record's timestamp is refused; a record
// without a key whose own timestamp is out of the window is refused for
// its key alone (validateRecord checks the key first), ErrInvalidRecord.
func TestTimestampBoundsCompacted(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.LZ4} {
		t.Run(codec.String(), func(t *testing.T) {
			e := newEnv(t)
			l := e.open(Config{CleanupPolicy: Compact})
			defer l.Close()
			now := e.clock.Now().UnixMilli()
			refusedTs(t, l, tsBatch(t, codec, now, now+2*hourMs), 0)

			data := batchOf(t, codec, kv{value: []byte("no key"), ts: now}, kv{key: []byte("k"), value: []byte("late"), ts: now + 2*hourMs})
			refusedTs(t, l, data, 0)

			data = batchOf(t, codec, kv{key: []byte("k"), value: []byte("v"), ts: now}, kv{value: []byte("no key, late"), ts: now + 2*hourMs})
			_, err := l.Append(context.Background(), data, AppendOptions{})
			require.ErrorIs(t, err, ErrInvalidRecord)
			require.NotErrorIs(t, err, ErrInvalidTimestamp)
			require.ErrorContains(t, err, "needs a key")
			require.Zero(t, l.LogEndOffset())

			appendOK(t, l, tsBatch(t, codec, now, now+hourMs))
		})
	}
}
