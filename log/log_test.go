package log

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

func TestAppendReadReopen(t *testing.T) {
	for _, fsName := range []string{"mem", "os"} {
		t.Run(fsName, func(t *testing.T) {
			e := newEnv(t)
			if fsName == "os" {
				e.fs, e.dir = vfs.OS, filepath.Join(t.TempDir(), "topic-0")
			}
			cfg := Config{SegmentBytes: 4096, IndexIntervalBytes: 256}
			l := e.open(cfg)
			var want []string
			for i := range 200 {
				v := fmt.Sprintf("v%03d", i)
				want = append(want, v)
				res := appendOK(t, l, valueBatch(t, 1000+int64(i), v))
				require.EqualValues(t, i, res.FirstOffset)
				require.EqualValues(t, i, res.LastOffset)
			}
			require.EqualValues(t, 200, l.LogEndOffset())
			require.EqualValues(t, 200, l.DurableOffset())
			require.Greater(t, l.Segments(), 3)
			check := func(l *Log) {
				recs := readAll(t, l, 0)
				require.Len(t, recs, len(want))
				for i, r := range recs {
					require.EqualValues(t, i, r.Offset)
					require.Equal(t, want[i], string(r.Value))
				}
				// Reading from the middle starts at that offset's batch.
				recs = readAll(t, l, 123)
				require.Equal(t, "v123", string(recs[0].Value))
			}
			check(l)
			require.NoError(t, l.Close())
			require.ErrorIs(t, l.Close(), nil)
			_, err := l.Append(context.Background(), valueBatch(t, 1, "x"), AppendOptions{})
			require.ErrorIs(t, err, ErrClosed)

			l = e.open(cfg)
			require.True(t, l.Recovery().Clean)
			require.Zero(t, l.Recovery().SegmentsScanned)
			check(l)
			res := appendOK(t, l, valueBatch(t, 5000, "after"))
			require.EqualValues(t, 200, res.FirstOffset)
			require.NoError(t, l.Close())
		})
	}
}

func TestMultiBatchAppendAndCodecs(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	var data []byte
	codecs := []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}
	for i, c := range codecs {
		data = append(data, batchOf(t, c, kv{key: []byte("k"), value: []byte(c.String()), ts: int64(i)}, kv{value: []byte("second"), ts: int64(i)})...)
	}
	res := appendOK(t, l, data)
	require.EqualValues(t, 0, res.FirstOffset)
	require.EqualValues(t, 9, res.LastOffset)
	require.Equal(t, 10, res.Records)
	recs := readAll(t, l, 0)
	require.Len(t, recs, 10)
	for i, c := range codecs {
		require.Equal(t, c.String(), string(recs[2*i].Value))
		require.EqualValues(t, 2*i+1, recs[2*i+1].Offset)
	}
}

func TestAppendErrors(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{MaxMessageBytes: 1000, CleanupPolicy: Compact})
	defer l.Close()
	ctx := context.Background()
	big := valueBatch(t, 1, string(make([]byte, 2000)))
	_, err := l.Append(ctx, big, AppendOptions{})
	require.ErrorIs(t, err, ErrRecordTooLarge)

	good := valueBatch(t, 1, "ok")
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-1] ^= 1
	_, err = l.Append(ctx, corrupt, AppendOptions{})
	require.ErrorIs(t, err, record.ErrCorrupt)
	_, err = l.Append(ctx, good[:len(good)-3], AppendOptions{})
	require.ErrorIs(t, err, record.ErrTruncated)
	_, err = l.Append(ctx, nil, AppendOptions{})
	require.ErrorIs(t, err, ErrInvalidRecord)
	nullKey := batchOf(t, compression.None, kv{value: []byte("v")})
	_, err = l.Append(ctx, nullKey, AppendOptions{})
	require.ErrorIs(t, err, ErrInvalidRecord)
	// Nothing was written by the failures.
	require.EqualValues(t, 0, l.LogEndOffset())
	appendOK(t, l, good)
	require.EqualValues(t, 1, l.LogEndOffset())

	_, err = l.Read(5, 100, math.MaxInt64)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	data, err := l.Read(1, 100, math.MaxInt64)
	require.NoError(t, err)
	require.Nil(t, data)
}

// TestAppendCompressedChecked: compressed records are decompressed and
// their framing checked on append, on compacted topics and others alike,
// as Kafka's broker does: records that do not decompress (a good CRC
// over garbage), whose count disagrees, or that decompress to more than
// consumers would (compression.DefaultDecodeLimit) are refused, and
// nothing is written.
func TestAppendCompressedChecked(t *testing.T) {
	ctx := context.Background()
	for _, policy := range []CleanupPolicy{Delete, Compact} {
		for _, codec := range []compression.Codec{compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
			e := newEnv(t)
			l := e.open(Config{CleanupPolicy: policy})
			good := batchOf(t, codec, kv{key: []byte("k1"), value: []byte("v1")}, kv{key: []byte("k2"), value: []byte("v2")})

			garbage := append([]byte(nil), good...)
			for i := record.HeaderSize; i < len(garbage); i++ {
				garbage[i] = byte(i*13 + 5)
			}
			record.Batch(garbage).UpdateCRC()
			_, err := l.Append(ctx, garbage, AppendOptions{})
			require.ErrorIs(t, err, record.ErrCorrupt, "%v %v", policy, codec)

			miscounted := append([]byte(nil), good...)
			binary.BigEndian.PutUint32(miscounted[57:], 1) // the record count
			binary.BigEndian.PutUint32(miscounted[23:], 0) // and the last offset delta with it
			record.Batch(miscounted).UpdateCRC()
			_, err = l.Append(ctx, miscounted, AppendOptions{})
			require.Error(t, err, "%v %v", policy, codec)
			require.True(t, errors.Is(err, record.ErrCorrupt) || errors.Is(err, ErrInvalidRecord), "%v %v: %v", policy, codec, err)

			require.EqualValues(t, 0, l.LogEndOffset(), "%v %v", policy, codec)
			appendOK(t, l, good)
			require.NoError(t, l.Close())
		}
	}
	if testing.Short() {
		return
	}
	// 65 records of 1 MiB of zeros: a few KiB compressed, over 64 MiB not.
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	zeros := make([]byte, 1<<20)
	recs := make([]kv, 65)
	for i := range recs {
		recs[i] = kv{key: []byte("k"), value: zeros}
	}
	bomb := batchOf(t, compression.Zstd, recs...)
	require.Less(t, len(bomb), DefaultMaxMessageBytes)
	_, err := l.Append(ctx, bomb, AppendOptions{})
	require.ErrorIs(t, err, ErrRecordTooLarge)
	require.NotErrorIs(t, err, record.ErrCorrupt, "a retriable error: the producer would retry it until its delivery timeout")
	require.EqualValues(t, 0, l.LogEndOffset())
}

