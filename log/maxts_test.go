package log

import (
	"fmt"
	"math"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestOffsetOfMaxTimestamp: the first record with the largest timestamp
// from the log start on (KIP-734), whatever segment and batch it is in,
// and once DeleteRecords has moved the log start past it, the largest of
// what is left.
func TestOffsetOfMaxTimestamp(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 300, IndexIntervalBytes: 50})
	defer l.Close()
	_, ok, err := l.OffsetOfMaxTimestamp()
	require.NoError(t, err)
	require.False(t, ok, "an empty log")

	k := []byte("k")
	at := func(tss ...int64) []byte {
		recs := make([]kv, len(tss))
		for i, ts := range tss {
			recs[i] = kv{k, []byte(fmt.Sprint(ts)), ts}
		}
		return batchOf(t, compression.None, recs...)
	}
	appendOK(t, l, at(10, 50, 20))   // 0-2
	appendOK(t, l, at(50, 30))       // 3-4
	appendOK(t, l, at(40, 45, 7, 8)) // 5-8
	appendOK(t, l, at(49))           // 9
	require.Greater(t, l.Segments(), 1)
	want := func(off int64) {
		t.Helper()
		got, ok, err := l.OffsetOfMaxTimestamp()
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, off, got)
	}
	want(1) // the first 50
	_, err = l.DeleteRecordsBefore(2)
	require.NoError(t, err)
	want(3) // the second 50
	_, err = l.DeleteRecordsBefore(4)
	require.NoError(t, err)
	want(9) // 49
	_, err = l.DeleteRecordsBefore(10)
	require.NoError(t, err)
	_, ok, err = l.OffsetOfMaxTimestamp()
	require.NoError(t, err)
	require.False(t, ok, "every record deleted")
	appendOK(t, l, at(-1, 3))
	want(11)
}

// TestOffsetOfMaxTimestampModel checks OffsetOfMaxTimestamp against the
// records themselves, over random timestamps, segment sizes, log starts
// and a reopen.
func TestOffsetOfMaxTimestampModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		e := newEnv(t)
		cfg := Config{SegmentBytes: int64(rapid.IntRange(200, 2000).Draw(rt, "segment")), IndexIntervalBytes: 64}
		l := e.open(cfg)
		defer func() { l.Close() }()
		var tss []int64
		batches := rapid.IntRange(1, 30).Draw(rt, "batches")
		for range batches {
			n := rapid.IntRange(1, 5).Draw(rt, "records")
			recs := make([]kv, n)
			for i := range recs {
				ts := rapid.Int64Range(-1, 60).Draw(rt, "ts")
				recs[i] = kv{[]byte("k"), []byte("v"), ts}
				tss = append(tss, ts)
			}
			appendOK(t, l, batchOf(t, compression.None, recs...))
		}
		start := rapid.Int64Range(0, int64(len(tss))).Draw(rt, "start")
		_, err := l.DeleteRecordsBefore(start)
		require.NoError(rt, err)
		check := func() {
			best, want := int64(math.MinInt64), int64(-1)
			for off := l.LogStartOffset(); off < int64(len(tss)); off++ {
				if tss[off] > best {
					best, want = tss[off], off
				}
			}
			got, ok, err := l.OffsetOfMaxTimestamp()
			require.NoError(rt, err)
			require.Equal(rt, want >= 0, ok, "start %d, timestamps %v", l.LogStartOffset(), tss)
			if ok {
				require.Equal(rt, want, got, "start %d, timestamps %v", l.LogStartOffset(), tss)
			}
		}
		check()
		require.NoError(rt, l.Close())
		l = e.open(cfg)
		check()
	})
}
