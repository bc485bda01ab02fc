package log

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// Regression tests for what TestCrashSim found, each reduced to a fixed
// sequence.

// TestWaitAfterCloseOfTruncatedAppend: an append that TruncateTo removed
// before its fsync is answered ErrOffsetOutOfRange by its Durability's
// Wait, also once the log is closed (Close fsyncs what the log holds, not
// what it no longer holds): Wait said ErrClosed, which its doc keeps for a
// log closed without fsyncing the append (Discard, a failed Close).
// Found by TestCrashSim (seed 12).
func TestWaitAfterCloseOfTruncatedAppend(t *testing.T) {
	for _, discard := range []bool{false, true} {
		e := newEnv(t)
		l := e.open(Config{Sync: SyncAlways})
		ctx := context.Background()
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a"))
		res, d, err := l.AppendAsync(ctx, valueBatch(t, 1_700_000_000_001, "b", "c"), AppendOptions{})
		require.NoError(t, err)
		_, err = l.TruncateTo(res.FirstOffset)
		require.NoError(t, err)
		if discard {
			require.NoError(t, l.Discard())
		} else {
			require.NoError(t, l.Close())
		}
		require.ErrorIs(t, d.Wait(ctx), ErrOffsetOutOfRange, "discard %v", discard)
	}
}

// TestProducerSnapshotAfterTruncation: a truncation below the offset of
// the producer-state snapshot on disk replaces it. The snapshot (written
// at a roll, or by Close) held the batches the truncation removed; once
// appends took the log end past its offset again, Open after a crash
// took it for the state of the log below that offset and replayed only
// the batches after it: the batches appended in the truncated offsets
// were forgotten (their retries appended again: duplicates), and the
// truncated ones remembered (their retries answered as duplicates, with
// offsets that hold other records). Found by TestCrashSim (seed 27).
func TestProducerSnapshotAfterTruncation(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	appendOK(t, l, idemBatch(t, 1, 0, 0, 4))              // offsets 0-3
	appendOK(t, l, idemBatch(t, 1, 0, 4, 1))              // 4
	truncated := appendOK(t, l, idemBatch(t, 2, 0, 0, 2)) // 5-6: truncated below
	require.NoError(t, l.Roll())                          // the snapshot, at 7, holds producer 2's batch
	_, err := l.TruncateTo(truncated.FirstOffset)         // the log ends at 5
	require.NoError(t, err)
	again := appendOK(t, l, idemBatch(t, 1, 0, 5, 2))          // producer 1 at 5-6
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "past 7")) // the log end passes the snapshot's offset
	require.EqualValues(t, 5, again.FirstOffset)

	l = e.crashReopen(l, cfg)
	defer l.Close()
	res := appendOK(t, l, idemBatch(t, 1, 0, 5, 2))
	require.True(t, res.Duplicate, "producer 1's batch at 5 is in the log")
	require.Equal(t, again.FirstOffset, res.FirstOffset)
	res = appendOK(t, l, idemBatch(t, 2, 0, 0, 2))
	require.False(t, res.Duplicate, "producer 2's batch was truncated: its offsets hold producer 1's")
}