// TestAppendUndecodableCodecNotRetriable: a batch whose codec bits name
// no codec (5, 6, 7), or whose compressed records do not decompress, will
// never be taken, so its error must not be a retriable one (record.ErrCorrupt
// alone is CORRUPT_MESSAGE, which a producer retries until its delivery
// timeout): it matches ErrInvalidRecord (INVALID_RECORD, not retriable),
// as well as the record.ErrCorrupt and compression error that say why.
func TestAppendUndecodableCodecNotRetriable(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	l := e.open(Config{})
	for _, id := range []byte{5, 6, 7} {
		b := valueBatch(t, 1, "v")
		b[22] = b[22]&^7 | id // the attributes' low byte: codec bits 0-2
		record.Batch(b).UpdateCRC()
		_, err := l.Append(ctx, b, AppendOptions{})
		require.ErrorIs(t, err, ErrInvalidRecord, "codec %d", id)
		require.ErrorIs(t, err, record.ErrCorrupt, "codec %d", id)
		require.ErrorIs(t, err, compression.ErrUnknownCodec, "codec %d", id)
	}
	require.NoError(t, l.Close())
	for _, policy := range []CleanupPolicy{Delete, Compact} {
		l := e.open(Config{CleanupPolicy: policy})
		for _, codec := range []compression.Codec{compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
			garbage := batchOf(t, codec, kv{key: []byte("k"), value: []byte("v")})
			for i := record.HeaderSize; i < len(garbage); i++ {
				garbage[i] = byte(i*13 + 5)
			}
			record.Batch(garbage).UpdateCRC()
			_, err := l.Append(ctx, garbage, AppendOptions{})
			require.ErrorIs(t, err, ErrInvalidRecord, "%v %v", policy, codec)
			require.ErrorIs(t, err, record.ErrCorrupt, "%v %v", policy, codec)
		}
		require.EqualValues(t, 0, l.LogEndOffset())
		require.NoError(t, l.Close())
	}
}

func TestConfigAndDirErrors(t *testing.T) {
	e := newEnv(t)
	_, err := Open(e.dir, Config{SegmentBytes: 1 << 40}, Options{FS: e.fs})
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = Open(e.dir, Config{MinCleanableDirtyRatio: 2}, Options{FS: e.fs})
	require.ErrorIs(t, err, ErrInvalidConfig)

	require.NoError(t, e.fs.MkdirAll("/other", 0o755))
	f, err := e.fs.Create("/other/notes.txt")
	require.NoError(t, err)
	f.Close()
	_, err = Open("/other", Config{}, Options{FS: e.fs})
	require.ErrorIs(t, err, ErrNotLogDir)
}

func TestHighWatermarkBound(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	for i := range 10 {
		appendOK(t, l, valueBatch(t, 1, fmt.Sprint(i)))
	}
	data, err := l.Read(0, 1<<20, 4)
	require.NoError(t, err)
	n := 0
	for p := 0; p < len(data); n++ {
		b, err := record.Parse(data[p:], 0)
		require.NoError(t, err)
		require.Less(t, b.LastOffset(), int64(4))
		p += len(b)
	}
	require.Equal(t, 4, n)
	data, err = l.Read(4, 1<<20, 4)
	require.NoError(t, err)
	require.Nil(t, data)
}

func TestOffsetForTime(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 1024, IndexIntervalBytes: 100})
	defer l.Close()
	for i := range 100 {
		appendOK(t, l, valueBatch(t, int64(i*10), fmt.Sprint(i)))
	}
	for _, tc := range []struct {
		ts   int64
		want int64
		ok   bool
	}{{0, 0, true}, {5, 1, true}, {10, 1, true}, {555, 56, true}, {990, 99, true}, {991, 0, false}, {-5, 0, true}} {
		off, ok, err := l.OffsetForTime(tc.ts)
		require.NoError(t, err)
		require.Equal(t, tc.ok, ok, "ts %d", tc.ts)
		if ok {
			require.Equal(t, tc.want, off, "ts %d", tc.ts)
		}
	}
}

