package log

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestConfigDefaultsAndExplicitValues: zero fields take Kafka's defaults,
// negative ones ask for zero or "unlimited" explicitly, and an invalid
// value is reported as it is (not as the name of a valid one).
func TestConfigDefaultsAndExplicitValues(t *testing.T) {
	c := Config{}.WithDefaults()
	require.Equal(t, SyncAlways, c.Sync)
	require.Equal(t, CreateTime, c.TimestampType)
	require.Equal(t, Delete, c.CleanupPolicy)
	require.Equal(t, DefaultDirtyRatio, c.MinCleanableDirtyRatio)

	c = Config{MinCompactionLag: -time.Second, MinCleanableDirtyRatio: -1, FlushMessages: -1, FlushInterval: -time.Second}.WithDefaults()
	require.NoError(t, c.Validate())
	require.Zero(t, c.MinCompactionLag)
	require.Zero(t, c.MinCleanableDirtyRatio)
	require.Zero(t, c.FlushMessages)
	require.Zero(t, c.FlushInterval)

	require.Equal(t, record.LogAppendTime, LogAppendTime.Record())
	require.Equal(t, record.CreateTime, CreateTime.Record())
	require.Equal(t, record.CreateTime, TimestampDefault.Record())

	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Sync: 9}, "Sync = SyncPolicy(9)"},
		{Config{CleanupPolicy: 7}, "CleanupPolicy = CleanupPolicy(7)"},
		{Config{TimestampType: 5}, "TimestampType = TimestampType(5)"},
		{Config{MinCleanableDirtyRatio: 2}, "MinCleanableDirtyRatio = 2"},
		{Config{MinCleanableDirtyRatio: math.NaN()}, "MinCleanableDirtyRatio = NaN"},
		// The Kafka config and its range, as Kafka's message has them.
		{Config{SegmentBytes: 13}, "SegmentBytes = 13 (segment.bytes: from 14 to 2147483647)"},
		{Config{SegmentIndexBytes: 11}, "SegmentIndexBytes = 11 (segment.index.bytes: from 12 to 2147483647)"},
		{Config{IndexIntervalBytes: -2}, "index.interval.bytes: from 0 to 2147483647"},
		{Config{MaxMessageBytes: 60}, "max.message.bytes: from 61, a batch header, to 2147483647"},
		{Config{MaxCompactionLag: time.Second, MinCompactionLag: time.Minute}, "max.compaction.lag.ms: at least min.compaction.lag.ms"},
		{Config{MinCleanableDirtyRatio: 1.5}, "min.cleanable.dirty.ratio: from 0 to 1"},
		{Config{CleanupPolicy: 4}, "cleanup.policy"},
		{Config{TimestampType: 3}, "message.timestamp.type"},
	} {
		err := tc.c.Validate()
		require.ErrorIs(t, err, ErrInvalidConfig, tc.want)
		require.ErrorContains(t, err, tc.want)
	}
	// Kafka's ints (segment.index.bytes, index.interval.bytes,
	// max.message.bytes): the largest is taken, one past it refused.
	require.NoError(t, Config{SegmentIndexBytes: math.MaxInt32, IndexIntervalBytes: math.MaxInt32, MaxMessageBytes: math.MaxInt32}.Validate())
	if strconv.IntSize == 64 {
		tooBig := math.MaxInt32 // a variable, so that 32-bit builds compile
		tooBig++
		for _, c := range []Config{{SegmentIndexBytes: tooBig}, {IndexIntervalBytes: tooBig}, {MaxMessageBytes: tooBig}} {
			err := c.Validate()
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorContains(t, err, "= 2147483648 (")
		}
	}
	require.Equal(t, "default", SyncDefault.String())
	require.Equal(t, "never", SyncNever.String())
	require.Equal(t, "compact,delete", (Compact | Delete).String())
	require.Equal(t, "LogAppendTime", LogAppendTime.String())
}

// TestRetentionBelowAMillisecond: durations count in whole milliseconds,
// as Kafka's *.ms configs, so a RetentionTime below 1 ms is Kafka's
// retention.ms=0, which the README said could not be set: a record goes
// once it is 1 ms old (Kafka: now - timestamp > 0), where 1 ms keeps it
// until it is 2 ms old.
func TestRetentionBelowAMillisecond(t *testing.T) {
	for _, tc := range []struct {
		retention time.Duration
		kept      bool
	}{{time.Nanosecond, false}, {999 * time.Microsecond, false}, {time.Millisecond, true}} {
		e := newEnv(t)
		l := e.open(Config{RetentionTime: tc.retention, SegmentBytes: 500})
		now := e.clock.Now().UnixMilli()
		for i := range 10 {
			appendOK(t, l, valueBatch(t, now, fmt.Sprint(i)))
		}
		_, err := l.ApplyRetention(context.Background())
		require.NoError(t, err)
		require.Zero(t, l.LogStartOffset(), "%v: nothing is older than now", tc.retention)
		e.clock.Advance(time.Millisecond)
		_, err = l.ApplyRetention(context.Background())
		require.NoError(t, err)
		if tc.kept {
			require.Zero(t, l.LogStartOffset(), "%v: 1 ms old", tc.retention)
		} else {
			require.EqualValues(t, 10, l.LogStartOffset(), "%v: 1 ms old, past retention.ms=0", tc.retention)
		}
		require.NoError(t, l.Close())
	}
}

