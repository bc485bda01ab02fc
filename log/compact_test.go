package log

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// latestByKey reads the log and returns each key's last value (nil for a
// tombstone) and the offsets seen.
func latestByKey(t *testing.T, l *Log) (map[string][]byte, []int64) {
	t.Helper()
	m := map[string][]byte{}
	var offs []int64
	for _, r := range readAll(t, l, l.LogStartOffset()) {
		m[string(r.Key)] = r.Value
		offs = append(offs, r.Offset)
	}
	return m, offs
}

// TestCompactionProperty: for random workloads, the compacted log returns,
// for each key, the same latest value as a map built from the input; offsets
// only increase; each key appears once in the cleaned part.
func TestCompactionProperty(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 5
	}
	codecs := []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 99))
			e := newEnv(t)
			cfg := Config{SegmentBytes: 300 + int64(rng.IntN(700)), CleanupPolicy: Compact, IndexIntervalBytes: 64}
			l := e.open(cfg)
			defer func() { l.Close() }()
			want := map[string][]byte{}
			keys := 1 + rng.IntN(30)
			for range 100 + rng.IntN(200) {
				var recs []kv
				for range 1 + rng.IntN(4) {
					k := fmt.Sprintf("key-%d", rng.IntN(keys))
					var v []byte
					if rng.IntN(8) > 0 {
						v = fmt.Appendf(nil, "value-%d", rng.Int())
					}
					recs = append(recs, kv{key: []byte(k), value: v, ts: e.clock.Now().UnixMilli()})
					want[k] = v
				}
				appendOK(t, l, batchOf(t, codecs[rng.IntN(len(codecs))], recs...))
				if rng.IntN(40) == 0 {
					_, err := l.Compact(context.Background())
					require.NoError(t, err)
				}
			}
			endBefore := l.LogEndOffset()
			require.NoError(t, l.Roll())
			res, err := l.Compact(context.Background())
			require.NoError(t, err)
			require.Equal(t, endBefore, l.LogEndOffset())
			got, offs := latestByKey(t, l)
			require.Equal(t, len(want), len(got))
			for k, v := range want {
				require.Equal(t, v, got[k], "key %s", k)
			}
			for i := 1; i < len(offs); i++ {
				require.Greater(t, offs[i], offs[i-1])
			}
			// All sealed: each key is left once (its latest record).
			require.Len(t, offs, len(want), "compaction kept superseded records: %+v", res)

			// Reopen: the same, and appends continue after the old end.
			require.NoError(t, l.Close())
			l = e.open(cfg)
			got2, _ := latestByKey(t, l)
			require.Equal(t, got, got2)
			require.Equal(t, endBefore, appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("x"), value: []byte("y")})).FirstOffset)
		})
	}
}

func TestCompactionTombstonesAndLag(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 200, CleanupPolicy: Compact, DeleteRetentionTime: time.Hour, MinCompactionLag: 10 * time.Minute}
	l := e.open(cfg)
	defer l.Close()
	ts := func() int64 { return e.clock.Now().UnixMilli() }
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("1"), ts: ts()}))
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("b"), value: []byte("1"), ts: ts()}))
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("2"), ts: ts()}))
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("b"), ts: ts()})) // tombstone
	require.NoError(t, l.Roll())

	// Too young: nothing is cleaned.
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Zero(t, res.SegmentsRewritten)
	require.Len(t, readAll(t, l, 0), 4)

	e.clock.Advance(11 * time.Minute)
	res, err = l.Compact(context.Background())
	require.NoError(t, err)
	require.Positive(t, res.SegmentsRewritten)
	recs := readAll(t, l, 0)
	require.Len(t, recs, 2)
	require.Equal(t, "a", string(recs[0].Key))
	require.Equal(t, "2", string(recs[0].Value))
	require.Equal(t, "b", string(recs[1].Key))
	require.Nil(t, recs[1].Value, "the tombstone stays for delete.retention.ms")
	require.EqualValues(t, 2, recs[0].Offset)
	require.EqualValues(t, 3, recs[1].Offset)

	// Within delete.retention.ms the tombstone stays; after it, it goes.
	e.clock.Advance(30 * time.Minute)
	_, err = l.Compact(context.Background())
	require.NoError(t, err)
	require.Len(t, readAll(t, l, 0), 2)
	e.clock.Advance(31 * time.Minute)
	_, err = l.Compact(context.Background())
	require.NoError(t, err)
	recs = readAll(t, l, 0)
	require.Len(t, recs, 1)
	require.Equal(t, "a", string(recs[0].Key))
	require.EqualValues(t, 4, l.LogEndOffset())
}