func TestRetention(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 500, RetentionTime: time.Hour})
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	for i := range 40 {
		appendOK(t, l, valueBatch(t, now+int64(i)*60_000, fmt.Sprint(i))) // a minute apart
	}
	segs := l.Segments()
	require.Greater(t, segs, 4)
	n, err := l.ApplyRetention(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)

	e.clock.Advance(time.Hour + 20*time.Minute)
	n, err = l.ApplyRetention(context.Background())
	require.NoError(t, err)
	require.Positive(t, n)
	start := l.LogStartOffset()
	require.Positive(t, start)
	for _, r := range readAll(t, l, start) {
		require.GreaterOrEqual(t, r.Timestamp.UnixMilli(), now+19*60_000-500*60_000/500, "kept records are young enough")
	}
	_, err = l.Read(0, 100, math.MaxInt64)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)

	// Everything expired: every segment but the active one goes.
	e.clock.Advance(24 * time.Hour)
	_, err = l.ApplyRetention(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, l.Segments())
	require.EqualValues(t, 40, l.LogEndOffset())
}

func TestRetentionBytes(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 500, RetentionBytes: 1200, RetentionTime: -1})
	defer l.Close()
	for i := range 60 {
		appendOK(t, l, valueBatch(t, 1, fmt.Sprint(i)))
	}
	_, err := l.ApplyRetention(context.Background())
	require.NoError(t, err)
	require.LessOrEqual(t, l.Size(), int64(1200+500))
	require.GreaterOrEqual(t, l.Size(), int64(1200-500))
	recs := readAll(t, l, l.LogStartOffset())
	require.EqualValues(t, 59, recs[len(recs)-1].Offset)
}

func TestDeleteRecordsAndReopen(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 500}
	l := e.open(cfg)
	for i := range 50 {
		appendOK(t, l, valueBatch(t, 1, fmt.Sprint(i)))
	}
	start, err := l.DeleteRecordsBefore(context.Background(), 33)
	require.NoError(t, err)
	require.EqualValues(t, 33, start)
	_, err = l.Read(32, 100, math.MaxInt64)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	recs := readAll(t, l, 33)
	require.EqualValues(t, 33, recs[0].Offset)
	_, err = l.DeleteRecordsBefore(context.Background(), 51)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	require.NoError(t, l.Close())
	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 33, l.LogStartOffset())
	require.EqualValues(t, 50, l.LogEndOffset())
}

func TestTruncateAndEpochs(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 400}
	l := e.open(cfg)
	ctx := context.Background()
	for i := range 30 {
		_, err := l.Append(ctx, valueBatch(t, 1, fmt.Sprint(i)), AppendOptions{LeaderEpoch: int32(i / 10)})
		require.NoError(t, err)
	}
	require.Equal(t, []EpochEntry{{0, 0}, {1, 10}, {2, 20}}, l.LeaderEpochs())
	ep, end := l.EndOffsetForEpoch(1)
	require.EqualValues(t, 1, ep)
	require.EqualValues(t, 20, end)
	ep, end = l.EndOffsetForEpoch(7) // above the latest: none, as Kafka answers
	require.EqualValues(t, -1, ep)
	require.EqualValues(t, -1, end)

	next, err := l.TruncateTo(15)
	require.NoError(t, err)
	require.EqualValues(t, 15, next)
	require.Equal(t, []EpochEntry{{0, 0}, {1, 10}}, l.LeaderEpochs())
	recs := readAll(t, l, 0)
	require.Len(t, recs, 15)
	res, err := l.Append(ctx, valueBatch(t, 1, "new"), AppendOptions{LeaderEpoch: 3})
	require.NoError(t, err)
	require.EqualValues(t, 15, res.FirstOffset)
	require.NoError(t, l.Close())

	l = e.open(cfg)
	defer l.Close()
	require.Equal(t, []EpochEntry{{0, 0}, {1, 10}, {3, 15}}, l.LeaderEpochs())
	recs = readAll(t, l, 0)
	require.Len(t, recs, 16)
	require.Equal(t, "new", string(recs[15].Value))
}

func TestGroupCommitConcurrent(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 8192})
	defer l.Close()
	var wg sync.WaitGroup
	seen := make([][]int64, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				res, err := l.Append(context.Background(), valueBatch(t, 1, fmt.Sprintf("%d-%d", w, i)), AppendOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				if l.DurableOffset() <= res.LastOffset {
					t.Errorf("acknowledged offset %d not durable (%d)", res.LastOffset, l.DurableOffset())
				}
				seen[w] = append(seen[w], res.FirstOffset)
			}
		}()
	}
	wg.Wait()
	all := map[int64]bool{}
	for _, s := range seen {
		for i, o := range s {
			require.False(t, all[o])
			all[o] = true
			if i > 0 {
				require.Greater(t, o, s[i-1])
			}
		}
	}
	require.Len(t, all, 400)
	require.Len(t, readAll(t, l, 0), 400)
}

func TestSyncFailureFences(t *testing.T) {
	mem := vfs.NewMem()
	var armed atomic.Bool
	syncs := 0
	e := newEnv(t)
	e.fs = vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && armed.Load() {
			if syncs++; syncs == 3 {
				return vfs.ErrInjected
			}
		}
		return nil
	}))
	l := e.open(Config{})
	armed.Store(true)
	ctx := context.Background()
	var acked []int64
	var fenced error
	for i := range 10 {
		res, err := l.Append(ctx, valueBatch(t, 1, fmt.Sprint(i)), AppendOptions{})
		if err != nil {
			fenced = err
			break
		}
		acked = append(acked, res.LastOffset)
	}
	require.ErrorIs(t, fenced, ErrLogFenced)
	require.ErrorIs(t, fenced, vfs.ErrInjected)
	// Sticky: no later append is acknowledged, even though syncs work again.
	_, err := l.Append(ctx, valueBatch(t, 1, "later"), AppendOptions{})
	require.ErrorIs(t, err, ErrLogFenced)
	require.ErrorIs(t, l.Flush(ctx), ErrLogFenced)
	l.Close()

	// Everything acknowledged survives a crash.
	e.fs = mem.CrashClone(vfs.CrashOptions{})
	l = e.open(Config{})
	defer l.Close()
	recs := readAll(t, l, 0)
	require.GreaterOrEqual(t, len(recs), len(acked))
}

