package log

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// batchesOf returns every batch of the log, in order.
func batchesOf(t *testing.T, l *Log) []record.Batch {
	t.Helper()
	var out []record.Batch
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		data, err := l.Read(off, 1<<20, math.MaxInt64)
		require.NoError(t, err)
		if len(data) == 0 {
			break
		}
		for b, err := range record.Batches(data) {
			require.NoError(t, err)
			out = append(out, append(record.Batch(nil), b...))
			off = b.NextOffset()
		}
	}
	return out
}

// TestCompactionSetsHorizonWhenRebuiltBatchIsSameSize: a tombstone's batch
// gets its delete horizon on the first cleaning even when the rebuilt batch
// happens to be as long as the original (here: delete.retention.ms 0 and a
// record as old as the clock, so that its timestamp delta keeps its
// length). Before, the group counted as unchanged, the rewrite was thrown
// away, and the tombstone had no horizon yet after a pass that should have
// set it, so the next pass kept it again.
func TestCompactionSetsHorizonWhenRebuiltBatchIsSameSize(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 1000, CleanupPolicy: Compact, DeleteRetentionTime: -1} // 0: remove at the next pass
	l := e.open(cfg)
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("1"), ts: now}))
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("gone"), ts: now})) // tombstone
	require.NoError(t, l.Roll())

	_, err := l.Compact(context.Background())
	require.NoError(t, err)
	bs := batchesOf(t, l)
	require.Len(t, bs, 2)
	require.True(t, bs[1].HasDeleteHorizon(), "the first pass sets the tombstone's delete horizon")
	require.EqualValues(t, now, bs[1].BaseTimestamp())

	e.clock.Advance(time.Millisecond)
	_, err = l.Compact(context.Background())
	require.NoError(t, err)
	recs := readAll(t, l, 0)
	require.Len(t, recs, 1, "the tombstone goes once its horizon has passed")
	require.Equal(t, "a", string(recs[0].Key))
}

// TestCompactionEmptiedBatchKeepsMaxTimestamp: a batch compaction empties
// but keeps (an idempotent producer's last) keeps its max timestamp, as
// Kafka's cleaner writes it (writeEmptyHeader with the batch's
// maxTimestamp, uncompressed). Before, it got -1, so a cleaned segment of
// such batches looked infinitely old: time retention deleted it at once,
// and the producer's state with it, so that a retry of the producer's last
// batch, which the log answered as a duplicate before compaction, was
// appended again.
func TestCompactionEmptiedBatchKeepsMaxTimestamp(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			e := newEnv(t)
			cfg := Config{SegmentBytes: 300, CleanupPolicy: Compact | Delete, RetentionTime: time.Hour}
			l := e.open(cfg)
			defer l.Close()
			now := e.clock.Now().UnixMilli()
			var bld record.Builder
			bld.Reset()
			bld.SetProducer(7, 0, 0)
			bld.Append(now, []byte("a"), []byte("old"), []record.Header{{Key: "h", Value: []byte("v")}})
			prod, err := bld.AppendTo(nil, codec)
			require.NoError(t, err)
			appendOK(t, l, append([]byte(nil), prod...))
			require.NoError(t, l.Roll())
			// The newer value, in a segment too large to join the first's group.
			appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte(strings.Repeat("n", 250)), ts: now}))
			require.NoError(t, l.Roll())

			res, err := l.Compact(context.Background())
			require.NoError(t, err)
			require.Equal(t, 1, res.RecordsRemoved)
			bs := batchesOf(t, l)
			require.Len(t, bs, 2)
			empty := bs[0]
			require.Zero(t, empty.NumRecords())
			require.EqualValues(t, 7, empty.ProducerID())
			require.EqualValues(t, now, empty.MaxTimestamp(), "the emptied batch keeps its max timestamp")
			require.Equal(t, compression.None, empty.Codec(), "an empty batch is written uncompressed, as Kafka's")
			require.NoError(t, empty.Validate(0))

			// Within retention.ms nothing goes, and the producer's retry is
			// still a duplicate.
			n, err := l.ApplyRetention(context.Background())
			require.NoError(t, err)
			require.Zero(t, n, "retention deleted a segment whose records are minutes old")
			dup, err := l.Append(context.Background(), append([]byte(nil), prod...), AppendOptions{})
			require.NoError(t, err)
			require.True(t, dup.Duplicate, "the producer's retry was appended again")
			require.EqualValues(t, 0, dup.FirstOffset)
		})
	}
}