// TestFlushIntervalInWholeMilliseconds: FlushInterval counts in whole
// milliseconds, as Config says of every duration and as Kafka's flush.ms
// counts (time.milliseconds - lastFlushTime >= flushMs). A FlushInterval
// of 1.5 ms is flush.ms=1, due 1 ms after the last flush; one below 1 ms
// is flush.ms=0, due at every append. The log compared the time since the
// last flush with the duration as given, fraction and all, so that 1.5 ms
// waited 2 ms of the clock, and 0.5 ms was not due at an append in the
// same millisecond.
func TestFlushIntervalInWholeMilliseconds(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		advance  time.Duration // before the second append
	}{
		{1500 * time.Microsecond, time.Millisecond},
		{500 * time.Microsecond, 0},
		{time.Second, time.Second},
	} {
		t.Run(tc.interval.String(), func(t *testing.T) {
			e := newEnv(t)
			l := e.open(Config{Sync: SyncPeriodic, FlushInterval: tc.interval, RetentionTime: -1}) // no retention roll: a flush too
			defer l.Close()
			e.clock.Advance(tc.advance)
			appendOK(t, l, valueBatch(t, 1, "a"))
			require.EqualValues(t, 1, l.DurableOffset(), "flush.ms=%d is due %v after the last flush", tc.interval.Milliseconds(), tc.advance)
			// By Maintain too.
			appendOK(t, l, valueBatch(t, 1, "b")) // not due: no time passed (but at flush.ms=0)
			e.clock.Advance(tc.advance)
			require.NoError(t, l.Maintain(context.Background()))
			require.EqualValues(t, 2, l.DurableOffset(), "Maintain: flush.ms=%d is due %v after the last flush", tc.interval.Milliseconds(), tc.advance)
		})
	}
}