func TestPeriodicAndNeverSync(t *testing.T) {
	for _, cfg := range []Config{
		{Sync: SyncPeriodic, FlushMessages: 5},
		{Sync: SyncPeriodic, FlushInterval: time.Second},
		{Sync: SyncNever},
	} {
		e := newEnv(t)
		l := e.open(cfg)
		for i := range 12 {
			appendOK(t, l, valueBatch(t, 1, fmt.Sprint(i)))
			if cfg.FlushInterval > 0 {
				e.clock.Advance(300 * time.Millisecond)
			}
		}
		switch {
		case cfg.FlushMessages > 0:
			require.EqualValues(t, 10, l.DurableOffset())
		case cfg.FlushInterval > 0:
			require.EqualValues(t, 9, l.DurableOffset()) // flushed at 1.2 s and 2.4 s
			e.clock.Advance(2 * time.Second)
			appendOK(t, l, valueBatch(t, 1, "x"))
			require.NoError(t, l.Maintain(context.Background()))
			require.EqualValues(t, 13, l.DurableOffset())
		default:
			require.EqualValues(t, 0, l.DurableOffset())
		}
		require.NoError(t, l.Flush(context.Background()))
		require.Equal(t, l.LogEndOffset(), l.DurableOffset())
		require.NoError(t, l.Close())
	}
}

func TestLogAppendTime(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{TimestampType: LogAppendTime})
	defer l.Close()
	res := appendOK(t, l, valueBatch(t, 5, "a", "b"))
	require.Equal(t, e.clock.Now().UnixMilli(), res.LogAppendTime)
	for _, r := range readAll(t, l, 0) {
		require.Equal(t, e.clock.Now().UnixMilli(), r.Timestamp.UnixMilli())
		require.Equal(t, record.LogAppendTime, r.TimestampType)
	}
}

// TestKafkaSegments opens directories of .log files written by Apache Kafka
// (no indexes): the log rebuilds the indexes and reads back every record.
func TestKafkaSegments(t *testing.T) {
	for dir, want := range map[string][2]int64{"a": {0, 4}, "b": {1, 3}} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "kafka-segments", dir, "__cluster_metadata-0", "00000000000000000000.log"))
		require.NoError(t, err)
		e := newEnv(t)
		require.NoError(t, e.fs.MkdirAll(e.dir, 0o755))
		f, err := e.fs.Create(filepath.Join(e.dir, "00000000000000000000.log"))
		require.NoError(t, err)
		_, err = f.Write(data)
		require.NoError(t, err)
		require.NoError(t, f.Sync())
		require.NoError(t, f.Close())

		l := e.open(Config{})
		recs := readAll(t, l, l.LogStartOffset())
		require.Len(t, recs, int(want[1]), dir)
		require.Equal(t, want[0], recs[0].Offset)
		names, err := e.fs.List(e.dir)
		require.NoError(t, err)
		require.Contains(t, names, "00000000000000000000.index")
		require.Contains(t, names, "00000000000000000000.timeindex")
		// The log continues after Kafka's offsets.
		res := appendOK(t, l, valueBatch(t, 1, "ours"))
		require.Equal(t, recs[len(recs)-1].Offset+1, res.FirstOffset)
		require.NoError(t, l.Close())
	}
}

// TestSyncNeverCloseIsDurable: under SyncNever, segments rolled without an
// fsync are synced by Flush and by Close, so a clean shutdown loses nothing
// to a power failure after it.
func TestSyncNeverCloseIsDurable(t *testing.T) {
	for _, how := range []string{"close", "flush"} {
		mem := vfs.NewMem()
		e := newEnv(t)
		e.fs = mem
		cfg := Config{Sync: SyncNever, SegmentBytes: 300}
		l := e.open(cfg)
		for i := range 30 {
			appendOK(t, l, valueBatch(t, 1, fmt.Sprint(i)))
		}
		require.Greater(t, l.Segments(), 3)
		if how == "close" {
			require.NoError(t, l.Close())
		} else {
			require.NoError(t, l.Flush(context.Background()))
			require.EqualValues(t, 30, l.DurableOffset())
		}
		e.fs = mem.CrashClone(vfs.CrashOptions{})
		l2 := e.open(cfg)
		require.Len(t, readAll(t, l2, 0), 30, how)
		require.NoError(t, l2.Close())
		l.Close()
	}
}

// TestReadIntoReusesBuffer: on the OS FS ReadInto reads into the caller's
// buffer; the bytes are the same as Read's.
func TestReadIntoReusesBuffer(t *testing.T) {
	e := newEnv(t)
	e.fs, e.dir = vfs.OS, filepath.Join(t.TempDir(), "t-0")
	l := e.open(Config{SegmentBytes: 2000})
	defer l.Close()
	for i := range 50 {
		appendOK(t, l, valueBatch(t, 1, fmt.Sprint(i)))
	}
	buf := make([]byte, 0, 4096)
	for off := int64(0); off < l.LogEndOffset(); {
		want, err := l.Read(off, 500, math.MaxInt64)
		require.NoError(t, err)
		got, err := l.ReadInto(buf, off, 500, math.MaxInt64)
		require.NoError(t, err)
		require.Equal(t, want, got)
		require.True(t, within(buf, got), "read into the caller's buffer")
		for b, err := range record.Batches(got) {
			require.NoError(t, err)
			off = b.NextOffset()
		}
	}
}

