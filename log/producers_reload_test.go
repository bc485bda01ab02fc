package log

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// openProducerLog opens, on fs, a log that holds producer 1's batches
// of one record at sequences 0..5 (offsets 0..5), rolled at 3 under
// SyncAlways, so that a producer-state snapshot at 3 is on disk.
func openProducerLog(t *testing.T, e *env) *Log {
	t.Helper()
	l, err := Open(e.dir, Config{Sync: SyncAlways, RetentionTime: -1}, Options{FS: e.fs, Clock: e.clock, ProducerExpiration: time.Hour})
	require.NoError(t, err)
	for seq := range int32(6) {
		appendOK(t, l, keyedProducerBatch(t, seq, "k"))
		if seq == 2 {
			require.NoError(t, l.Roll())
		}
	}
	require.Contains(t, l.snapshots, int64(3))
	return l
}

// TestTruncateReloadUnreadableSnapshot: the truncation reloads
// the producer state from the newest snapshot at or below its end; one
// that does not parse is skipped (logged), and the state keeps what it
// remembered below the end: the producer's next sequence follows the last
// batch kept, and a retry of a kept batch is a duplicate.
func TestTruncateReloadUnreadableSnapshot(t *testing.T) {
	e := newEnv(t)
	l := openProducerLog(t, e)
	defer l.Close()
	f, err := e.fs.Create(filepath.Join(e.dir, snapshotName(3)))
	require.NoError(t, err)
	_, err = f.Write([]byte("not a snapshot\n"))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	end, err := l.TruncateTo(5)
	require.NoError(t, err)
	require.EqualValues(t, 5, end)
	requireDuplicate(t, l, keyedProducerBatch(t, 4, "k"), 4)
	res := appendOK(t, l, keyedProducerBatch(t, 5, "k"))
	require.False(t, res.Duplicate)
	require.EqualValues(t, 5, res.FirstOffset)
}

// TestTruncateReloadReplayFails: the replay of the batches from
// the snapshot to the new end that fails on a read fences the log (the
// state cannot be trusted), and the reopened log has what the truncation
// kept, its producer taking the next sequence after it.
func TestTruncateReloadReplayFails(t *testing.T) {
	e := newEnv(t)
	var on atomic.Bool
	var n atomic.Int32
	seg3 := segment.FileName(3, segment.LogSuffix)
	e.fs = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpRead && on.Load() && strings.HasSuffix(name, seg3) {
			n.Add(1)
			return vfs.ErrInjected
		}
		return nil
	}))
	l := openProducerLog(t, e)
	testHookTruncateStores = func(*Log) { on.Store(true) }
	t.Cleanup(func() { testHookTruncateStores = nil })
	_, err := l.TruncateTo(5)
	testHookTruncateStores = nil
	on.Store(false)
	require.ErrorIs(t, err, ErrLogFenced)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.Positive(t, n.Load())
	l.Close()

	l = e.open(Config{Sync: SyncAlways, RetentionTime: -1})
	defer l.Close()
	require.EqualValues(t, 5, l.LogEndOffset())
	requireDuplicate(t, l, keyedProducerBatch(t, 4, "k"), 4)
	res := appendOK(t, l, keyedProducerBatch(t, 5, "k"))
	require.False(t, res.Duplicate)
	require.EqualValues(t, 5, res.FirstOffset)
}

// TestTruncateReloadKeepsExpired: a producer that expired
// (Maintain) before a truncation is not brought back by the reload, though
// the replay from the snapshot finds its batches: the state holds only
// the producers the log knew before.
func TestTruncateReloadKeepsExpired(t *testing.T) {
	e := newEnv(t)
	l := openProducerLog(t, e)
	defer l.Close()
	e.clock.Advance(2 * time.Hour)
	require.NoError(t, l.Maintain(context.Background()))
	require.Empty(t, l.producers)

	_, err := l.TruncateTo(5)
	require.NoError(t, err)
	require.Empty(t, l.producers)
}