// TestCompactionSwapCrash: a crash at any point of a compaction leaves
// either the old segments or the new one — never neither, never both.
func TestCompactionSwapCrash(t *testing.T) {
	build := func(fs vfs.FS, clock *fakeClock) (*Log, map[string][]byte) {
		l, err := Open("/d/t-0", Config{SegmentBytes: 300, CleanupPolicy: Compact}, Options{FS: fs, Clock: clock})
		require.NoError(t, err)
		want := map[string][]byte{}
		for i := range 60 {
			k := fmt.Sprintf("k%d", i%7)
			v := fmt.Appendf(nil, "v%d", i)
			want[k] = v
			appendOK(t, l, batchOf(t, compression.None, kv{key: []byte(k), value: v, ts: clock.Now().UnixMilli()}))
		}
		require.NoError(t, l.Roll())
		return l, want
	}
	// Count the operations of the compaction itself.
	mem := vfs.NewMem()
	var ops []testkit.FSOp
	var armed bool
	fs := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed {
			ops = append(ops, fsOp(0, op, name))
		}
		return nil
	}))
	l, _ := build(fs, newClock())
	armed = true
	_, err := l.Compact(context.Background())
	require.NoError(t, err)
	n := len(ops)
	l.Close()
	require.Positive(t, n)

	// Every operation; in -short (the race run) those opPathPoints picks
	// (RUNNEL_CRASH_POINTS=all: every one there too).
	ks := crashPoints(n, n)
	if testing.Short() && !testkit.CrashPointsAll() {
		ks = opPathPoints(ops, func(int) string { return "compact" })
	}
	for _, k := range ks {
		mem := vfs.NewMem()
		var fail vfs.Injector = vfs.Count()
		fs := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error { return fail.MaybeError(op, name) }))
		clock := newClock()
		l, want := build(fs, clock)
		fail = vfs.FailFrom(k)
		_, _ = l.Compact(context.Background())
		clone := mem.CrashClone(vfs.CrashOptions{})
		l2, err := Open("/d/t-0", Config{SegmentBytes: 300, CleanupPolicy: Compact}, Options{FS: clone, Clock: clock})
		require.NoError(t, err, "crash at op %d of %d", k, n)
		got, offs := latestByKey(t, l2)
		require.Equal(t, want, got, "crash at op %d of %d", k, n)
		for i := 1; i < len(offs); i++ {
			require.Greater(t, offs[i], offs[i-1], "crash at op %d", k)
		}
		names, err := clone.List("/d/t-0")
		require.NoError(t, err)
		for _, name := range names {
			require.NotContains(t, name, cleanedSuffix)
			require.NotContains(t, name, swapSuffix)
		}
		require.EqualValues(t, 60, l2.LogEndOffset())
		require.NoError(t, l2.Close())
		l.Close()
	}
}

// TestCompactionKeepsUntouchedBatches: a batch from which nothing is
// removed is copied byte for byte (no re-encoding).
func TestCompactionKeepsUntouchedBatches(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 200, CleanupPolicy: Compact})
	defer l.Close()
	unique := batchOf(t, compression.Zstd, kv{key: []byte("u1"), value: []byte("x")}, kv{key: []byte("u2"), value: []byte("y")})
	appendOK(t, l, append([]byte(nil), unique...))
	for range 10 {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("dup"), value: []byte("z")}))
	}
	require.NoError(t, l.Roll())
	_, err := l.Compact(context.Background())
	require.NoError(t, err)
	data, err := l.Read(0, 1<<20, 1<<62)
	require.NoError(t, err)
	b, err := record.Parse(data, 0)
	require.NoError(t, err)
	require.Equal(t, record.Batch(unique).CRC(), b.CRC())
	require.Equal(t, len(unique), len(b))
	require.Len(t, readAll(t, l, 0), 3)
	names, err := e.fs.List(e.dir)
	require.NoError(t, err)
	require.Contains(t, names, segment.FileName(0, segment.LogSuffix))
	_ = filepath.Join
}

