package log

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestCompactionGroupCrash crashes a compaction pass that rewrites groups
// of several small segments as one (segments an earlier pass cleaned, with
// the empty batches it kept, and newer ones segment rolls left) at each of
// its file-system operations, then opens what each crash tail mode leaves,
// with and without Reorder (unsynced directory operations persisting in
// part), with and without the producer-state snapshot. With rewrite, keys are
// rewritten so that records go; without, no record goes and the groups
// are merged only. After reopening: each record left is the one appended
// at its offset, each key's latest record is there, offsets increase, the
// indexes agree with the files, the log end offset is the old one, the
// idempotent producer's retry of its last batch is a duplicate and a
// sequence gap is refused.
func TestCompactionGroupCrash(t *testing.T) {
	for _, rewrite := range []bool{true, false} {
		t.Run(fmt.Sprintf("rewrite=%v", rewrite), func(t *testing.T) { testCompactionGroupCrash(t, rewrite) })
	}
}

func testCompactionGroupCrash(t *testing.T, rewrite bool) {
	dir := "/d/t-0"
	cfg := Config{SegmentBytes: 4000, IndexIntervalBytes: 64, CleanupPolicy: Compact}
	var prodLast []byte
	build := func(fs vfs.FS, clock *fakeClock) (*Log, map[int64]compactedRec) {
		l, err := Open(dir, cfg, Options{FS: fs, Clock: clock})
		require.NoError(t, err)
		all := map[int64]compactedRec{}
		seq := int32(0)
		phase := func(from, n int) {
			for i := from; i < from+n; i++ {
				var bld record.Builder
				bld.Reset()
				idem := i%4 == 1
				if idem {
					bld.SetProducer(7, 0, seq)
					seq++
				}
				key := fmt.Appendf(nil, "k%d", i%5)
				if !rewrite {
					key = fmt.Appendf(nil, "u%d", i) // no key twice
				}
				if idem && rewrite {
					key = []byte("p") // superseded by the next producer batch
				}
				a := kv{key: key, value: fmt.Appendf(nil, "v%d", i), ts: clock.Now().UnixMilli()}
				bld.Append(a.ts, a.key, a.value, nil)
				data, err := bld.AppendTo(nil, compression.Codec(i%2)*compression.Gzip)
				require.NoError(t, err)
				if idem {
					prodLast = append([]byte(nil), data...)
				}
				res := appendOK(t, l, data)
				all[res.FirstOffset] = compactedRec{key: a.key, value: a.value, ts: a.ts}
				if i%3 == 2 {
					require.NoError(t, l.Roll())
				}
				clock.Advance(1000)
			}
			require.NoError(t, l.Roll())
		}
		// Phase one, cleaned: its groups end in empty batches kept, and
		// the producer's last batch then is emptied.
		phase(0, 24)
		_, err = l.Compact(context.Background())
		require.NoError(t, err)
		// Phase two, small segments to merge with phase one's.
		phase(24, 24)
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
	before := l.Segments()
	armed = true
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Less(t, l.Segments(), before-3, "the pass merged no groups: %+v", res)
	require.Equal(t, rewrite, res.RecordsRemoved > 0)
	t.Logf("%d segments merged into %d, %d file-system operations", before, l.Segments(), counter.N())
	n := counter.N()
	require.NoError(t, l.Close())

	compactionCrashes(t, dir, cfg, n, true, build, &prodLast)
}

// TestCompactionGroupIndexLimit: a compaction merges segments only if the
// merged one's indexes fit segment.index.bytes, as Kafka's cleaner groups
// them (groupSegmentsBySize): segments rolled because their indexes were
// full stay apart, else the merged one's indexes fill part way and the
// rest of it goes unindexed (a read there scans from the last entry).
func TestCompactionGroupIndexLimit(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 1 << 20, SegmentIndexBytes: 48, IndexIntervalBytes: 64, CleanupPolicy: Compact}
	l := e.open(cfg)
	defer l.Close()
	for i := range 60 {
		appendOK(t, l, batchOf(t, compression.None, kv{key: fmt.Appendf(nil, "k%d", i), value: fmt.Appendf(nil, "value %d", i), ts: e.clock.Now().UnixMilli()}))
	}
	require.NoError(t, l.Roll())
	before := l.Segments()
	require.Greater(t, before, 4, "the segments did not roll on a full index")
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Zero(t, res.RecordsRemoved)
	require.Equal(t, before, l.Segments(), "segments with full indexes were merged")
	require.Len(t, readAll(t, l, 0), 60)
}

