package log

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestOpenReplaysFromAnOlderSnapshot: a crash that lost batches of the
// newest producer-state snapshot (a SyncNever roll's, written past what
// was synced) leaves Open the snapshots older than it: it loads the newest
// at or below the recovered end and replays only the batches after it,
// where it replayed the whole log from its start. The state it rebuilds
// is the same: the retries of the batches that survived are duplicates,
// the lost ones are appended again in order.
func TestOpenReplaysFromAnOlderSnapshot(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever}
	l := e.open(cfg)
	ctx := context.Background()
	for seq := range int32(6) {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // offsets 0-5
	}
	require.NoError(t, l.Roll())     // a snapshot at 6
	require.NoError(t, l.Flush(ctx)) // 0-5 synced
	for seq := int32(6); seq < 10; seq++ {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 6-9
	}
	require.NoError(t, l.Flush(ctx)) // 6-9 synced
	var lost [][]byte
	for seq := int32(10); seq < 12; seq++ {
		lost = append(lost, idemBatch(t, 1, 0, seq, 1))
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 10-11, never synced
	}
	require.NoError(t, l.Roll()) // a snapshot at 12, past what is synced

	l = e.crashReopen(l, cfg)
	defer l.Close()
	info := l.Recovery()
	require.EqualValues(t, 10, l.LogEndOffset(), "%+v", info)
	require.EqualValues(t, 6, info.ProducerSnapshot, "%+v", info)
	require.Equal(t, 4, info.ProducerBatchesReplayed, "%+v", info)
	for _, seq := range []int32{5, 9} {
		dup := appendOK(t, l, idemBatch(t, 1, 0, seq, 1))
		require.True(t, dup.Duplicate, "sequence %d", seq)
		require.EqualValues(t, seq, dup.FirstOffset)
	}
	for i, data := range lost {
		res := appendOK(t, l, data)
		require.False(t, res.Duplicate)
		require.EqualValues(t, 10+i, res.FirstOffset)
	}
}

// snapshotFiles lists the producer-state snapshot files in e's log
// directory by offset, and reports whether the single file of an older
// runnel is there.
func (e *env) snapshotFiles(t *testing.T) ([]int64, bool) {
	t.Helper()
	names, err := e.fs.List(e.dir)
	require.NoError(t, err)
	return snapshotOffsets(names), slices.Contains(names, producerFile)
}

// TestOpenSkipsAnUnreadableSnapshot: a snapshot that does not parse (a
// file gone bad, or another program's: Kafka's own .snapshot files are
// binary) is logged and skipped, and the next older one loaded; with none
// left, the state is replayed from the log start.
func TestOpenSkipsAnUnreadableSnapshot(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for seq := range int32(3) {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 0-2
	}
	require.NoError(t, l.Roll()) // a snapshot at 3
	for seq := int32(3); seq < 6; seq++ {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 3-5
	}
	require.NoError(t, l.Roll()) // a snapshot at 6
	appendOK(t, l, idemBatch(t, 1, 0, 6, 1))
	appendOK(t, l, idemBatch(t, 1, 0, 7, 1)) // 6-7
	offs, _ := e.snapshotFiles(t)
	require.Equal(t, []int64{3, 6}, offs)

	for _, tc := range []struct {
		bad      []int64
		from     int64
		replayed int
	}{
		{bad: []int64{6}, from: 3, replayed: 5},
		{bad: nil, from: -1, replayed: 8}, // all of them
	} {
		mem := e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
		bad := tc.bad
		if bad == nil {
			names, err := mem.List(e.dir)
			require.NoError(t, err)
			bad = snapshotOffsets(names) // with the one Open wrote at 0, whose removal was not synced
		}
		for _, off := range bad {
			f, err := mem.Create(filepath.Join(e.dir, snapshotName(off)))
			require.NoError(t, err)
			_, err = f.Write([]byte{0, 0, 0, 1, 0xff, 0x7f}) // not the checkpoint layout
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}
		l2, err := Open(e.dir, cfg, Options{FS: mem, Clock: e.clock})
		require.NoError(t, err)
		info := l2.Recovery()
		require.EqualValues(t, tc.from, info.ProducerSnapshot, "bad %v: %+v", tc.bad, info)
		require.Equal(t, tc.replayed, info.ProducerBatchesReplayed, "bad %v: %+v", tc.bad, info)
		for _, seq := range []int32{3, 7} {
			dup := appendOK(t, l2, idemBatch(t, 1, 0, seq, 1))
			require.True(t, dup.Duplicate, "bad %v: sequence %d", tc.bad, seq)
			require.EqualValues(t, seq, dup.FirstOffset)
		}
		_, err = l2.Append(context.Background(), idemBatch(t, 1, 0, 9, 1), AppendOptions{})
		require.ErrorIs(t, err, ErrOutOfOrderSequence)
		require.NoError(t, l2.Close())
	}
	require.NoError(t, l.Close())
}