// producerBatchAt is producer id's (epoch 0) batch of one record at
// sequence seq.
func producerBatchAt(t *testing.T, id int64, seq int32) []byte {
	t.Helper()
	var b record.Builder
	b.Reset()
	b.SetProducer(id, 0, seq)
	b.Append(1_700_000_000_000, nil, []byte("v"), nil)
	out, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return out
}

// TestOpenExpiresMostProducers: an Open that loads at least
// minProducersShrink producer ids and finds at most a quarter of them
// unexpired shrinks the map to those (as Maintain does): the expired ones
// are forgotten (a retry of their batch is no duplicate: a new batch of an
// unknown producer), the others kept (a retry is a duplicate).
func TestOpenExpiresMostProducers(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, RetentionTime: -1}
	open := func() *Log {
		l, err := Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock, ProducerExpiration: time.Hour})
		require.NoError(t, err)
		return l
	}
	l := open()
	const n, kept = minProducersShrink, minProducersShrink / 8
	first := map[int64]int64{}
	for id := range int64(n) {
		first[id] = appendOK(t, l, producerBatchAt(t, id, 0)).FirstOffset
	}
	e.clock.Advance(50 * time.Minute)
	for id := range int64(kept) {
		first[id] = appendOK(t, l, producerBatchAt(t, id, 1)).FirstOffset
	}
	require.NoError(t, l.Close())
	e.clock.Advance(20 * time.Minute) // the others' last append 70 minutes ago

	l = open()
	defer l.Close()
	require.Len(t, l.producers, kept)
	for id := range int64(kept) {
		requireDuplicate(t, l, producerBatchAt(t, id, 1), first[id])
	}
	res := appendOK(t, l, producerBatchAt(t, kept, 0))
	require.False(t, res.Duplicate, "an expired producer's retry is a new batch")
}

// TestOpenSnapshotPastEndKeepsOlderProducer: after a crash that
// lost the log's last batch, the snapshot written past the new end (at
// the clean end before the loss) is not taken whole (it holds the lost
// batch); the state is replayed from the log start (no snapshot between
// it and the end survived), and merged with that snapshot. A producer
// whose batches all lie below the log start (DeleteRecordsBefore) is in
// the snapshot only: it is kept from there, so that its retry is still
// answered as a duplicate, as before the crash.
func TestOpenSnapshotPastEndKeepsOlderProducer(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, RetentionTime: -1}
	l := e.open(cfg)
	for seq := range int32(3) {
		appendOK(t, l, producerBatchAt(t, 1, seq)) // producer 1: offsets 0..2
	}
	start, err := l.DeleteRecordsBefore(context.Background(), 3)
	require.NoError(t, err)
	require.EqualValues(t, 3, start)
	for seq := range int32(3) {
		appendOK(t, l, producerBatchAt(t, 2, seq)) // producer 2: offsets 3..5
	}
	requireDuplicate(t, l, producerBatchAt(t, 1, 2), 2)
	require.NoError(t, l.Close())
	require.Contains(t, l.snapshots, int64(6))

	// The crash: the last batch lost, the snapshots between the start and
	// the new end too, no clean-shutdown marker.
	segPath := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix))
	data := readAllFile(t, e.fs, segPath)
	writeMemFile(t, e.fs, segPath, data[:len(data)-len(producerBatchAt(t, 2, 2))])
	for _, off := range l.snapshots {
		if off >= 3 && off <= 5 {
			require.NoError(t, e.fs.Remove(filepath.Join(e.dir, snapshotName(off))))
		}
	}
	require.NoError(t, e.fs.Remove(filepath.Join(e.dir, cleanShutdownFile)))

	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 5, l.LogEndOffset())
	require.EqualValues(t, 3, l.LogStartOffset())
	requireDuplicate(t, l, producerBatchAt(t, 1, 2), 2)
	requireDuplicate(t, l, producerBatchAt(t, 2, 1), 4)
	res := appendOK(t, l, producerBatchAt(t, 2, 2))
	require.False(t, res.Duplicate)
	require.EqualValues(t, 5, res.FirstOffset)
}