// TestProducerSnapshotPastTheRecoveredEnd: a producer-state snapshot past
// the end a crash left (TruncateTo writes one as of its new end, which
// under SyncNever may lie past what is synced) describes a log whose
// offsets below that end are the log's: Open takes its batches below the
// end, and replaces it with the state as of the end. It ignored it, and
// rebuilt the state from the segments, where compaction had removed
// batches whose retries were then refused as out of order (seed 158); and
// it left it on disk, so that once appends took the log end past its
// offset, Open after the next crash took it for the state below its offset
// and forgot the batches appended since the first crash (their retries
// appended again: duplicates). Found by TestCrashSim.
func TestProducerSnapshotPastTheRecoveredEnd(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever, CleanupPolicy: Compact}
	l := e.open(cfg)
	ctx := context.Background()
	appendOK(t, l, idemBatch(t, 1, 0, 0, 1)) // key "0" at 0
	var b record.Builder
	b.Reset()
	b.SetProducer(1, 0, 1)
	b.Append(1, []byte("0"), []byte("newer"), nil) // key "0" again at 1: compaction removes offset 0
	newer, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	appendOK(t, l, newer)
	require.NoError(t, l.Roll())
	require.NoError(t, l.Flush(ctx)) // the rolled segment is synced: compaction may clean it
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsRemoved)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a")) // 2, rolled below without a sync
	require.NoError(t, l.Roll())
	appendOK(t, l, valueBatch(t, 1_700_000_000_001, "b", "c")) // 3-4
	_, err = l.TruncateTo(4)                                   // the snapshot, at 4; segment 2 still unsynced
	require.NoError(t, err)

	// The crash loses offset 2: the log ends at 2, below the snapshot.
	l = e.crashReopen(l, cfg)
	require.EqualValues(t, 2, l.LogEndOffset())
	dup := appendOK(t, l, idemBatch(t, 1, 0, 0, 1))
	require.True(t, dup.Duplicate, "producer 1's first batch is in the log, compacted away")
	require.EqualValues(t, 0, dup.FirstOffset)

	// New appends take the log end past the old snapshot's offset.
	two := appendOK(t, l, idemBatch(t, 2, 0, 0, 1))
	require.EqualValues(t, 2, two.FirstOffset)
	appendOK(t, l, valueBatch(t, 1_700_000_000_002, "d", "e"))
	require.NoError(t, l.Flush(ctx))
	l = e.crashReopen(l, cfg)
	defer l.Close()
	require.EqualValues(t, 5, l.LogEndOffset(), "%+v", l.Recovery())
	dup = appendOK(t, l, idemBatch(t, 2, 0, 0, 1))
	require.True(t, dup.Duplicate, "producer 2's batch at 2 is in the log")
	require.EqualValues(t, 2, dup.FirstOffset)
}

// crashPastTheEnd opens a SyncNever log of cfg in e, appends ten
// batches with add(l, i), i from 0 to 9, each of one record at offset i,
// fsyncs the first five only, deletes the records before 7 and crashes:
// the log Open makes of it, whose end the crash left at 5 at most, below
// its log start offset.
func crashPastTheEnd(t *testing.T, e *env, cfg Config, add func(l *Log, i int)) *Log {
	t.Helper()
	cfg.Sync = SyncNever
	l := e.open(cfg)
	for i := range 10 {
		add(l, i)
		if i == 4 {
			require.NoError(t, l.Flush(context.Background()))
		}
	}
	start, err := l.DeleteRecordsBefore(context.Background(), 7)
	require.NoError(t, err)
	require.EqualValues(t, 7, start)
	return e.crashReopen(l, cfg)
}

// TestLogStartPastTheRecoveredEnd: a log start offset past the end a crash
// left (DeleteRecordsBefore into records not synced yet, under SyncNever)
// stays where it was, as in Kafka (LogLoader.recoverLog's
// deleteSegmentsIfLogStartGreaterThanLogEnd): every segment goes, and a
// new empty one starts at the log start, so that no offset below it is
// handed out again. Open once lowered the start to the end in memory only
// (after the next crash, once appends had passed it again, it moved above
// acknowledged records; found by TestCrashSim, seed 1571), then on disk
// too: offsets went backwards, and a consumer at the start found other
// records there.
func TestLogStartPastTheRecoveredEnd(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever}
	ctx := context.Background()
	l := crashPastTheEnd(t, e, cfg, func(l *Log, i int) {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, fmt.Sprint(i)))
	})
	require.EqualValues(t, 7, l.LogEndOffset())
	require.EqualValues(t, 7, l.LogStartOffset())
	require.Equal(t, 1, l.Segments())
	require.Equal(t, 1, l.Recovery().SegmentsDeleted, "%+v", l.Recovery())
	require.False(t, l.Recovery().Clean)
	// Durably: the segment at 0 is gone, the new one at 7 is there, and
	// the recovery point is the log start.
	crashed := e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	segs := scanSegmentFiles(t, crashed, e.dir)
	require.Len(t, segs, 1)
	require.EqualValues(t, 7, segs[0].base)
	rp, err := readOffset(crashed, e.dir, recoveryPointFile, -1)
	require.NoError(t, err)
	require.EqualValues(t, 7, rp)
	for i, v := range []string{"a", "b", "c"} {
		res := appendOK(t, l, valueBatch(t, 1_700_000_000_000, v))
		require.EqualValues(t, 7+i, res.FirstOffset)
	}
	require.NoError(t, l.Flush(ctx)) // acknowledged

	l = e.crashReopen(l, cfg)
	defer l.Close()
	require.EqualValues(t, 10, l.LogEndOffset())
	require.EqualValues(t, 7, l.LogStartOffset())
	recs := readAll(t, l, l.LogStartOffset())
	require.Len(t, recs, 3)
	for i, v := range []string{"a", "b", "c"} {
		require.EqualValues(t, 7+i, recs[i].Offset)
		require.Equal(t, v, string(recs[i].Value))
	}
}