// TestCompactionKeepsLogEndWithoutActiveSegment: the last batch before the
// active segment stays, emptied, when compaction removes its records (a
// tombstone past its delete horizon) after merging its segment with the
// others, so that the log end offset survives a reopen that finds no
// active segment file (an empty segment whose creation a crash lost;
// Kafka keeps that batch since KAFKA-17076 for the same reason).
func TestCompactionKeepsLogEndWithoutActiveSegment(t *testing.T) {
	e := newEnv(t)
	cfg := Config{CleanupPolicy: Compact, DeleteRetentionTime: time.Minute}
	l := e.open(cfg)
	put := func(k string, v []byte) {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte(k), value: v, ts: e.clock.Now().UnixMilli()}))
		require.NoError(t, l.Roll())
	}
	compact := func() {
		_, err := l.Compact(context.Background())
		require.NoError(t, err)
	}
	for i := range 5 {
		put(fmt.Sprint("k", i), []byte("v"))
	}
	compact()
	put("k5", []byte("v"))
	put("k5", nil) // a tombstone: the last batch before the active segment
	before := l.Segments()
	compact() // merges the segments, sets the tombstone's horizon
	require.Less(t, l.Segments(), before)
	e.clock.Advance(time.Hour)
	compact() // the tombstone goes, its batch stays empty
	end := l.LogEndOffset()
	require.Len(t, readAll(t, l, 0), 5)
	require.NoError(t, l.Close())
	require.NoError(t, segment.RemoveFiles(e.fs, e.dir, end, segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix))
	l = e.open(cfg)
	defer l.Close()
	require.Equal(t, end, l.LogEndOffset())
	require.Len(t, readAll(t, l, 0), 5)
	require.Equal(t, end, appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("x"), value: []byte("y")})).FirstOffset)
}

// TestReadAndTimeSearchDuringGroupMerge: a compaction that merges the
// segments a read or a time search listed, removing no record, lands
// between the listing and its use. The read returns the batch at its
// offset and the search the first record at or after its timestamp, from
// the merged segment.
func TestReadAndTimeSearchDuringGroupMerge(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{CleanupPolicy: Compact, MinCleanableDirtyRatio: -1})
	defer l.Close()
	next := 0
	round := func() {
		for range 3 {
			appendOK(t, l, batchOf(t, compression.None, kv{key: fmt.Appendf(nil, "k%d", next), value: fmt.Appendf(nil, "v%d", next), ts: 1000 + int64(next)}))
			next++
			require.NoError(t, l.Roll())
		}
	}
	round()
	merge := func(hl *Log) {
		round() // new keys: nothing to remove, only segments to merge
		before := hl.Segments()
		res, err := hl.Compact(context.Background())
		require.NoError(t, err)
		require.Zero(t, res.RecordsRemoved)
		require.Less(t, hl.Segments(), before)
	}
	hooked := 0
	testHookReadListed = func(hl *Log) { testHookReadListed = nil; hooked++; merge(hl) }
	defer func() { testHookReadListed = nil }()
	recs := readAll(t, l, 2)
	require.Equal(t, 1, hooked)
	require.NotEmpty(t, recs)
	require.EqualValues(t, 2, recs[0].Offset)
	require.Equal(t, "v2", string(recs[0].Value))

	testHookTimeSearched = func(hl *Log) { testHookTimeSearched = nil; hooked++; merge(hl) }
	defer func() { testHookTimeSearched = nil }()
	off, ok, err := l.OffsetForTime(1004)
	require.Equal(t, 2, hooked)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 4, off)
}