// TestCompactionKeepsProducersLastBatch: compaction empties, but keeps,
// the last batch of an idempotent producer whose records are all
// superseded (as Kafka's cleaner does): reopened without its
// producer-state snapshot, the log still answers that producer's retry as
// a duplicate instead of appending it again.
func TestCompactionKeepsProducersLastBatch(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 200, CleanupPolicy: Compact}
	l := e.open(cfg)
	older := idemBatch(t, 8, 0, 0, 1) // key "0"
	first := idemBatch(t, 7, 0, 0, 1) // key "0" as well: both superseded below
	appendOK(t, l, append([]byte(nil), older...))
	appendOK(t, l, append([]byte(nil), first...))
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("0"), value: []byte("newer")}))
	require.NoError(t, l.Roll())
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Positive(t, res.SegmentsRewritten)
	recs := readAll(t, l, 0)
	require.Len(t, recs, 1, "the superseded records went")
	require.Equal(t, "newer", string(recs[0].Value))

	// The producers' batches stay as empty batches with their header.
	var kept []int64
	for off := int64(0); off < l.LogEndOffset(); {
		data, err := l.Read(off, 1<<20, math.MaxInt64)
		require.NoError(t, err)
		for b, err := range record.Batches(data) {
			require.NoError(t, err)
			if b.ProducerID() != record.NoProducerID {
				require.Zero(t, b.NumRecords())
				kept = append(kept, b.ProducerID())
			}
			off = b.NextOffset()
		}
	}
	require.Equal(t, []int64{8, 7}, kept)

	// Reopen after a crash, without the producer-state snapshot: the state
	// comes from rescanning the log.
	require.NoError(t, l.Close())
	removeProducerSnapshots(t, e.fs, e.dir)
	require.NoError(t, e.fs.Remove(filepath.Join(e.dir, cleanShutdownFile)))
	l = e.open(cfg)
	defer l.Close()
	for _, p := range []struct {
		id    int64
		batch []byte
		at    int64
	}{{8, older, 0}, {7, first, 1}} {
		dup, err := l.Append(context.Background(), append([]byte(nil), p.batch...), AppendOptions{})
		require.NoError(t, err)
		require.True(t, dup.Duplicate, "producer %d's retry was appended again", p.id)
		require.EqualValues(t, p.at, dup.FirstOffset)
		_, err = l.Append(context.Background(), idemBatch(t, p.id, 0, 5, 1), AppendOptions{})
		require.ErrorIs(t, err, ErrOutOfOrderSequence, "producer %d's sequence was forgotten", p.id)
	}
}

// TestCompactionDropsKeylessRecords: records without a key, appended
// while the topic was not compacted, go at its first compaction, as
// Kafka's cleaner drops them; the keyed records stay.
func TestCompactionDropsKeylessRecords(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 200}
	l := e.open(cfg)
	ts := e.clock.Now().UnixMilli()
	for i := range 6 {
		appendOK(t, l, batchOf(t, compression.None, kv{nil, fmt.Appendf(nil, "keyless-%d", i), ts}, kv{[]byte(fmt.Sprint("k", i)), []byte("v"), ts}))
	}
	require.Greater(t, l.Segments(), 2)
	require.NoError(t, l.Close())

	cfg.CleanupPolicy = Compact
	l = e.open(cfg)
	defer l.Close()
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Positive(t, res.RecordsRemoved)
	var cleaned, keyless int
	for _, r := range readAll(t, l, l.LogStartOffset()) {
		if r.Offset < res.FirstUncleanable {
			cleaned++
			require.NotNil(t, r.Key, "offset %d", r.Offset)
		} else if r.Key == nil {
			keyless++
		}
	}
	require.Positive(t, cleaned)
	require.Positive(t, keyless, "the active segment is not cleaned")
}
