package log

import (
	"context"
	"math"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestOffsetOfMaxTimestampBelowModel checks OffsetOfMaxTimestampBelow
// against the records themselves: the first record with the largest
// timestamp among those from the log start up to a bound, over random
// timestamps, segment sizes, log starts and bounds (a bound inside the
// last segment, whose max timestamp may be a record's above it, among
// them).
func TestOffsetOfMaxTimestampBelowModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		e := newEnv(t)
		cfg := Config{SegmentBytes: int64(rapid.IntRange(200, 2000).Draw(rt, "segment")), IndexIntervalBytes: 64}
		l := e.open(cfg)
		defer l.Close()
		var tss []int64
		for range rapid.IntRange(1, 30).Draw(rt, "batches") {
			recs := make([]kv, rapid.IntRange(1, 5).Draw(rt, "records"))
			for i := range recs {
				ts := rapid.Int64Range(-1, 60).Draw(rt, "ts")
				recs[i] = kv{[]byte("k"), []byte("v"), ts}
				tss = append(tss, ts)
			}
			appendOK(t, l, batchOf(t, compression.None, recs...))
		}
		_, err := l.DeleteRecordsBefore(context.Background(), rapid.Int64Range(0, int64(len(tss))).Draw(rt, "start"))
		require.NoError(rt, err)
		for range 5 {
			upTo := rapid.Int64Range(0, int64(len(tss))+1).Draw(rt, "upTo")
			best, want := int64(math.MinInt64), int64(-1)
			for off := l.LogStartOffset(); off < min(upTo, int64(len(tss))); off++ {
				if tss[off] > best {
					best, want = tss[off], off
				}
			}
			got, ok, err := l.OffsetOfMaxTimestampBelow(context.Background(), upTo)
			require.NoError(rt, err)
			require.Equal(rt, want >= 0, ok, "start %d, below %d, timestamps %v", l.LogStartOffset(), upTo, tss)
			if ok {
				require.Equal(rt, want, got, "start %d, below %d, timestamps %v", l.LogStartOffset(), upTo, tss)
			}
		}
	})
}

// TestOffsetOfMaxTimestampBelowBounded: the search below a bound inside a
// segment, which takes that segment's largest timestamp below the bound
// from its indexes and a short read (segment.MaxTimestampBelow), answers
// as the search that reads the whole segment and as the records
// themselves, over random timestamps (some below -1), index intervals,
// segment sizes and bounds, on a log appended to, reopened (cleanly or
// after a crash), truncated, and with its start moved.
func TestOffsetOfMaxTimestampBelowBounded(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		e := newEnv(t)
		cfg := Config{
			SegmentBytes:       int64(rapid.IntRange(300, 3000).Draw(rt, "segment")),
			IndexIntervalBytes: rapid.IntRange(1, 300).Draw(rt, "interval"),
		}
		l := e.open(cfg)
		defer func() { l.Close() }()
		var tss []int64
		appendSome := func() {
			for range rapid.IntRange(1, 15).Draw(rt, "batches") {
				recs := make([]kv, rapid.IntRange(1, 5).Draw(rt, "records"))
				for i := range recs {
					ts := rapid.Int64Range(-3, 60).Draw(rt, "ts")
					recs[i] = kv{[]byte("k"), []byte("v"), ts}
					tss = append(tss, ts)
				}
				appendOK(rt, l, batchOf(rt, compression.None, recs...))
			}
		}
		appendSome()
		ctx := context.Background()
		for range rapid.IntRange(1, 6).Draw(rt, "steps") {
			switch rapid.IntRange(0, 4).Draw(rt, "step") {
			case 0:
				appendSome()
			case 1:
				require.NoError(rt, l.Close())
				l = e.open(cfg)
			case 2:
				l = e.crashReopen(l, cfg)
			case 3:
				end, err := l.TruncateTo(rapid.Int64Range(l.LogStartOffset(), int64(len(tss))).Draw(rt, "truncate"))
				require.NoError(rt, err)
				tss = tss[:end]
			case 4:
				_, err := l.DeleteRecordsBefore(context.Background(), rapid.Int64Range(l.LogStartOffset(), int64(len(tss))).Draw(rt, "start"))
				require.NoError(rt, err)
			}
			require.EqualValues(rt, len(tss), l.LogEndOffset())
			for range 8 {
				upTo := rapid.Int64Range(0, int64(len(tss))+1).Draw(rt, "upTo")
				best, want := int64(math.MinInt64), int64(-1)
				for off := l.LogStartOffset(); off < min(upTo, int64(len(tss))); off++ {
					if tss[off] > best {
						best, want = tss[off], off
					}
				}
				got, ok, err := l.OffsetOfMaxTimestampBelow(ctx, upTo)
				require.NoError(rt, err)
				full, fullOK, err := offsetOfMaxTimestampBelowUnbounded(ctx, l, upTo)
				require.NoError(rt, err)
				require.Equal(rt, want >= 0, ok, "start %d, below %d, timestamps %v", l.LogStartOffset(), upTo, tss)
				require.Equal(rt, fullOK, ok, "start %d, below %d, timestamps %v", l.LogStartOffset(), upTo, tss)
				if ok {
					require.Equal(rt, want, got, "start %d, below %d, timestamps %v", l.LogStartOffset(), upTo, tss)
					require.Equal(rt, full, got, "start %d, below %d, timestamps %v", l.LogStartOffset(), upTo, tss)
				}
			}
		}
	})
}

// offsetOfMaxTimestampBelowUnbounded is OffsetOfMaxTimestampBelow as it
// was before segment.MaxTimestampBelow: the segment that holds upTo counts
// with its max timestamp, and is read whole when no record below upTo has
// it. Tests compare the two.
func offsetOfMaxTimestampBelowUnbounded(ctx context.Context, l *Log, upTo int64) (int64, bool, error) {
	return l.searchTime(ctx, ctx, "offset of the largest timestamp", func(ctx context.Context, v timeView) (int64, bool, error) {
		v.end = min(v.end, upTo)
		return l.offsetOfMaxTimestamp(ctx, v, false)
	})
}