// TestCompactionAbortedByTruncation: a truncation that runs while the
// cleaner works (a follower's, concurrent with the broker's maintenance)
// makes the cleaner's key map stale: it must not swap in what it built
// from it (Kafka aborts cleaning before it truncates). Before, the cleaner
// dropped a key's newest record, appended after the truncation below the
// offset the stale map held for the key, and the key was gone.
func TestCompactionAbortedByTruncation(t *testing.T) {
	var hook func(op vfs.Op, name string)
	l, clock := hookedLog(t, Config{SegmentBytes: 1000, CleanupPolicy: Compact}, &hook)
	var err error
	ts := clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("old"), ts: ts})) // 0
	require.NoError(t, l.Roll())
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("b"), value: []byte("x"), ts: ts}))   // 1
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("c"), value: []byte("y"), ts: ts}))   // 2, diverged
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("new"), ts: ts})) // 3, diverged
	require.NoError(t, l.Roll())

	// Once the key map is built (latest a = 3), the log is truncated to 2
	// and the leader's records appended: a = newest at offset 2.
	hook = func(op vfs.Op, name string) {
		if op != vfs.OpCreate || !strings.HasSuffix(name, segment.LogSuffix+cleanedSuffix) {
			return
		}
		hook = nil
		_, err := l.TruncateTo(2)
		require.NoError(t, err)
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("newest"), ts: ts}))
		require.NoError(t, l.Roll())
	}
	_, err = l.Compact(context.Background())
	require.NoError(t, err)
	got, _ := latestByKey(t, l)
	require.Equal(t, "newest", string(got["a"]), "compaction lost the key's newest record")

	// A later pass, with a fresh key map, cleans.
	_, err = l.Compact(context.Background())
	require.NoError(t, err)
	recs := readAll(t, l, 0)
	require.Len(t, recs, 2)
	require.Equal(t, "newest", string(recs[1].Value))
	require.EqualValues(t, 2, recs[1].Offset)
}

// TestCompactionSyncNeverCleansOnlyDurableSegments: under SyncNever, a
// rolled segment is not durable until the next flush. The cleaner must
// not drop a key's durable record because of a newer one that a crash can
// still take away: after the crash the log must be the compaction of what
// survived. Before, Maintain compacted before it flushed, a power loss
// took the unsynced newer record, and the key was gone.
func TestCompactionSyncNeverCleansOnlyDurableSegments(t *testing.T) {
	mem := vfs.NewMem()
	cfg := Config{SegmentBytes: 300, CleanupPolicy: Compact, Sync: SyncNever}
	clock := newClock()
	l, err := Open("/d/t-0", cfg, Options{FS: mem, Clock: clock})
	require.NoError(t, err)
	defer l.Close()
	ts := clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("durable"), ts: ts}))
	require.NoError(t, l.Roll())
	require.NoError(t, l.Flush(context.Background())) // offset 0 is durable
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte(strings.Repeat("u", 250)), ts: ts}))
	require.NoError(t, l.Roll())

	_, err = l.Compact(context.Background())
	require.NoError(t, err)
	crashed := mem.CrashClone(vfs.CrashOptions{})
	l2, err := Open("/d/t-0", cfg, Options{FS: crashed, Clock: clock})
	require.NoError(t, err)
	defer l2.Close()
	got, _ := latestByKey(t, l2)
	require.NotNil(t, got["a"], "the crash took the newer record, and compaction had dropped the durable one")
	if len(got["a"]) != 250 {
		require.Equal(t, "durable", string(got["a"]))
	}

	// Maintain flushes the rolled segments first, then cleans them.
	require.NoError(t, l.Maintain(context.Background()))
	recs := readAll(t, l, 0)
	require.Len(t, recs, 1)
	require.EqualValues(t, 1, recs[0].Offset)
}

