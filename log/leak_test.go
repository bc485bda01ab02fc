package log

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The tests in this file run a workload for many cycles and check that the
// memory the log holds returns, after each cycle's cleanup, to about its
// level after the first few cycles: growth per cycle, not noise. They run
// leakcheck.Cycles cycles (RUNNEL_LEAK_CYCLES for a longer run).

// A compacted log whose keys are all written again each cycle keeps a
// bounded number of segments: the cleaner merges the small segments it
// left behind (an empty batch each, when every record was superseded)
// into groups of up to segment.bytes, as Kafka's does — also when no
// record of a group goes any more.
func TestLeakCompactedSegments(t *testing.T) {
	e := newEnv(t)
	mem := e.fs.(*vfs.MemFS)
	cfg := Config{SegmentBytes: 16 << 10, CleanupPolicy: Compact, MinCleanableDirtyRatio: -1, RetentionTime: -1}
	l := e.open(cfg)
	defer l.Close()
	val := make([]byte, 1000)
	ctx := context.Background()
	maxSegs := 0
	leakcheck.Bounded(t, leakcheck.Cycles(t, 400), 64<<10, false, mem.Allocated, func(i int) {
		for k := range 20 {
			appendOK(t, l, batchOf(t, compression.None, kv{key: []byte(fmt.Sprint(k)), value: val, ts: e.clock.Now().UnixMilli()}))
		}
		_, err := l.Compact(ctx)
		require.NoError(t, err)
		maxSegs = max(maxSegs, l.Segments())
	})
	t.Logf("segments: %d at the end, at most %d", l.Segments(), maxSegs)
	require.Less(t, l.Segments(), 10, "segments left by compaction are merged")
}

// A compacted log that rolls small segments (segment.ms, a roll per cycle
// here) of records that all stay keeps a bounded number of segments: the
// cleaner merges consecutive small segments into one of up to
// segment.bytes, as Kafka's does, even when it removes nothing from them.
func TestLeakCompactedSmallSegments(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 1 << 20, CleanupPolicy: Compact, MinCleanableDirtyRatio: -1, RetentionTime: -1}
	l := e.open(cfg)
	defer l.Close()
	ctx := context.Background()
	n := leakcheck.Cycles(t, 400)
	for i := range n {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte(fmt.Sprint(i)), value: []byte("v"), ts: e.clock.Now().UnixMilli()}))
		require.NoError(t, l.Roll())
		_, err := l.Compact(ctx)
		require.NoError(t, err)
	}
	t.Logf("%d cycles: %d segments, %d bytes", n, l.Segments(), l.Size())
	require.Less(t, l.Segments(), 10, "small segments are merged")
	require.Len(t, readAll(t, l, 0), n, "every record stays")
}

// producerBatch1 is producer id's (epoch 0) batch of one record at
// sequence 0, stamped ts.
func producerBatch1(t testing.TB, id int64, ts int64) []byte {
	t.Helper()
	var b record.Builder
	b.SetProducer(id, 0, 0)
	b.Append(ts, []byte("k"), []byte("v"), nil)
	out, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return out
}

// Short-lived idempotent producers, each appending once under a new id,
// in a log whose segments roll and go by retention: the producer state,
// its snapshots and the segments stay bounded, each id forgotten once
// idle for ProducerExpiration.
func TestLeakProducerIDChurn(t *testing.T) {
	e := newEnv(t)
	mem := e.fs.(*vfs.MemFS)
	cfg := Config{SegmentBytes: 4 << 10, RetentionBytes: 16 << 10, RetentionTime: -1}
	l, err := Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock, ProducerExpiration: 5 * time.Minute})
	require.NoError(t, err)
	defer l.Close()
	ctx := context.Background()
	id := int64(0)
	files := func() int64 {
		names, err := e.fs.List(e.dir)
		require.NoError(t, err)
		return int64(len(names))
	}
	leakcheck.Bounded(t, leakcheck.Cycles(t, 400), 64<<10, false, func() int64 { return mem.Allocated() + files()<<10 }, func(int) {
		for range 50 {
			id++
			appendOK(t, l, producerBatch1(t, id, e.clock.Now().UnixMilli()))
		}
		require.NoError(t, l.Roll())
		e.clock.Advance(time.Minute)
		require.NoError(t, l.Maintain(ctx))
	})
	l.mu.Lock()
	n := len(l.producers)
	l.mu.Unlock()
	require.LessOrEqual(t, n, 6*50, "producer ids idle for ProducerExpiration are forgotten")
}

