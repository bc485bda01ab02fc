package log

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestTombstoneInBatchStraddlingFullKeyMapKeepsItsTime: a batch holding a
// tombstone before the record whose key did not fit in a full key map and
// one after it. The pass sets no delete horizon past where the map filled
// (see TestTombstonePastFullKeyMapGetsNoHorizonYet): the later tombstone
// must stay delete.retention.ms from the pass that maps it, which also
// removes the older value of its key. A horizon set on the batch for the
// earlier tombstone covered the later one too, which then went in the
// same pass as that older value, without delete.retention.ms of its own:
// a consumer that had read the older value could miss the delete.
func TestTombstoneInBatchStraddlingFullKeyMapKeepsItsTime(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	l, err := Open(e.dir, Config{SegmentBytes: 1000, CleanupPolicy: Compact, DeleteRetentionTime: time.Hour},
		Options{FS: e.fs, Clock: e.clock, CleanerMapBytes: MinCleanerMapBytes})
	require.NoError(t, err)
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("b"), value: []byte("old"), ts: ts})) // 0
	require.NoError(t, l.Roll())
	compactUntilClean(t, l)
	// 1: a's tombstone, mapped; 2: b's, whose key does not fit.
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), ts: ts}, kv{key: []byte("b"), ts: ts}))
	require.NoError(t, l.Roll())
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, res.CleanedTo, "the map filled at b's tombstone")
	require.Equal(t, []string{"b=old", "a=", "b="}, keysOf(t, l))

	e.clock.Advance(50 * time.Minute)
	compactUntilClean(t, l) // maps b's tombstone: b=old goes
	require.Equal(t, []string{"a=", "b="}, keysOf(t, l))
	e.clock.Advance(11 * time.Minute)
	_, err = l.Compact(ctx)
	require.NoError(t, err)
	require.Contains(t, keysOf(t, l), "b=", "b's tombstone stays delete.retention.ms from the pass that removed b=old")
}

// TestDeleteRecordsAfterFailedSnapshotRenameKeepsProducers: a SyncNever
// log's fsync (Flush, Maintain) moves the recovery point and writes a
// producer-state snapshot, whose failure it logs and goes on from. A
// snapshot whose rename failed is not there, though listed; so
// DeleteRecordsBefore, which writes a snapshot as of the log end when
// none is listed at or past the new start, wrote none, the one below the
// start went, and the Open after a crash replayed the state from the
// start: the producer, whose batch lay below it, was forgotten, and a
// retry of that batch appended again.
func TestDeleteRecordsAfterFailedSnapshotRenameKeepsProducers(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	failRename := ""
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpRename && failRename != "" && filepath.Base(name) == failRename {
			return errors.New("injected rename failure")
		}
		return nil
	}))
	clock := newClock()
	cfg := Config{SegmentBytes: 1000, Sync: SyncNever}
	l, err := Open("/d/t-0", cfg, Options{FS: fsys, Clock: clock})
	require.NoError(t, err)
	retry := keyedProducerBatch(t, 0, "p")
	appendOK(t, l, slices.Clone(retry)) // 0
	for range 4 {
		appendOK(t, l, valueBatch(t, clock.Now().UnixMilli(), "x")) // 1-4
	}
	require.NoError(t, l.Roll()) // the snapshot at 5
	for range 5 {
		appendOK(t, l, valueBatch(t, clock.Now().UnixMilli(), "y")) // 5-9
	}
	failRename = snapshotName(10) + tmpSuffix
	require.NoError(t, l.Flush(ctx)) // the snapshot at 10 fails, logged
	failRename = ""
	require.Contains(t, l.snapshots, int64(10), "listed")
	names, err := mem.List("/d/t-0")
	require.NoError(t, err)
	require.NotContains(t, snapshotOffsets(names), int64(10), "not written")
	_, err = l.DeleteRecordsBefore(context.Background(), 8)
	require.NoError(t, err)

	crashed := mem.CrashClone(vfs.CrashOptions{})
	l.Close()
	l, err = Open("/d/t-0", cfg, Options{FS: crashed, Clock: clock})
	require.NoError(t, err)
	defer l.Close()
	require.EqualValues(t, 8, l.LogStartOffset())
	requireDuplicate(t, l, slices.Clone(retry), 0)
}
