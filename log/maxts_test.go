package log

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
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
	_, ok, err := l.OffsetOfMaxTimestamp(context.Background())
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
		got, ok, err := l.OffsetOfMaxTimestamp(context.Background())
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, off, got)
	}
	want(1) // the first 50
	_, err = l.DeleteRecordsBefore(context.Background(), 2)
	require.NoError(t, err)
	want(3) // the second 50
	_, err = l.DeleteRecordsBefore(context.Background(), 4)
	require.NoError(t, err)
	want(9) // 49
	_, err = l.DeleteRecordsBefore(context.Background(), 10)
	require.NoError(t, err)
	_, ok, err = l.OffsetOfMaxTimestamp(context.Background())
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
		_, err := l.DeleteRecordsBefore(context.Background(), start)
		require.NoError(rt, err)
		check := func() {
			best, want := int64(math.MinInt64), int64(-1)
			for off := l.LogStartOffset(); off < int64(len(tss)); off++ {
				if tss[off] > best {
					best, want = tss[off], off
				}
			}
			got, ok, err := l.OffsetOfMaxTimestamp(context.Background())
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

// TestOffsetOfMaxTimestampAgainstRecords: OffsetOfMaxTimestamp against
// the records the log returns, over codecs, compaction (emptied batches),
// DeleteRecords inside segments, LogAppendTime, ties and reopens (from a
// review).
func TestOffsetOfMaxTimestampAgainstRecords(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		e := newEnv(t)
		cfg := Config{SegmentBytes: int64(rapid.IntRange(200, 1500).Draw(rt, "segment")), IndexIntervalBytes: 64,
			CleanupPolicy: Compact | Delete, RetentionTime: -1}
		if rapid.Bool().Draw(rt, "lat") {
			cfg.TimestampType = LogAppendTime
		}
		l := e.open(cfg)
		defer func() { l.Close() }()
		check := func() {
			start := l.LogStartOffset()
			recs := readAll(rt, l, start)
			best, want := int64(math.MinInt64), int64(-1)
			for _, r := range recs {
				if r.Offset < start {
					continue
				}
				if ts := r.Timestamp.UnixMilli(); ts > best {
					best, want = ts, r.Offset
				}
			}
			got, ok, err := l.OffsetOfMaxTimestamp(context.Background())
			require.NoError(rt, err)
			require.Equal(rt, want >= 0, ok)
			if ok {
				require.Equal(rt, want, got, "best ts %d", best)
			}
		}
		ops := rapid.IntRange(1, 40).Draw(rt, "ops")
		for range ops {
			switch rapid.IntRange(0, 9).Draw(rt, "op") {
			case 0:
				require.NoError(rt, l.Roll())
			case 1:
				off := rapid.Int64Range(l.LogStartOffset(), l.LogEndOffset()).Draw(rt, "del")
				_, err := l.DeleteRecordsBefore(context.Background(), off)
				require.NoError(rt, err)
			case 2:
				_, err := l.Compact(context.Background())
				require.NoError(rt, err)
			case 3:
				require.NoError(rt, l.Close())
				l = e.open(cfg)
			case 4:
				e.clock.Advance(time.Duration(rapid.Int64Range(0, 5000).Draw(rt, "adv")) * time.Millisecond)
			default:
				n := rapid.IntRange(1, 4).Draw(rt, "n")
				recs := make([]kv, n)
				for i := range recs {
					recs[i] = kv{fmt.Appendf(nil, "k%d", rapid.IntRange(0, 3).Draw(rt, "key")), []byte("v"),
						rapid.Int64Range(-3, 40).Draw(rt, "ts")}
				}
				codec := compression.Codec(rapid.IntRange(0, 4).Draw(rt, "codec"))
				appendOK(rt, l, batchOf(rt, codec, recs...))
			}
			check()
		}
	})
}

