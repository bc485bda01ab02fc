package log

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
)

// TestCleanMarkerShapesTrusted: the marker a clean Close writes agrees
// with the files it leaves, whatever their shape — an empty log, an
// active segment rolled empty (its base the log end), records without
// timestamps, the largest timestamp in several batches or inside a
// batch, LogAppendTime, a truncation and appends back to the same end —
// so that Open scans nothing, and the max timestamp it then knows is the
// one the Close knew (OffsetOfMaxTimestamp answers the same).
func TestCleanMarkerShapesTrusted(t *testing.T) {
	const ts = 1_700_000_000_000
	for _, tc := range []struct {
		name string
		cfg  Config
		fill func(t *testing.T, e *env, l *Log)
	}{
		{"empty log", Config{}, func(*testing.T, *env, *Log) {}},
		{"no timestamps", Config{IndexIntervalBytes: 1}, func(t *testing.T, _ *env, l *Log) {
			for range 3 {
				appendOK(t, l, valueBatch(t, record.NoTimestamp, "a", "b"))
			}
		}},
		{"same max in several batches", Config{IndexIntervalBytes: 1}, func(t *testing.T, _ *env, l *Log) {
			appendOK(t, l, valueBatch(t, ts, "a"))
			for range 3 {
				appendOK(t, l, valueBatch(t, ts+100, "b", "c"))
			}
			appendOK(t, l, valueBatch(t, ts+50, "d"))
		}},
		{"max inside a batch", Config{}, func(t *testing.T, _ *env, l *Log) {
			appendOK(t, l, batchOf(t, compression.None, kv{value: []byte("a"), ts: ts + 100}, kv{value: []byte("b"), ts: ts}))
			appendOK(t, l, valueBatch(t, ts+100, "c"))
		}},
		{"first batch of one record at timestamp 0", Config{IndexIntervalBytes: 1}, func(t *testing.T, _ *env, l *Log) {
			appendOK(t, l, valueBatch(t, 0, "a"))
			appendOK(t, l, valueBatch(t, 0, "b"))
		}},
		{"LogAppendTime", Config{TimestampType: LogAppendTime, IndexIntervalBytes: 1}, func(t *testing.T, e *env, l *Log) {
			for range 3 {
				appendOK(t, l, valueBatch(t, ts-1000, "a"))
			}
			e.clock.Advance(time.Second)
			appendOK(t, l, valueBatch(t, ts-1000, "b"))
		}},
		{"active segment rolled empty", Config{RetentionTime: time.Hour, SegmentBytes: 100}, func(t *testing.T, e *env, l *Log) {
			for _, v := range []string{"a", "b", "c"} {
				appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), v))
			}
			e.clock.Advance(2 * time.Hour)
			n, err := l.ApplyRetention(context.Background())
			require.NoError(t, err)
			require.Equal(t, 3, n)
			require.Equal(t, 1, l.Segments())
			require.EqualValues(t, 3, l.LogStartOffset())
		}},
		{"truncated and appended back to the same end", Config{IndexIntervalBytes: 1}, func(t *testing.T, _ *env, l *Log) {
			appendOK(t, l, valueBatch(t, ts, "a"))
			appendOK(t, l, valueBatch(t, ts+100, "b"))
			appendOK(t, l, valueBatch(t, ts+200, "c"))
			end, err := l.TruncateTo(1)
			require.NoError(t, err)
			require.EqualValues(t, 1, end)
			appendOK(t, l, valueBatch(t, ts+50, "d"))
			appendOK(t, l, valueBatch(t, ts+50, "e"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := tc.cfg
			cfg.Sync = SyncAlways
			l := e.open(cfg)
			tc.fill(t, e, l)
			end := l.LogEndOffset()
			wantOff, wantOK, err := l.OffsetOfMaxTimestamp(context.Background())
			require.NoError(t, err)
			require.NoError(t, l.Close())

			for range 2 { // the Close after a clean Open writes a marker it trusts too
				l = e.open(cfg)
				info := l.Recovery()
				require.True(t, info.Clean)
				require.Zero(t, info.SegmentsScanned)
				require.Equal(t, end, l.LogEndOffset())
				off, ok, err := l.OffsetOfMaxTimestamp(context.Background())
				require.NoError(t, err)
				require.Equal(t, wantOK, ok)
				require.Equal(t, wantOff, off)
				require.NoError(t, l.Close())
			}
		})
	}
}