// TestCompactionCrashMatrix crashes a compaction at each of its file-system
// operations (FailFrom(k), then a crash clone with each tail mode), with
// and without the producer-state snapshot, over a log of every codec, with
// headers, tombstones whose delete horizon has passed and an idempotent
// producer whose batches are all superseded. After reopening: each record
// left is the one appended at its offset; each key's latest record is
// there, or it was a tombstone and the key is gone; the indexes agree with
// the files; the producer's retry of its last batch is answered with its
// offsets, a sequence gap is refused; appends continue at the old end.
func TestCompactionCrashMatrix(t *testing.T) {
	dir := "/d/t-0"
	cfg := Config{SegmentBytes: 400, IndexIntervalBytes: 64, CleanupPolicy: Compact, DeleteRetentionTime: time.Hour}
	codecs := []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}
	var prodLast []byte
	build := func(fs vfs.FS, clock *fakeClock) (*Log, map[int64]compactedRec) {
		l, err := Open(dir, cfg, Options{FS: fs, Clock: clock})
		require.NoError(t, err)
		all := map[int64]compactedRec{}
		seq := int32(0)
		for i := range 40 {
			var bld record.Builder
			bld.Reset()
			idem := i%5 == 0
			if idem {
				bld.SetProducer(7, 0, seq)
				seq += int32(1 + i%3)
			}
			var recs []compactedRec
			for j := range 1 + i%3 {
				a := compactedRec{key: fmt.Appendf(nil, "k%d", (i+j)%6), ts: clock.Now().UnixMilli() + int64(j), hdr: fmt.Sprint(i, j)}
				if (i+j)%7 != 3 {
					a.value = fmt.Appendf(nil, "v%d.%d", i, j)
				}
				if idem {
					a.key = []byte("p") // the producer's records: superseded below
				}
				bld.Append(a.ts, a.key, a.value, []record.Header{{Key: "h", Value: []byte(a.hdr)}})
				recs = append(recs, a)
			}
			data, err := bld.AppendTo(nil, codecs[i%len(codecs)])
			require.NoError(t, err)
			if idem {
				prodLast = append([]byte(nil), data...)
			}
			res := appendOK(t, l, data)
			for j, a := range recs {
				all[res.FirstOffset+int64(j)] = a
			}
			clock.Advance(time.Second)
		}
		res := appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("p"), value: []byte("final"), ts: clock.Now().UnixMilli()}))
		all[res.FirstOffset] = compactedRec{key: []byte("p"), value: []byte("final"), ts: clock.Now().UnixMilli()}
		require.NoError(t, l.Roll())
		// A first pass sets the tombstones' horizons; the one under test
		// runs after it has passed.
		_, err = l.Compact(context.Background())
		require.NoError(t, err)
		clock.Advance(2 * time.Hour)
		return l, all
	}
	mem := vfs.NewMem()
	counter := vfs.Count()
	armed := false
	l, _ := build(vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed {
			return counter.MaybeError(op, name)
		}
		return nil
	})), newClock())
	armed = true
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Positive(t, res.RecordsRemoved)
	n := counter.N()
	require.NoError(t, l.Close())

	compactionCrashes(t, dir, cfg, n, false, build, &prodLast)
}