// TestProducerSnapshotPastTheEndKeepsOlderBatches: a producer-state
// snapshot past the end a crash left (a SyncNever roll's, 7b8b4d5) holds a
// producer's last batches as of its offset; the crash lost the newest of
// them, and its batches below the end that those had pushed out of the
// snapshot's window are still in the log. Open took the snapshot's
// batches below the end and replayed from the end only: a producer whose
// snapshot batches all lay past the end was forgotten, and the retry of
// its batch below the end appended again (a duplicate); with some left,
// the retry of an older one was refused as out of order.
func TestProducerSnapshotPastTheEndKeepsOlderBatches(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever}
	l := e.open(cfg)
	ctx := context.Background()
	for seq := range int32(5) {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // offsets 0-4
	}
	for seq := range int32(5) {
		appendOK(t, l, idemBatch(t, 2, 0, seq, 1)) // offsets 5-9
	}
	require.NoError(t, l.Flush(ctx)) // 0-9 synced
	for seq := int32(5); seq < 10; seq++ {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 10-14, never synced
	}
	for seq := int32(5); seq < 7; seq++ {
		appendOK(t, l, idemBatch(t, 2, 0, seq, 1)) // 15-16, never synced
	}
	// The snapshot, at 17: producer 1's batches 5-9, producer 2's 2-6.
	require.NoError(t, l.Roll())

	l = e.crashReopen(l, cfg)
	defer l.Close()
	require.EqualValues(t, 10, l.LogEndOffset(), "%+v", l.Recovery())
	dup := appendOK(t, l, idemBatch(t, 1, 0, 4, 1))
	require.True(t, dup.Duplicate, "producer 1's batch of sequence 4 is at offset 4")
	require.EqualValues(t, 4, dup.FirstOffset)
	dup = appendOK(t, l, idemBatch(t, 2, 0, 1, 1))
	require.True(t, dup.Duplicate, "producer 2's batch of sequence 1 is at offset 6")
	require.EqualValues(t, 6, dup.FirstOffset)
	next := appendOK(t, l, idemBatch(t, 1, 0, 5, 1))
	require.False(t, next.Duplicate)
	require.EqualValues(t, 10, next.FirstOffset)
	next = appendOK(t, l, idemBatch(t, 2, 0, 5, 1))
	require.False(t, next.Duplicate)
	require.EqualValues(t, 11, next.FirstOffset)
}

// TestProducerSnapshotPastTheEndAfterACompactedBatch: a producer whose
// snapshot batches past the recovered end were all lost, and whose batch
// before them compaction removed, is not given the state replayed from
// the log, which ends at an older batch: the retries of its lost batches
// are appended, not refused as out of order (what a merge without that
// check did: found by TestCrashSim, seed 500772).
func TestProducerSnapshotPastTheEndAfterACompactedBatch(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever, CleanupPolicy: Compact}
	l := e.open(cfg)
	ctx := context.Background()
	keyed := func(seq int32, key string) []byte { return keyedProducerBatch(t, seq, key) }
	appendOK(t, l, keyed(0, "a"))                                                     // 0
	appendOK(t, l, keyed(1, "b"))                                                     // 1: compaction removes it
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("b"), []byte("newer"), 1})) // 2
	require.NoError(t, l.Roll())
	require.NoError(t, l.Flush(ctx))
	var lost [][]byte
	for seq := int32(2); seq < 7; seq++ { // 3-7, never synced
		lost = append(lost, keyed(seq, fmt.Sprint("k", seq)))
		appendOK(t, l, bytes.Clone(lost[len(lost)-1]))
		if seq == 2 {
			// Batch 1 is not the producer's last: compaction removes it.
			res, err := l.Compact(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, res.RecordsRemoved)
		}
	}
	require.NoError(t, l.Roll()) // the snapshot, at 8: producer 1's batches 2-6

	l = e.crashReopen(l, cfg)
	defer l.Close()
	require.EqualValues(t, 3, l.LogEndOffset(), "%+v", l.Recovery())
	for i, data := range lost {
		res := appendOK(t, l, data)
		require.False(t, res.Duplicate)
		require.EqualValues(t, 3+i, res.FirstOffset)
	}
}