// TestMaxTimestampAcrossTheWholeRange: OffsetOfMaxTimestamp answers for
// timestamps from MinInt64 to MaxInt64 (a record stamped math.MaxInt64);
// its first search, a bisection, computed its midpoint lo + (hi-lo+1)/2 in
// uint64, which wrapped to lo there, and never ended, holding the
// partition's lock (from a review). It now reads the records instead.
func TestMaxTimestampAcrossTheWholeRange(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{TimestampAfterMax: -1}) // a record stamped math.MaxInt64
	defer l.Close()
	appendOK(t, l, batchOf(t, compression.None,
		kv{[]byte("k"), []byte("a"), 1},
		kv{[]byte("k"), []byte("b"), math.MaxInt64},
		kv{[]byte("k"), []byte("c"), 2}))
	_, err := l.DeleteRecordsBefore(context.Background(), 1)
	require.NoError(t, err)
	type answer struct {
		off int64
		ok  bool
		err error
	}
	done := make(chan answer, 1)
	go func() {
		off, ok, err := l.OffsetOfMaxTimestamp(context.Background())
		done <- answer{off, ok, err}
	}()
	select {
	case a := <-done:
		require.NoError(t, a.err)
		require.True(t, a.ok)
		require.EqualValues(t, 1, a.off)
	case <-time.After(testkit.HangGuard):
		t.Fatal("OffsetOfMaxTimestamp does not return (the bisection loops)")
	}
}

// TestMaxTimestampOverEmptiedBatch: a producer's last batch that
// compaction empties keeps its max timestamp (as Kafka's cleaner does),
// and so does the cleaned segment; OffsetOfMaxTimestamp finds the record
// with the largest timestamp there is, not "none" (which it answered
// before, looking only for the segment's max).
func TestMaxTimestampOverEmptiedBatch(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 1000, CleanupPolicy: Compact})
	defer l.Close()
	var b record.Builder
	b.Reset()
	b.SetProducer(7, 0, 0)
	b.Append(5000, []byte("k"), []byte("newest timestamp"), nil)
	data, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	appendOK(t, l, data)                                                                        // 0, producer 7's last batch
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("k"), []byte("latest value"), 1000})) // 1
	require.NoError(t, l.Roll())
	_, err = l.Compact(context.Background())
	require.NoError(t, err)
	recs := readAll(t, l, 0)
	require.Len(t, recs, 1)
	require.EqualValues(t, 1, recs[0].Offset)

	off, ok, err := l.OffsetOfMaxTimestamp(context.Background())
	require.NoError(t, err)
	require.True(t, ok, "the log has a record (offset 1, timestamp 1000)")
	require.EqualValues(t, 1, off)
}

// TestAppendSetsTheMaxTimestamp: the header's max timestamp decides the
// segment's age, the time index and ListOffset, so Append sets it to the
// records' largest, as Kafka's LogValidator does (some clients, Sarama
// before 1.45.1, leave it -1), compressed or not, compacted topic or not;
// on a LogAppendTime topic the log sets it to the append time anyway.
func TestAppendSetsTheMaxTimestamp(t *testing.T) {
	for _, cfg := range []Config{{}, {CleanupPolicy: Compact}, {TimestampType: LogAppendTime}} {
		for _, codec := range []compression.Codec{compression.None, compression.Zstd} {
			e := newEnv(t)
			l := e.open(cfg)
			for i, claim := range []int64{9_999_999, 999, -1, 1000} {
				data := batchOf(t, codec, kv{[]byte("k"), []byte("v"), 1000}, kv{[]byte("k"), []byte("w"), 500})
				binary.BigEndian.PutUint64(data[35:], uint64(claim)) // header max timestamp
				binary.BigEndian.PutUint32(data[17:], crc32.Checksum(data[21:], crc32.MakeTable(crc32.Castagnoli)))
				appendOK(t, l, data)
				got, err := l.Read(int64(2*i), 1<<20, math.MaxInt64)
				require.NoError(t, err)
				b, err := record.Parse(got, 0)
				require.NoError(t, err)
				require.NoError(t, b.Validate(0), "the CRC follows")
				if cfg.TimestampType == LogAppendTime {
					require.Equal(t, e.clock.Now().UnixMilli(), b.MaxTimestamp())
					continue
				}
				require.EqualValues(t, 1000, b.MaxTimestamp(), "%v %v claimed %d", cfg.CleanupPolicy, codec, claim)
			}
			if cfg.TimestampType != LogAppendTime {
				off, ok, err := l.OffsetOfMaxTimestamp(context.Background())
				require.NoError(t, err)
				require.True(t, ok)
				require.Zero(t, off)
			}
			require.NoError(t, l.Close())
		}
	}
}