// TestCompactionConcurrentReaders: readers (Read, ReadInto with a reused
// buffer, OffsetForTime) run while appends, rolls and compactions swap
// segments, on the memory FS and the OS's: every read succeeds, returns
// each record as appended at its offset, in offset order; OffsetForTime
// answers an offset whose record is at least as new. Run it with -race
// (the quick race run takes 100 rounds; without -race, 150).
func TestCompactionConcurrentReaders(t *testing.T) {
	for _, osfs := range []bool{false, true} {
		t.Run(fmt.Sprintf("os=%v", osfs), func(t *testing.T) {
			var fs vfs.FS = vfs.NewMem()
			dir := "/d/t-0"
			if osfs {
				fs, dir = vfs.OS, filepath.Join(t.TempDir(), "t-0")
			}
			clock := newClock()
			l, err := Open(dir, Config{SegmentBytes: 500, IndexIntervalBytes: 64, CleanupPolicy: Compact}, Options{FS: fs, Clock: clock})
			require.NoError(t, err)
			defer l.Close()
			var values sync.Map // offset -> value
			base := clock.Now().UnixMilli()
			rounds := 150
			if testing.Short() {
				rounds = 100
			}
			done := make(chan struct{})
			errs := make(chan error, 4)
			var wg sync.WaitGroup
			reader := func(into bool) {
				defer wg.Done()
				// The times it looks up: a failure names the one (what
				// it finds is the interleaving's).
				rng := rand.New(rand.NewPCG(map[bool]uint64{false: 1, true: 2}[into], 3))
				var buf []byte
				if into {
					buf = make([]byte, 4096)
				}
				for {
					select {
					case <-done:
						errs <- nil
						return
					default:
					}
					prev := int64(-1)
					for off := l.LogStartOffset(); off < l.LogEndOffset(); {
						data, err := l.ReadInto(buf, off, 1024, math.MaxInt64)
						if err != nil {
							errs <- fmt.Errorf("read at %d: %w", off, err)
							return
						}
						if len(data) == 0 {
							break
						}
						for b, err := range record.Batches(data) {
							if err != nil {
								errs <- err
								return
							}
							for r, err := range b.Records() {
								if err != nil {
									errs <- err
									return
								}
								v, ok := values.Load(r.Offset)
								if r.Offset <= prev || !ok || string(v.([]byte)) != string(r.Value) {
									errs <- fmt.Errorf("offset %d (after %d) holds %q", r.Offset, prev, r.Value)
									return
								}
								prev = r.Offset
							}
							off = b.NextOffset()
						}
					}
					ts := base + int64(rng.IntN(rounds))
					off, ok, err := l.OffsetForTime(ts)
					if err != nil {
						errs <- fmt.Errorf("offset for time %d: %w", ts, err)
						return
					}
					if ok && off < ts-base { // offset i has timestamp base+i
						errs <- fmt.Errorf("offset for time %d: %d", ts, off)
						return
					}
				}
			}
			wg.Add(3)
			go reader(false)
			go reader(true)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						errs <- nil
						return
					default:
					}
					for o := l.LogStartOffset(); o < l.LogEndOffset(); o += 7 {
						if _, err := l.Read(o, 100, math.MaxInt64); err != nil {
							errs <- fmt.Errorf("read at %d: %w", o, err)
							return
						}
					}
				}
			}()
			for i := range rounds {
				v := fmt.Appendf(nil, "v%d", i)
				data := batchOf(t, compression.Codec(i%5), kv{key: fmt.Appendf(nil, "k%d", i%9), value: v, ts: base + int64(i)})
				// Stored before the append: a reader may see it at once.
				values.Store(l.LogEndOffset(), v)
				appendOK(t, l, data)
				if i%20 == 19 {
					require.NoError(t, l.Roll())
					_, err := l.Compact(context.Background())
					require.NoError(t, err)
				}
			}
			close(done)
			wg.Wait()
			for range 3 {
				require.NoError(t, <-errs)
			}
		})
	}
}

// TestCompactionEdges: compaction over LogAppendTime batches, a log start
// offset inside a segment, and many small segments whose indexes are full
// (which compaction leaves apart: see TestCompactionGroupIndexLimit); each
// reopened and checked against the files.
func TestCompactionEdges(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		pre  func(*Log)
	}{
		{"LogAppendTime", Config{SegmentBytes: 400, IndexIntervalBytes: 64, CleanupPolicy: Compact, TimestampType: LogAppendTime}, nil},
		{"start inside a segment", Config{SegmentBytes: 400, IndexIntervalBytes: 64, CleanupPolicy: Compact | Delete, RetentionTime: -1},
			func(l *Log) {
				_, err := l.DeleteRecordsBefore(context.Background(), l.LogStartOffset()+3)
				require.NoError(t, err)
			}},
		{"full indexes", Config{SegmentBytes: 5000, IndexIntervalBytes: 1, SegmentIndexBytes: 36, CleanupPolicy: Compact}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(c.cfg)
			want := map[string]string{}
			for i := range 120 {
				k, v := fmt.Sprintf("k%d", i%11), fmt.Sprintf("v%d", i)
				appendOK(t, l, batchOf(t, compression.Codec(i%5), kv{key: []byte(k), value: []byte(v), ts: e.clock.Now().UnixMilli()},
					kv{key: fmt.Appendf(nil, "u%d", i), value: []byte("x"), ts: e.clock.Now().UnixMilli()}))
				want[k] = v
				e.clock.Advance(time.Second)
				if i%30 == 29 {
					require.NoError(t, l.Roll())
				}
			}
			if c.pre != nil {
				c.pre(l)
			}
			require.NoError(t, l.Roll())
			start, end := l.LogStartOffset(), l.LogEndOffset()
			res, err := l.Compact(context.Background())
			require.NoError(t, err)
			require.Positive(t, res.RecordsRemoved)
			check := func(l *Log) {
				require.Equal(t, start, l.LogStartOffset())
				require.Equal(t, end, l.LogEndOffset())
				batches, recs := readBatches(t, l, start)
				got := map[string]string{}
				for _, r := range recs {
					got[string(r.Key)] = string(r.Value)
				}
				for k, v := range want {
					require.Equal(t, v, got[k], "key %s", k)
				}
				for _, b := range batches {
					require.Equal(t, c.cfg.TimestampType == LogAppendTime, b.TimestampType() == record.LogAppendTime)
				}
				checkIndexes(t, l, scanSegmentFiles(t, e.fs, e.dir), batches, recs, start, end)
			}
			check(l)
			require.NoError(t, l.Close())
			l = e.open(c.cfg)
			defer l.Close()
			check(l)
		})
	}
}