// TestLogStartPastTheEndForgetsProducers: when Open empties a log whose
// end a crash left below its log start offset, the idempotent producers'
// state goes with the segments, and their snapshots, as Kafka's
// truncateFullyAndStartAt does: a batch of a producer known before the
// crash is no duplicate afterwards but a new producer's first (KIP-360),
// appended at the log start; and the state after that is durable.
func TestLogStartPastTheEndForgetsProducers(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever, SegmentBytes: 200} // rolls: snapshots
	ctx := context.Background()
	l := crashPastTheEnd(t, e, cfg, func(l *Log, i int) {
		// Producer 1 at 0-4, producer 2 at 5-9.
		appendOK(t, l, idemBatch(t, int64(1+i/5), 0, int32(i%5), 1))
		if i == 9 {
			require.True(t, appendOK(t, l, idemBatch(t, 1, 0, 4, 1)).Duplicate)
		}
	})
	require.EqualValues(t, 7, l.LogEndOffset())
	require.EqualValues(t, 7, l.LogStartOffset())
	require.EqualValues(t, -1, l.Recovery().ProducerSnapshot, "%+v", l.Recovery())
	names, err := e.fs.List(e.dir)
	require.NoError(t, err)
	for _, name := range names {
		if off, suffix, ok := segment.ParseFileName(name); ok && suffix == snapshotSuffix {
			require.GreaterOrEqual(t, off, int64(7), "snapshot %s of the removed segments", name)
		}
	}
	res := appendOK(t, l, idemBatch(t, 1, 0, 4, 1))
	require.False(t, res.Duplicate, "producer 1's state went with its batches")
	require.EqualValues(t, 7, res.FirstOffset)
	res = appendOK(t, l, idemBatch(t, 2, 0, 3, 1))
	require.False(t, res.Duplicate, "producer 2's batch at 8 was lost")
	require.EqualValues(t, 8, res.FirstOffset)
	require.NoError(t, l.Flush(ctx))

	l = e.crashReopen(l, cfg)
	defer l.Close()
	require.EqualValues(t, 9, l.LogEndOffset())
	requireDuplicate(t, l, idemBatch(t, 1, 0, 4, 1), 7)
	_, err = l.Append(ctx, idemBatch(t, 2, 0, 1, 1), AppendOptions{})
	require.ErrorIs(t, err, ErrOutOfOrderSequence, "producer 2 is known from 3 on")
}

// TestLogStartPastTheEndClearsEpochs: when Open empties a log whose end a
// crash left below its log start offset, the leader epoch cache is
// cleared, as Kafka's LogLoader clears it (clearAndFlush): the epochs
// began at offsets the log no longer holds.
func TestLogStartPastTheEndClearsEpochs(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever}
	ctx := context.Background()
	l := crashPastTheEnd(t, e, cfg, func(l *Log, i int) {
		// Epoch 1 at 0-4, epoch 2 at 5-9.
		_, err := l.Append(ctx, valueBatch(t, 1_700_000_000_000, fmt.Sprint(i)), AppendOptions{LeaderEpoch: int32(1 + i/5)})
		require.NoError(t, err)
		if i == 9 {
			require.Equal(t, []EpochEntry{{1, 0}, {2, 5}}, l.LeaderEpochs())
		}
	})
	require.EqualValues(t, 7, l.LogEndOffset())
	require.Empty(t, l.LeaderEpochs())
	epoch, end := l.EndOffsetForEpoch(1)
	require.EqualValues(t, -1, epoch)
	require.EqualValues(t, -1, end)
	_, err := l.Append(ctx, valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{LeaderEpoch: 3})
	require.NoError(t, err)
	require.Equal(t, []EpochEntry{{3, 7}}, l.LeaderEpochs())
	require.NoError(t, l.Flush(ctx))

	l = e.crashReopen(l, cfg)
	defer l.Close()
	require.Equal(t, []EpochEntry{{3, 7}}, l.LeaderEpochs())
}