// within reports whether b lies in buf's memory (the read may put what it
// returns after the headers it scanned on its way).
func within(buf, b []byte) bool {
	all := buf[:cap(buf)]
	for i := range all {
		if &all[i] == &b[0] {
			return i+len(b) <= len(all)
		}
	}
	return false
}

// closed reports whether ch is closed (a partition's readers woken).
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestDurableWakesPartition: under SyncAlways a partition's readers are
// woken by the fsync that moves its high watermark (the durable offset),
// not only by a Partition.Append returning: an Append whose ctx ended
// while it waited for the fsync returns before the fsync has moved it.
func TestDurableWakesPartition(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{}) // SyncAlways
	p := NewPartition("t", 0, l)
	ch := p.Changed()
	// Straight to the log, as such an fsync: Partition.Append is not there
	// to notify.
	appendOK(t, l, valueBatch(t, 1, "a"))
	require.True(t, closed(ch), "the fsync that made the batch durable did not wake the partition's readers")
	require.EqualValues(t, 1, p.HighWatermark())

	// OnDurable runs once per fsync that advances the durable offset.
	var calls atomic.Int64
	l.OnDurable(func() { calls.Add(1) })
	appendOK(t, l, valueBatch(t, 1, "b"))
	require.EqualValues(t, 1, calls.Load())
	l.OnDurable(nil)
	appendOK(t, l, valueBatch(t, 1, "c"))
	require.EqualValues(t, 1, calls.Load())
	require.NoError(t, p.Close())
}

// TestCutWakesPartition: records cut from the log — its start moved up
// (DeleteRecordsBefore, retention) or its end down (TruncateTo) — wake
// the partition's readers, whose offset may now be out of range: a
// long-polling fetch answers that at once rather than at its MaxWait.
// A call that cuts nothing wakes no one. Before OnCut, none of them woke
// the readers.
func TestCutWakesPartition(t *testing.T) {
	e := newEnv(t)
	p := NewPartition("t", 0, e.open(Config{RetentionTime: time.Hour}))
	defer p.Close()
	now := e.clock.Now().UnixMilli()
	for _, v := range []string{"a", "b", "c"} {
		_, err := p.Append(context.Background(), valueBatch(t, now, v), AppendOptions{})
		require.NoError(t, err)
	}
	l := p.Log()
	for _, step := range []struct {
		name string
		do   func() error
		cut  bool
	}{
		{"DeleteRecordsBefore", func() error { _, err := p.DeleteRecordsBefore(context.Background(), 1); return err }, true},
		{"DeleteRecordsBefore again", func() error { _, err := p.DeleteRecordsBefore(context.Background(), 1); return err }, false},
		{"TruncateTo", func() error { _, err := l.TruncateTo(2); return err }, true},
		{"TruncateTo past the end", func() error { _, err := l.TruncateTo(5); return err }, false},
		{"ApplyRetention, nothing old", func() error { _, err := l.ApplyRetention(context.Background()); return err }, false},
		{"Maintain past retention.ms", func() error { e.clock.Advance(2 * time.Hour); return l.Maintain(context.Background()) }, true},
	} {
		ch := p.Changed()
		require.NoError(t, step.do(), step.name)
		require.Equal(t, step.cut, closed(ch), step.name)
	}
	require.Equal(t, Offsets{Start: 2, Durable: 2, End: 2}, l.Offsets())
}

// TestDurableWakesReopenedPartition: after Partition.Reopen the new log's
// fsyncs wake the partition's readers, and the old, closed log's never
// call into it again.
func TestDurableWakesReopenedPartition(t *testing.T) {
	e := newEnv(t)
	old := e.open(Config{}) // SyncAlways
	p := NewPartition("t", 0, old)
	appendOK(t, old, valueBatch(t, 1, "a"))
	require.NoError(t, p.Reopen(func() (*Log, error) {
		return Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock})
	}))
	l := p.Log()
	require.NotSame(t, old, l)
	ch := p.Changed()
	appendOK(t, l, valueBatch(t, 1, "b"))
	require.True(t, closed(ch), "the reopened log's fsync did not wake the partition's readers")
	require.EqualValues(t, 2, p.HighWatermark())
	// The old log is closed: its Flush fails and wakes no one.
	ch = p.Changed()
	require.ErrorIs(t, old.Flush(context.Background()), ErrClosed)
	require.False(t, closed(ch), "the closed log woke the partition's readers")
	require.NoError(t, p.Close())
}

// TestRetryReopen: RetryReopen tries again only the open of a Reopen that
// failed, until it succeeds, a new Reopen replaces it, or the partition is
// closed; a retried open wakes readers as a Reopen does.
func TestRetryReopen(t *testing.T) {
	e := newEnv(t)
	p := NewPartition("t", 0, e.open(Config{}))
	appendOK(t, p.Log(), valueBatch(t, 1, "a"))
	tried, err := p.RetryReopen(context.Background())
	require.False(t, tried)
	require.NoError(t, err)

	fail := errors.New("no file descriptors left")
	calls := 0
	open := func() (*Log, error) {
		calls++
		if calls < 3 {
			return nil, fail
		}
		return Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock})
	}
	require.ErrorIs(t, p.Reopen(open), fail)
	_, _, err = p.AppendAsync(context.Background(), valueBatch(t, 1, "b"), AppendOptions{})
	require.ErrorIs(t, err, ErrLogFenced)
	tried, err = p.RetryReopen(context.Background())
	require.True(t, tried)
	require.ErrorIs(t, err, fail)
	ch := p.Changed()
	tried, err = p.RetryReopen(context.Background())
	require.True(t, tried)
	require.NoError(t, err)
	require.True(t, closed(ch), "the retried open did not wake the partition's readers")
	require.EqualValues(t, 1, p.LogEndOffset())
	appendOK(t, p.Log(), valueBatch(t, 1, "b"))
	tried, _ = p.RetryReopen(context.Background())
	require.False(t, tried, "retried an open that had succeeded")
	require.Equal(t, 3, calls)

	// A failed reopen replaced by a new Reopen is not retried, nor one
	// whose partition was closed since.
	require.ErrorIs(t, p.Reopen(func() (*Log, error) { return nil, fail }), fail)
	require.NoError(t, p.Reopen(func() (*Log, error) { return Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock}) }))
	tried, _ = p.RetryReopen(context.Background())
	require.False(t, tried)
	require.ErrorIs(t, p.Reopen(func() (*Log, error) { return nil, fail }), fail)
	require.NoError(t, p.Close())
	tried, _ = p.RetryReopen(context.Background())
	require.False(t, tried, "retried the open of a closed partition")
}