// Segments deleted by retention or DeleteRecordsBefore free what they
// held: their files in the memory FS (MemFS.Allocated), their indexes
// (an entry per batch here), their producer snapshots, and the leader
// epochs that ended before the new log start (a new epoch each cycle).
func TestLeakDeletedSegments(t *testing.T) {
	for _, how := range []string{"retention", "delete-records"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			mem := e.fs.(*vfs.MemFS)
			cfg := Config{SegmentBytes: 8 << 10, IndexIntervalBytes: 1, RetentionTime: -1}
			if how == "retention" {
				cfg.RetentionBytes = 32 << 10
			}
			l, err := Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock, ProducerExpiration: 5 * time.Minute})
			require.NoError(t, err)
			defer l.Close()
			ctx := context.Background()
			val := make([]byte, 500)
			id := int64(0)
			leakcheck.Bounded(t, leakcheck.Cycles(t, 400), 64<<10, false, func() int64 { return mem.Allocated() + int64(len(l.LeaderEpochs()))<<10 }, func(i int) {
				for range 20 {
					id++
					_, err := l.Append(ctx, producerBatch1(t, id, e.clock.Now().UnixMilli()), AppendOptions{LeaderEpoch: int32(i)})
					require.NoError(t, err)
					appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: val, ts: e.clock.Now().UnixMilli()}))
				}
				if how == "delete-records" {
					_, err := l.DeleteRecordsBefore(context.Background(), l.LogEndOffset())
					require.NoError(t, err)
				}
				e.clock.Advance(time.Minute)
				require.NoError(t, l.Maintain(ctx))
			})
			t.Logf("%d segments, %d leader epochs", l.Segments(), len(l.LeaderEpochs()))
			require.LessOrEqual(t, len(l.LeaderEpochs()), 20)
		})
	}
}

// A burst of producer ids, all expired since, leaves no table behind: the
// log's map of producer states is rebuilt once most of its ids are gone
// (a Go map never gives back the room it grew to). The heap is counted
// without the memory FS, which keeps the last snapshot taken (of every
// id) until later rolls take newer ones, as Kafka keeps its.
func TestLeakProducerStateShrinks(t *testing.T) {
	e := newEnv(t)
	mem := e.fs.(*vfs.MemFS)
	l, err := Open(e.dir, Config{RetentionTime: -1}, Options{FS: e.fs, Clock: e.clock, ProducerExpiration: 5 * time.Minute})
	require.NoError(t, err)
	defer l.Close()
	ctx := context.Background()
	appendOK(t, l, producerBatch1(t, 1, e.clock.Now().UnixMilli()))
	h0 := leakcheck.LiveHeap() - mem.Allocated()
	n := leakcheck.Cycles(t, 200_000)
	for id := int64(2); id <= int64(n); id++ {
		appendOK(t, l, producerBatch1(t, id, e.clock.Now().UnixMilli()))
	}
	require.NoError(t, l.Roll())
	_, err = l.DeleteRecordsBefore(context.Background(), l.LogEndOffset())
	require.NoError(t, err)
	e.clock.Advance(10 * time.Minute)
	require.NoError(t, l.Maintain(ctx))
	l.mu.Lock()
	require.Empty(t, l.producers)
	l.mu.Unlock()
	h1 := leakcheck.LiveHeap() - mem.Allocated()
	t.Logf("%d producer ids, expired: live heap but the FS %d -> %d (%+.1f B an id)", n, h0, h1, float64(h1-h0)/float64(n))
	require.Less(t, h1-h0, int64(n)*4+512<<10, "the expired ids' map is kept")
}

// A compacted log written by short-lived idempotent producers keeps each
// producer's last batch (emptied) only while the producer is remembered:
// once its id expires, the next pass lets the batch go, so the log, its
// segments and snapshots stay bounded.
func TestLeakCompactedProducerChurn(t *testing.T) {
	e := newEnv(t)
	mem := e.fs.(*vfs.MemFS)
	cfg := Config{SegmentBytes: 4 << 10, CleanupPolicy: Compact, MinCleanableDirtyRatio: -1, RetentionTime: -1}
	l, err := Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock, ProducerExpiration: 5 * time.Minute})
	require.NoError(t, err)
	defer l.Close()
	ctx := context.Background()
	id := int64(0)
	leakcheck.Bounded(t, leakcheck.Cycles(t, 400), 32<<10, false, func() int64 { return mem.Allocated() + int64(l.Segments())<<10 }, func(int) {
		for k := range 10 {
			id++
			var b record.Builder
			b.SetProducer(id, 0, 0)
			b.Append(e.clock.Now().UnixMilli(), []byte(fmt.Sprint(k)), make([]byte, 100), nil)
			data, err := b.AppendTo(nil, compression.None)
			require.NoError(t, err)
			appendOK(t, l, data)
		}
		require.NoError(t, l.Roll())
		e.clock.Advance(time.Minute)
		require.NoError(t, l.Maintain(ctx))
		_, err := l.Compact(ctx)
		require.NoError(t, err)
	})
	t.Logf("%d segments, %d bytes", l.Segments(), l.Size())
}