// TestProducerSnapshotCoversCompactedSegments: under SyncNever a roll
// writes the producer-state snapshot too, so that compaction, which
// cleans rolled segments only, never removes an idempotent batch above
// the snapshot on disk. Without it the snapshot lagged (a roll wrote none,
// and Maintain's recovery-point checkpoint took the recovery point past
// the active segment's base, so the next fsync did not either): compaction
// removed batches the snapshot did not hold, and after a crash Open,
// replaying the log from the snapshot, forgot them — a retry of one was
// refused as out of order instead of answered as a duplicate (found by
// TestCrashSim, seed 1385).
func TestProducerSnapshotCoversCompactedSegments(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever, CleanupPolicy: Compact}
	l := e.open(cfg)
	ctx := context.Background()
	keyed := func(seq int32, key string) []byte { return keyedProducerBatch(t, seq, key) }
	appendOK(t, l, keyed(0, "a"))
	require.NoError(t, l.Close()) // the snapshot, at 1
	l = e.open(cfg)
	appendOK(t, l, keyed(1, "b")) // 1: compaction removes it
	appendOK(t, l, keyed(2, "b")) // 2
	require.NoError(t, l.Flush(ctx))
	require.NoError(t, l.Maintain(ctx)) // the recovery point at 3
	require.NoError(t, l.Roll())
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "c"))
	require.NoError(t, l.Flush(ctx))
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsRemoved)

	l = e.crashReopen(l, cfg)
	defer l.Close()
	requireDuplicate(t, l, keyed(1, "b"), 1)
}

// TestTruncateToAfterCompactionGap: truncating to a batch that follows a
// gap compaction left ends the log after the batch before the gap (as its
// segment then ends), not at the truncated batch's base: TruncateTo's doc
// said the latter (found by TestCrashSim, seed 17).
func TestTruncateToAfterCompactionGap(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{CleanupPolicy: Compact})
	defer l.Close()
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} { // offsets 0, 1, 2
		appendOK(t, l, batchOf(t, compression.None, kv{[]byte(k), []byte(k), 1}))
	}
	require.NoError(t, l.Roll())
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("b"), []byte("b2"), 1})) // 3
	require.NoError(t, l.Roll())                                                   // compaction cleans rolled segments
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsRemoved) // offset 1: a gap before the batch at 2

	end, err := l.TruncateTo(2)
	require.NoError(t, err)
	require.EqualValues(t, 1, end)
	require.EqualValues(t, 1, appendOK(t, l, valueBatch(t, 1, "d")).FirstOffset)
	recs := readAll(t, l, 0)
	require.Len(t, recs, 2)
	require.Equal(t, "d", string(recs[1].Value))
}

// TestCrashSimSnapshotAfterRecovery: seed 6015140 of the crash simulation
// (SyncNever, compact+delete). Open after a crash moved the recovery point
// to the recovered end but left the producer-state snapshot where it was,
// older: compaction then removed idempotent batches below the recovery
// point that the snapshot did not hold, and after the next crash Open,
// replaying the log from that snapshot, forgot them — a retry of one was
// refused as out of order instead of answered as a duplicate. Open now
// snapshots the producer state at the end after a recovery, as Kafka does.
func TestCrashSimSnapshotAfterRecovery(t *testing.T) {
	runCrashSim(t, 6015140, false)
}

// TestCrashSimReplayOverCompactedBatches: seed 21002576 of the crash
// simulation (found in a 3,000-seed run on 2026-11-30). A crash lost the
// batches of the one producer-state snapshot there was, written past the
// end the crash left, so Open replayed the whole log; compaction had
// removed a producer's batch whole (its seq 7 at offset 44), which the
// replay therefore forgot, and after a truncation just past it the
// producer's next batch (seq 8) was refused as out of order. With a
// snapshot per roll (57fed4f) Open replays from the newest one at or below
// the recovered end, which still holds the batch.
func TestCrashSimReplayOverCompactedBatches(t *testing.T) {
	runCrashSim(t, 21002576, false)
}