// TestConfigDefaultsAndRangesAreKafkas pins what Config's field docs say
// of each field: its default is Kafka's (the numbers of Kafka 4's
// LogConfig and ServerLogConfigs, in Kafka's units), and the least and
// largest values Validate takes are the documented ones (where they
// differ from Kafka's, the field doc and docs/details.md, "Topic configs",
// say so).
func TestConfigDefaultsAndRangesAreKafkas(t *testing.T) {
	d := Config{}.WithDefaults()
	for _, tc := range []struct {
		kafka string
		got   any
		want  any
	}{
		{"segment.bytes", d.SegmentBytes, int64(1073741824)},
		{"segment.ms", d.SegmentTime.Milliseconds(), int64(604800000)},
		{"segment.index.bytes", d.SegmentIndexBytes, 10485760},
		{"index.interval.bytes", d.IndexIntervalBytes, 4096},
		{"max.message.bytes", d.MaxMessageBytes, 1048588}, // 1 MiB + the 12-byte log overhead
		{"retention.ms", d.RetentionTime.Milliseconds(), int64(604800000)},
		{"retention.bytes (Kafka -1: unlimited)", d.RetentionBytes, int64(0)},
		{"cleanup.policy", d.CleanupPolicy.String(), "delete"},
		{"delete.retention.ms", d.DeleteRetentionTime.Milliseconds(), int64(86400000)},
		{"min.compaction.lag.ms", d.MinCompactionLag.Milliseconds(), int64(0)},
		{"max.compaction.lag.ms (Kafka Long.MAX_VALUE: never)", d.MaxCompactionLag, time.Duration(0)},
		{"min.cleanable.dirty.ratio", d.MinCleanableDirtyRatio, 0.5},
		{"flush.messages (Kafka Long.MAX_VALUE: unlimited)", d.FlushMessages, int64(0)},
		{"flush.ms (Kafka Long.MAX_VALUE: unlimited)", d.FlushInterval, time.Duration(0)},
		{"message.timestamp.type", d.TimestampType.String(), "CreateTime"},
		{"message.timestamp.before.max.ms (Kafka Long.MAX_VALUE: unlimited)", d.TimestampBeforeMax, time.Duration(0)},
		{"message.timestamp.after.max.ms (Kafka 4, KIP-1030)", d.TimestampAfterMax.Milliseconds(), int64(3600000)},
	} {
		require.Equal(t, tc.want, tc.got, tc.kafka)
	}

	type rangeCase struct {
		c  Config
		ok bool
	}
	cases := []rangeCase{
		{Config{SegmentBytes: 14}, true}, // Kafka before 4.0; Kafka 4: 1 MiB
		{Config{SegmentBytes: 13}, false},
		{Config{SegmentBytes: math.MaxInt32}, true},
		{Config{SegmentBytes: math.MaxInt32 + 1}, false},
		{Config{SegmentTime: -1}, true}, // never (Kafka: at least 1 ms)
		{Config{SegmentTime: time.Nanosecond}, true},
		{Config{SegmentIndexBytes: 12}, true}, // Kafka: 4
		{Config{SegmentIndexBytes: 11}, false},
		{Config{IndexIntervalBytes: 1}, true}, // Kafka's 0
		{Config{IndexIntervalBytes: -1}, false},
		{Config{MaxMessageBytes: record.HeaderSize}, true}, // Kafka: 0
		{Config{MaxMessageBytes: record.HeaderSize - 1}, false},
		{Config{RetentionTime: -2}, true}, // unlimited (Kafka: -1 only)
		{Config{RetentionBytes: math.MinInt64}, true},
		{Config{CleanupPolicy: Compact | Delete}, true},
		{Config{CleanupPolicy: 4}, false},
		{Config{DeleteRetentionTime: -1}, true}, // zero
		{Config{MinCompactionLag: -1}, true},    // zero
		{Config{MaxCompactionLag: -1, MinCompactionLag: time.Hour}, true},
		{Config{MaxCompactionLag: time.Hour, MinCompactionLag: time.Hour}, true},
		{Config{MaxCompactionLag: time.Hour, MinCompactionLag: time.Hour + time.Millisecond}, false},
		{Config{MinCleanableDirtyRatio: 1}, true},
		{Config{MinCleanableDirtyRatio: math.Nextafter(1, 2)}, false},
		{Config{MinCleanableDirtyRatio: -0.5}, true}, // zero
		{Config{Sync: SyncNever}, true},
		{Config{Sync: SyncNever + 1}, false},
		{Config{FlushMessages: -1, FlushInterval: -1}, true}, // unlimited
		{Config{TimestampType: LogAppendTime}, true},
		{Config{TimestampType: LogAppendTime + 1}, false},
		// Kafka: from 0 (here below 1 ms) to Long.MAX_VALUE (here any
		// negative: unlimited); every Duration is one of them.
		{Config{TimestampBeforeMax: time.Nanosecond, TimestampAfterMax: time.Nanosecond}, true},
		{Config{TimestampBeforeMax: math.MaxInt64, TimestampAfterMax: math.MaxInt64}, true},
		{Config{TimestampBeforeMax: math.MinInt64, TimestampAfterMax: math.MinInt64}, true},
		// Java ints, as in Kafka.
		{Config{SegmentIndexBytes: math.MaxInt32}, true},
		{Config{IndexIntervalBytes: math.MaxInt32}, true},
		{Config{MaxMessageBytes: math.MaxInt32}, true},
	}
	if math.MaxInt > math.MaxInt32 {
		cases = append(cases,
			rangeCase{Config{SegmentIndexBytes: testkit.PastInt32(1)}, false},
			rangeCase{Config{IndexIntervalBytes: testkit.PastInt32(1)}, false},
			rangeCase{Config{MaxMessageBytes: testkit.PastInt32(1)}, false})
	}
	for _, tc := range cases {
		err := tc.c.Validate()
		if tc.ok {
			require.NoError(t, err, "%+v", tc.c)
		} else {
			require.ErrorIs(t, err, ErrInvalidConfig, "%+v", tc.c)
		}
	}
}

// TestConfigNegativeSizesRefused: a negative SegmentBytes,
// SegmentIndexBytes or MaxMessageBytes is out of range, not the default
// (mutants: WithDefaults taking any value at or below 0 for unset).
func TestConfigNegativeSizesRefused(t *testing.T) {
	for _, c := range []Config{{SegmentBytes: -1}, {SegmentIndexBytes: -1}, {MaxMessageBytes: -1}} {
		err := c.Validate()
		require.ErrorIs(t, err, ErrInvalidConfig, "%+v", c)
		require.ErrorContains(t, err, "= -1 (", "%+v", c)
	}
}

// TestConfigNegativeDeleteRetentionIsZero: a negative DeleteRetentionTime
// is zero in the config in effect, as documented (mutant: kept negative).
func TestConfigNegativeDeleteRetentionIsZero(t *testing.T) {
	for _, d := range []time.Duration{-1, -time.Hour} {
		c := Config{DeleteRetentionTime: d}
		require.NoError(t, c.Validate())
		require.Zero(t, c.WithDefaults().DeleteRetentionTime, "%v", d)
	}
}