// countLogSyncs gives e a memory file system that counts the fsyncs of
// .log files, and returns the count.
func countLogSyncs(e *env) *atomic.Int64 {
	syncs := new(atomic.Int64)
	e.fs = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") {
			syncs.Add(1)
		}
		return nil
	}))
	return syncs
}

// TestAppendAsync: under SyncAlways, AppendAsync returns once the batch is
// written, before its fsync: the high watermark stays put until a Wait
// fsyncs, and one Wait's fsync makes every earlier append durable (so a
// later append's writes can overlap an earlier one's fsync).
func TestAppendAsync(t *testing.T) {
	e := newEnv(t)
	syncs := countLogSyncs(e)
	l := e.open(Config{}) // SyncAlways
	p := NewPartition("t", 0, l)
	ctx := context.Background()
	before := syncs.Load()
	r1, d1, err := p.AppendAsync(ctx, valueBatch(t, 1, "a", "b"), AppendOptions{})
	require.NoError(t, err)
	r2, d2, err := p.AppendAsync(ctx, valueBatch(t, 1, "c"), AppendOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 0, r1.FirstOffset)
	require.EqualValues(t, 2, r2.FirstOffset)
	require.True(t, d1.Pending())
	require.True(t, d2.Pending())
	require.Equal(t, before, syncs.Load(), "AppendAsync fsynced")
	require.EqualValues(t, 0, p.HighWatermark())
	require.EqualValues(t, 3, l.LogEndOffset())

	require.NoError(t, d2.Wait(ctx))
	require.False(t, d1.Pending(), "the fsync for the later append did not cover the earlier one")
	require.NoError(t, d1.Wait(ctx))
	require.Equal(t, before+1, syncs.Load(), "one fsync for both appends")
	require.EqualValues(t, 3, p.HighWatermark())

	// A retried idempotent batch waits for its first attempt's fsync.
	dup := idemBatch(t, 7, 0, 0, 1)
	_, dp, err := l.AppendAsync(ctx, append([]byte(nil), dup...), AppendOptions{})
	require.NoError(t, err)
	res, dd, err := l.AppendAsync(ctx, append([]byte(nil), dup...), AppendOptions{})
	require.NoError(t, err)
	require.True(t, res.Duplicate)
	require.True(t, dd.Pending(), "a duplicate of a batch not yet durable was acknowledged at once")
	require.NoError(t, dd.Wait(ctx))
	require.False(t, dp.Pending())

	// Close fsyncs what is pending: its waits succeed.
	_, d3, err := l.AppendAsync(ctx, valueBatch(t, 1, "d"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, p.Close())
	require.NoError(t, d3.Wait(ctx))

	// Under SyncNever there is nothing to wait for.
	e2 := newEnv(t)
	l2 := e2.open(Config{Sync: SyncNever})
	defer l2.Close()
	_, d, err := l2.AppendAsync(ctx, valueBatch(t, 1, "x"), AppendOptions{})
	require.NoError(t, err)
	require.False(t, d.Pending())
	require.NoError(t, d.Wait(ctx))
}

// TestAppendAsyncWaitFailures: a failed fsync fails the waits of every
// append it was for (the log is fenced); a ctx that ends fails only the
// wait, not the append.
func TestAppendAsyncWaitFailures(t *testing.T) {
	var fail atomic.Bool
	e := newEnv(t)
	e.fs = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, _ string) error {
		if op == vfs.OpSync && fail.Load() {
			return vfs.ErrInjected
		}
		return nil
	}))
	l := e.open(Config{})
	defer l.Close()
	_, d, err := l.AppendAsync(context.Background(), valueBatch(t, 1, "a"), AppendOptions{})
	require.NoError(t, err)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	// The wait starts the fsync when no one else has: a ctx ended before
	// the call still gets it started, and ends the wait; the fsync makes
	// the append durable.
	require.ErrorIs(t, d.Wait(cancelled), context.Canceled)
	require.NoError(t, d.Wait(context.Background()))

	fail.Store(true)
	_, d1, err := l.AppendAsync(context.Background(), valueBatch(t, 1, "b"), AppendOptions{})
	require.NoError(t, err)
	_, d2, err := l.AppendAsync(context.Background(), valueBatch(t, 1, "c"), AppendOptions{})
	require.NoError(t, err)
	require.ErrorIs(t, d2.Wait(context.Background()), ErrLogFenced)
	require.ErrorIs(t, d1.Wait(context.Background()), ErrLogFenced)
	_, _, err = l.AppendAsync(context.Background(), valueBatch(t, 1, "d"), AppendOptions{})
	require.ErrorIs(t, err, ErrLogFenced)
}