// TestCrashSimTransientStaleSwapIndexes: seeds 30051760 and 30057929 of
// the crash simulation with transient faults (found in a 20,000-seed run
// on 2026-11-30). A compaction's swap, committed, removed the .log of the
// segment it replaced at its base offset, but not its index (the removal
// failed, and the crash kept the .log's removal alone); Open completed the
// swap and kept that index for the cleaned segment: time index entries
// naming offsets the cleaning had removed.
func TestCrashSimTransientStaleSwapIndexes(t *testing.T) {
	for _, seed := range []uint64{30051760, 30057929} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runCrashSimWith(t, seed, false, true) })
	}
}

// TestCleanOpenWithoutEndSnapshotWritesOne: an Open that takes the log for
// cleanly closed (its marker there) though no producer-state snapshot as of
// the end is (a stale marker put back, snapshots lost) writes one, as Open
// does after a recovery. Without it the state was replayed from the log,
// compaction (free below the end) removed a batch only that state held,
// and after a crash the producer's retry of it was not taken for a
// duplicate (found by TestCrashSimTransientFaults, seed 81011425).
func TestCleanOpenWithoutEndSnapshotWritesOne(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever, CleanupPolicy: Compact}
	l := e.open(cfg)
	ctx := context.Background()
	keyed := func(seq int32, key string) []byte { return keyedProducerBatch(t, seq, key) }
	appendOK(t, l, keyed(0, "a")) // 0
	appendOK(t, l, keyed(1, "b")) // 1: compaction removes it
	appendOK(t, l, keyed(2, "b")) // 2
	require.NoError(t, l.Roll())  // a snapshot at 3
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "c"))
	require.NoError(t, l.Close()) // a snapshot at 4, and the marker
	for _, off := range []int64{3, 4} {
		require.NoError(t, e.fs.Remove(filepath.Join(e.dir, snapshotName(off))))
	}

	l = e.open(cfg)
	require.True(t, l.Recovery().Clean)
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsRemoved)
	l = e.crashReopen(l, cfg)
	defer l.Close()
	requireDuplicate(t, l, keyed(1, "b"), 1)
}

// TestCrashSimTransientRollFailedThenAppended: seeds of the crash
// simulation with transient faults that go on after an append whose roll
// failed (ErrRollFailed; the simulation cut the power there before), found
// in a 20,000-seed run on 2026-12-01. The failed roll left the new
// segment's files (a burst of faults failed their removal too), and the
// old segment, unsealed, took the next batches that fit it, from the
// offset the new segment began at: Open, after a clean close or a crash,
// reported them as corrupt ("reach 7, where the segment after it
// begins"). They fail on the code before 54aab64, which went on; a crash
// that brings back files whose removal was not synced is
// TestRollFailedFilesStayRemovedAfterACrash's.
func TestCrashSimTransientRollFailedThenAppended(t *testing.T) {
	for _, seed := range []uint64{101000316, 101000404, 101001056, 101001227} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runCrashSimWith(t, seed, false, true) })
	}
}

// TestCrashSimTransientRecoveryLeftIndexAheadOfTimeIndex: seed
// 688352733590 of the crash simulation with transient faults (found by a
// review on 2026-12-02; it failed at 363c4b5 too). A compaction's swap
// failed at its directory sync; the reopen in the same boot recovered
// the compacted segment (its time index missing), and the rebuild failed
// at "sync .index, write .timeindex": the .index held its entries, the
// .timeindex none. The next reopen trusted the segment (below the
// recovery point) and took its max timestamp from the batches after the
// last offset index entry, below the largest: OffsetForTime(1700001623000)
// = 23, want 19. The segment-level test is
// segment.TestRecoverFailedLeavesNoIndexAheadOfTimeIndex.
func TestCrashSimTransientRecoveryLeftIndexAheadOfTimeIndex(t *testing.T) {
	runCrashSimWith(t, 688352733590, false, true)
}