// TestCompactionDirtyRatioOverCleanablePart: the dirty ratio that makes
// Maintain compact is taken over the cleanable part of the log, as Kafka's
// is (from the log start to the first uncleanable offset): segments younger
// than min.compaction.lag.ms count neither way. Before, they counted as
// dirty, so once they made up half the log every Maintain ran a
// compaction that could not clean them, rewriting the old segments into
// temporary files each time.
func TestCompactionDirtyRatioOverCleanablePart(t *testing.T) {
	mem := vfs.NewMem()
	cleanings := 0
	fs := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && strings.HasSuffix(name, segment.LogSuffix+cleanedSuffix) {
			cleanings++
		}
		return nil
	}))
	clock := newClock()
	cfg := Config{SegmentBytes: 300, CleanupPolicy: Compact, MinCompactionLag: time.Hour}
	l, err := Open("/d/t-0", cfg, Options{FS: fs, Clock: clock})
	require.NoError(t, err)
	defer l.Close()
	fill := func(n int) {
		for i := range n {
			appendOK(t, l, batchOf(t, compression.None, kv{key: fmt.Appendf(nil, "k%d", i%3), value: []byte("value"), ts: clock.Now().UnixMilli()}))
		}
		require.NoError(t, l.Roll())
	}
	fill(30)
	clock.Advance(2 * time.Hour)
	require.NoError(t, l.Maintain(context.Background()))
	require.Positive(t, cleanings, "the old segments were cleaned")
	require.Zero(t, l.DirtyRatio())

	// Young segments, most of the log: nothing is cleanable.
	fill(120)
	require.Zero(t, l.DirtyRatio(), "segments younger than min.compaction.lag.ms counted as dirty")
	cleanings = 0
	require.NoError(t, l.Maintain(context.Background()))
	require.Zero(t, cleanings, "Maintain compacted a log with nothing cleanable")

	// Once they are old enough, they are dirty and cleaned.
	clock.Advance(2 * time.Hour)
	require.Greater(t, l.DirtyRatio(), 0.5)
	require.NoError(t, l.Maintain(context.Background()))
	require.Positive(t, cleanings)
	require.Zero(t, l.DirtyRatio())
}

// TestCompactionHonorsCancel: a compaction stops when its context ends
// while it cleans a group, not only between groups, so that a broker's
// Close does not wait for a whole segment to be cleaned; the log is as
// before. Before, a context cancelled during the only group's cleaning let
// it finish and swap.
func TestCompactionHonorsCancel(t *testing.T) {
	for _, during := range []string{"cleaning"} {
		t.Run(during, func(t *testing.T) {
			mem := vfs.NewMem()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			armed := false
			fs := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if !armed {
					return nil
				}
				if during == "cleaning" && op == vfs.OpCreate && strings.HasSuffix(name, cleanedSuffix) {
					cancel()
				}
				return nil
			}))
			clock := newClock()
			l, err := Open("/d/t-0", Config{SegmentBytes: 100000, CleanupPolicy: Compact}, Options{FS: fs, Clock: clock})
			require.NoError(t, err)
			defer l.Close()
			for i := range 200 {
				appendOK(t, l, batchOf(t, compression.None, kv{key: fmt.Appendf(nil, "k%d", i%10), value: []byte("v"), ts: clock.Now().UnixMilli()}))
			}
			require.NoError(t, l.Roll())
			armed = true
			res, err := l.Compact(ctx)
			armed = false
			require.ErrorIs(t, err, context.Canceled)
			require.Zero(t, res.SegmentsRewritten)
			require.Len(t, readAll(t, l, 0), 200)
			names, err := mem.List("/d/t-0")
			require.NoError(t, err)
			for _, n := range names {
				require.NotContains(t, n, cleanedSuffix)
			}
		})
	}
}