// TestAppendAsyncWaitAfterTruncate: an append truncated away before its
// fsync never becomes durable: its Wait fails (it used to fsync in a
// loop for ever, deaf to its ctx), and the appends before the truncation
// point are still fsynced and acknowledged.
func TestAppendAsyncWaitAfterTruncate(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{}) // SyncAlways
	defer l.Close()
	ctx := context.Background()
	_, d1, err := l.AppendAsync(ctx, valueBatch(t, 1, "a", "b"), AppendOptions{})
	require.NoError(t, err)
	_, d2, err := l.AppendAsync(ctx, valueBatch(t, 1, "c"), AppendOptions{})
	require.NoError(t, err)
	end, err := l.TruncateTo(2)
	require.NoError(t, err)
	require.EqualValues(t, 2, end)
	require.ErrorIs(t, d2.Wait(ctx), ErrOffsetOutOfRange)
	require.NoError(t, d1.Wait(ctx))
	require.EqualValues(t, 2, l.DurableOffset())
}

// TestAppendAsyncWaitDuringClose: a wait that starts while Close is
// fsyncing (a partition's log reopened by AlterTopicConfig, a broker
// closing) succeeds once Close has made the append durable. It used to
// fail with ErrClosed as soon as Close had begun, and the broker answered
// that the topic was deleted.
func TestAppendAsyncWaitDuringClose(t *testing.T) {
	var armed atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	e := newEnv(t)
	e.fs = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, _ string) error {
		if op == vfs.OpSync && armed.CompareAndSwap(true, false) {
			close(reached)
			<-release
		}
		return nil
	}))
	l := e.open(Config{}) // SyncAlways
	ctx := context.Background()
	_, d, err := l.AppendAsync(ctx, valueBatch(t, 1, "a"), AppendOptions{})
	require.NoError(t, err)
	require.True(t, d.Pending())

	armed.Store(true)
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	testkit.AwaitHold(t, reached, closed, "Close") // Close is in its shutdown fsync

	// A wait with a ctx that ends returns the ctx's error, not ErrClosed.
	short, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, d.Wait(short), context.Canceled)

	waited := make(chan error, 1)
	go func() { waited <- d.Wait(ctx) }()
	close(release)
	require.NoError(t, testkit.Await(t, closed, "Close's answer"))
	require.NoError(t, testkit.Await(t, waited, "the durable's Wait"))

	// After Close, a wait for an append it made durable succeeds at once.
	require.NoError(t, d.Wait(ctx))
}

// TestDiscard: Discard closes a log without flushing it, for a log about to
// be removed: a wait for an append's fsync fails, nothing is marked as
// cleanly shut down, and a second Discard or a Close does nothing.
func TestDiscard(t *testing.T) {
	var syncs atomic.Int64
	e := newEnv(t)
	e.fs = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && (strings.HasSuffix(name, ".log") || strings.Contains(name, "checkpoint")) {
			syncs.Add(1)
		}
		return nil
	}))
	l := e.open(Config{}) // SyncAlways
	ctx := context.Background()
	_, d, err := l.AppendAsync(ctx, valueBatch(t, 1, "a"), AppendOptions{})
	require.NoError(t, err)
	before := syncs.Load()
	require.NoError(t, l.Discard())
	require.Equal(t, before, syncs.Load(), "Discard fsynced the log")
	require.ErrorIs(t, d.Wait(ctx), ErrClosed)
	require.NoError(t, l.Discard())
	require.NoError(t, l.Close())
	_, _, err = l.AppendAsync(ctx, valueBatch(t, 1, "b"), AppendOptions{})
	require.ErrorIs(t, err, ErrClosed)
	names, err := e.fs.List(l.Dir())
	require.NoError(t, err)
	require.NotContains(t, names, cleanShutdownFile)
}

// TestSyncNeverCloseAfterRetention: under SyncNever, a segment rolled
// without an fsync and then deleted (retention, DeleteRecords, compaction,
// truncation) is forgotten by the list of segments still to sync: Close
// then succeeds (it failed with segment.ErrClosed, syncing the deleted
// segment, and a broker's AlterTopicConfig left the partition fenced), and
// the list stays bounded by the live segments over a long run instead of
// holding every segment ever rolled.
func TestSyncNeverCloseAfterRetention(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever, SegmentBytes: 300, RetentionBytes: 900, RetentionTime: -1}
	l := e.open(cfg)
	for i := range 300 {
		appendOK(t, l, valueBatch(t, 1, fmt.Sprint(i)))
		if i%10 == 9 {
			_, err := l.ApplyRetention(context.Background())
			require.NoError(t, err)
		}
	}
	_, err := l.DeleteRecordsBefore(context.Background(), l.LogEndOffset()-5)
	require.NoError(t, err)
	l.mu.Lock()
	unsynced := len(l.unsynced)
	l.mu.Unlock()
	require.LessOrEqual(t, unsynced, l.Segments(), "segments waiting for their sync, of %d live", l.Segments())
	require.NoError(t, l.Close())
	l = e.open(cfg)
	require.Len(t, readAll(t, l, l.LogStartOffset()), 5)
	require.NoError(t, l.Close())
}

// TestSyncNeverCloseAfterCompaction: as TestSyncNeverCloseAfterRetention,
// for the segments compaction replaces. Compaction cleans only segments
// synced since they rolled: before the flush, it leaves them alone.
func TestSyncNeverCloseAfterCompaction(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever, SegmentBytes: 300, CleanupPolicy: Compact}
	l := e.open(cfg)
	for i := range 60 {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: []byte(fmt.Sprint(i)), ts: 1}))
	}
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Zero(t, res.SegmentsRewritten)
	require.NoError(t, l.Flush(context.Background()))
	for i := 60; i < 70; i++ { // rolls again: unsynced segments too
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: []byte(fmt.Sprint(i)), ts: 1}))
	}
	res, err = l.Compact(context.Background())
	require.NoError(t, err)
	require.Positive(t, res.SegmentsRewritten)
	require.NoError(t, l.Close())
	l = e.open(cfg)
	recs := readAll(t, l, 0)
	require.Equal(t, "69", string(recs[len(recs)-1].Value))
	require.NoError(t, l.Close())
}

