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
		_, err := l.DeleteRecordsBefore(rapid.Int64Range(0, int64(len(tss))).Draw(rt, "start"))
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