// TestOpenReplacesTheSingleSnapshotFile: a log directory of an older
// runnel has one producer-state snapshot, producer-state-checkpoint. Open
// loads it, whether the log was closed cleanly or not, and replaces it
// with a snapshot named by its offset.
func TestOpenReplacesTheSingleSnapshotFile(t *testing.T) {
	for _, clean := range []bool{true, false} {
		e, cfg, l := reopenWithOlderSnapshot(t, clean, func(e *env) {
			// Made the older runnel's layout: its snapshot under the one name.
			offs, _ := e.snapshotFiles(t)
			for _, off := range offs {
				if off != 4 {
					require.NoError(t, e.fs.Remove(filepath.Join(e.dir, snapshotName(off))))
				}
			}
			require.NoError(t, e.fs.Rename(filepath.Join(e.dir, snapshotName(4)), filepath.Join(e.dir, producerFile)))
		})
		offs, legacy := e.snapshotFiles(t)
		require.False(t, legacy, "clean %v: the older file is still there", clean)
		require.Contains(t, offs, int64(4), "clean %v", clean)

		// The next crash finds the state in the new file.
		appendOK(t, l, idemBatch(t, 1, 0, 4, 1)) // 4
		l = e.crashReopen(l, cfg)
		require.EqualValues(t, 4, l.Recovery().ProducerSnapshot, "clean %v", clean)
		require.Equal(t, 1, l.Recovery().ProducerBatchesReplayed, "clean %v", clean)
		require.True(t, appendOK(t, l, idemBatch(t, 1, 0, 4, 1)).Duplicate)
		require.NoError(t, l.Close())
	}
}

// TestSnapshotsArePruned: the snapshots at or below the recovery point
// are kept only as the newest retainedSnapshots of them, those below the
// log start offset go, and under SyncNever those of the rolls since the
// last fsync stay until an fsync moves the recovery point past them.
func TestSnapshotsArePruned(t *testing.T) {
	ctx := context.Background()
	t.Run("rolls", func(t *testing.T) {
		e := newEnv(t)
		l := e.open(Config{Sync: SyncAlways})
		defer l.Close()
		for seq := range int32(20) {
			appendOK(t, l, idemBatch(t, 1, 0, seq, 1))
			require.NoError(t, l.Roll())
			offs, _ := e.snapshotFiles(t)
			require.Len(t, offs, retainedSnapshots) // with the one Open wrote at 0
			require.EqualValues(t, seq+1, offs[len(offs)-1])
		}
		// Below the log start offset, none is kept.
		_, err := l.DeleteRecordsBefore(context.Background(), 19)
		require.NoError(t, err)
		offs, _ := e.snapshotFiles(t)
		require.Equal(t, []int64{19, 20}, offs)
		_, err = l.DeleteRecordsBefore(context.Background(), 20)
		require.NoError(t, err)
		offs, _ = e.snapshotFiles(t)
		require.Equal(t, []int64{20}, offs)
	})
	t.Run("sync never", func(t *testing.T) {
		e := newEnv(t)
		l := e.open(Config{Sync: SyncNever})
		defer l.Close()
		for seq := range int32(10) {
			appendOK(t, l, idemBatch(t, 1, 0, seq, 1))
			require.NoError(t, l.Roll())
		}
		offs, _ := e.snapshotFiles(t)
		require.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, offs, "the rolls since the last fsync")
		require.NoError(t, l.Flush(ctx)) // the recovery point moves to 10
		offs, _ = e.snapshotFiles(t)
		require.Equal(t, []int64{9, 10}, offs)
	})
}

// TestTruncateToRemovesTheSnapshotsPastItsEnd: the snapshots past the end
// a truncation leaves go (they hold the batches it removed, as of offsets
// the log end passes again), and the state as of the new end is written.
func TestTruncateToRemovesTheSnapshotsPastItsEnd(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever}
	l := e.open(cfg)
	ctx := context.Background()
	for seq := range int32(6) {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1))
		require.NoError(t, l.Roll()) // snapshots at 1 to 6
	}
	require.NoError(t, l.Flush(ctx))
	offs, _ := e.snapshotFiles(t)
	require.Equal(t, []int64{5, 6}, offs)
	end, err := l.TruncateTo(3)
	require.NoError(t, err)
	require.EqualValues(t, 3, end)
	offs, _ = e.snapshotFiles(t)
	require.Equal(t, []int64{3}, offs)
	for seq := range int32(4) {
		appendOK(t, l, idemBatch(t, 2, 0, seq, 1)) // 3-6
	}
	require.NoError(t, l.Flush(ctx))

	l = e.crashReopen(l, cfg)
	defer l.Close()
	require.EqualValues(t, 7, l.LogEndOffset())
	require.EqualValues(t, 3, l.Recovery().ProducerSnapshot, "%+v", l.Recovery())
	requireDuplicate(t, l, idemBatch(t, 1, 0, 2, 1), 2)
	requireDuplicate(t, l, idemBatch(t, 2, 0, 3, 1), 6)
	res := appendOK(t, l, idemBatch(t, 1, 0, 3, 1))
	require.False(t, res.Duplicate, "producer 1's batch at 3 was truncated")
	require.EqualValues(t, 7, res.FirstOffset)
}