// rolledSyncNeverLog returns a SyncNever log in memory holding 40 records,
// "0" to "39", one a batch, over several segments rolled without an
// fsync, with its env, file system and config.
func rolledSyncNeverLog(t *testing.T) (*env, *vfs.MemFS, Config, *Log) {
	t.Helper()
	e := newEnv(t)
	cfg := Config{Sync: SyncNever, SegmentBytes: 400, RetentionTime: -1}
	l := e.open(cfg)
	for i := range 40 {
		appendOK(t, l, valueBatch(t, 1, fmt.Sprint(i)))
	}
	require.Greater(t, l.Segments(), 3)
	return e, e.fs.(*vfs.MemFS), cfg, l
}

// TestSyncNeverMaintainMovesRecoveryPoint: under SyncNever, Maintain syncs
// the segments rolled since the last call and moves the recovery point to
// the active segment, so that Open after a crash scans only the active
// segment, and finds every record; without it, Open scans from the first
// segment, which lost all its batches (and the later ones go).
func TestSyncNeverMaintainMovesRecoveryPoint(t *testing.T) {
	for _, maintain := range []bool{false, true} {
		e, mem, cfg, l := rolledSyncNeverLog(t)
		segs := l.Segments()
		if maintain {
			require.NoError(t, l.Maintain(context.Background()))
		}
		// A crash keeps what was synced: every record when Maintain ran.
		e.fs = mem.CrashClone(vfs.CrashOptions{})
		require.NoError(t, l.Close())
		l = e.open(cfg)
		if maintain {
			require.Equal(t, 1, l.Recovery().SegmentsScanned, "Open scanned more than the active segment")
			require.Len(t, readAll(t, l, 0), 40)
		} else {
			require.Zero(t, l.Recovery().RecoveryPoint, "the recovery point moved without a sync")
			// Nothing was synced: the first segment lost every batch, and
			// the segments after it go with it.
			require.Equal(t, int64(0), l.LogEndOffset())
			require.Equal(t, segs-1, l.Recovery().SegmentsDeleted)
		}
		require.NoError(t, l.Close())
	}
}

// TestRecoverySyncsWhatItScanned: a SyncNever log killed before it synced
// anything (its machine still up: the page cache keeps the batches) is
// recovered by the next Open, which then moves the recovery point to the
// log end: it must have synced the batches it scanned, or a power loss
// after it would lose, or tear, records that no later Open scans again.
func TestRecoverySyncsWhatItScanned(t *testing.T) {
	for _, mode := range []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage} {
		e, mem, cfg, l := rolledSyncNeverLog(t)
		require.NoError(t, l.Discard()) // killed: nothing synced, nothing checkpointed
		l = e.open(cfg)
		require.Positive(t, l.Recovery().SegmentsScanned)
		require.Len(t, readAll(t, l, 0), 40)
		// Power lost after that Open: what it claimed durable must be.
		e.fs = mem.CrashClone(vfs.CrashOptions{Tail: mode})
		l2 := e.open(cfg)
		require.Len(t, readAll(t, l2, 0), 40, "tail mode %v", mode)
		require.NoError(t, l2.Close())
		require.NoError(t, l.Close())
	}
}

// TestCloseDuringSyncSyncsTheRolledSegments: a Close that runs while a
// Flush has listed the segments rolled without an fsync, but not synced
// them yet, syncs them itself before it marks the log clean (the next
// Open trusts a clean log without a scan). Close runs on a goroutine of
// its own, as a caller's does, and the sync goes on once Close has
// closed the log (closeDone): Close returns only after the sync (see
// waitSyncRound).
func TestCloseDuringSyncSyncsTheRolledSegments(t *testing.T) {
	e, mem, cfg, l := rolledSyncNeverLog(t)
	var once sync.Once
	closed := make(chan error, 1)
	testHookSyncListed = func(hl *Log) {
		if hl == l {
			once.Do(func() {
				go func() { closed <- l.Close() }()
				<-l.closeDone
			})
		}
	}
	defer func() { testHookSyncListed = nil }()
	require.NoError(t, l.Flush(context.Background()), "the Close made everything durable")
	require.NoError(t, testkit.Await(t, closed, "Close's answer"))
	e.fs = mem.CrashClone(vfs.CrashOptions{}) // power lost after the clean Close
	l = e.open(cfg)
	defer l.Close()
	require.Zero(t, l.Recovery().SegmentsScanned, "the Close was not clean")
	require.Len(t, readAll(t, l, 0), 40)
}

// A new log says so: Open found no segment, and Clean (nothing was
// closed) is false; a reopen after Close finds the segments, cleanly.
func TestRecoveryInfoNewLog(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 4096})
	info := l.Recovery()
	require.Zero(t, info.SegmentsFound)
	require.False(t, info.Clean)
	for i := range 100 {
		appendOK(t, l, valueBatch(t, 1000+int64(i), fmt.Sprintf("v%03d", i)))
	}
	segs := l.Segments()
	require.NoError(t, l.Close())
	l = e.open(Config{SegmentBytes: 4096})
	info = l.Recovery()
	require.Equal(t, segs, info.SegmentsFound)
	require.True(t, info.Clean)
}