// TestOpenLoadsASnapshotLargerThan64MiB: nothing bounds the
// number of idempotent producer ids a log remembers (a service that makes
// a producer for each request; ProducerExpiration negative, never), and so
// the size of a producer-state snapshot: about 55 bytes an id with one
// batch, 145 with five at everyday numbers (docs/details.md), more at
// large ones. One larger than 64 MiB, the bound of the other checkpoints,
// was unreadable, skipped as a bad one: every Open replayed the state
// from the log start (from an older snapshot, as large) and forgot the
// producers whose batches retention or DeleteRecordsBefore had removed, so
// that a retry of such a batch after a restart was appended a second time.
// Here 140,000 ids with five batches each, of large sequence numbers
// and offsets, make a snapshot past 64 MiB.
func TestOpenLoadsASnapshotLargerThan64MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("a snapshot past 64 MiB: seconds, and 500 MB")
	}
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for seq := range int32(5) {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 0-4
	}
	_, err := l.DeleteRecordsBefore(context.Background(), 5) // the producer's batches gone, its state kept
	require.NoError(t, err)
	// The other producers' state as the log would hold it, set directly:
	// 140,000 appends would take long, and their offsets could not be as
	// large.
	now := e.clock.Now().UnixNano()
	l.mu.Lock()
	const others = 140_000
	for id := int64(math.MaxInt64 - others); id < math.MaxInt64; id++ {
		st := &producerState{epoch: math.MaxInt16, last: now}
		for i := range int64(maxProducerBatches) {
			seq, off := int32(math.MaxInt32-10+i), int64(math.MaxInt64/2+i)
			st.batches = append(st.batches, producerBatch{firstSeq: seq, lastSeq: seq, firstOffset: off, lastOffs: off, appendTime: -1})
		}
		l.producers[id] = st
	}
	l.mu.Unlock()
	require.NoError(t, l.Close()) // the snapshot at 5
	fi, err := e.fs.Stat(filepath.Join(e.dir, snapshotName(5)))
	require.NoError(t, err)
	require.Greater(t, fi.Size(), int64(64<<20))

	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 5, l.Recovery().ProducerSnapshot, "%+v", l.Recovery())
	requireDuplicate(t, l, idemBatch(t, 1, 0, 4, 1), 4)
}

// TestSnapshotAlreadyGoneIsForgotten: a producer-state
// snapshot whose file is gone already (removed by hand, or by a removal
// whose answer was lost) when the prune removes it is forgotten, as one
// removed: only a removal that fails otherwise keeps it listed, to be
// tried again. Kills: the prune taking a file not found for a failed
// removal (s11: kept listed, and a Warn at every prune).
func TestSnapshotAlreadyGoneIsForgotten(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 400, Sync: SyncNever})
	defer func() { l.Close() }()
	for i := range 30 {
		appendOK(t, l, keyedProducerBatch(t, int32(i), "k"))
	}
	l.mu.Lock()
	require.NotEmpty(t, l.snapshots)
	gone := l.snapshots[0]
	l.unlock()
	require.NoError(t, e.fs.Remove(filepath.Join(e.dir, snapshotName(gone))))
	_, err := l.DeleteRecordsBefore(context.Background(), l.LogEndOffset())
	require.NoError(t, err)
	l.mu.Lock()
	snaps := slices.Clone(l.snapshots)
	l.unlock()
	require.NotContains(t, snaps, gone, "a snapshot gone already is forgotten")
}

// TestCleanOpenRemovesSnapshotsPastTheEnd: a producer-state snapshot past
// the log end beside a clean-shutdown marker (no Close leaves one: put
// there by hand, or with other files than the log's) describes batches
// the log does not hold: a clean Open removes it too, before appends
// pass its offset and the next Open after a crash would load it.
func TestCleanOpenRemovesSnapshotsPastTheEnd(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for seq := range int32(3) {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 0-2
	}
	require.NoError(t, l.Close())
	snap, err := readMemFile(e.fs, filepath.Join(e.dir, snapshotName(3)))
	require.NoError(t, err)
	writeMemFile(t, e.fs, filepath.Join(e.dir, snapshotName(10)), snap)

	l = e.open(cfg)
	defer l.Close()
	require.True(t, l.Recovery().Clean)
	offs, _ := e.snapshotFiles(t)
	require.NotContains(t, offs, int64(10))
}
