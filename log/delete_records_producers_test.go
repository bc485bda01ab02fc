package log

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestDeleteRecordsKeepsProducersAcrossCrash: DeleteRecordsBefore past
// every producer-state snapshot (into the active segment) and then a
// crash: the idempotent producer's retry of its last batch, deleted, is
// still a duplicate after Open, as it is after a clean Close (the state
// outlives its batches, as Kafka's since KIP-360). Before, the deletion
// pruned every snapshot below the new log start, none was left at or
// past it, and Open replayed the state from the start, past every batch
// of the producer: the retry was appended again. Found by FuzzOpenFile
// (a log start checkpoint past the end).
func TestDeleteRecordsKeepsProducersAcrossCrash(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{"crash", "crash after Maintain", "clean"} {
		e := newEnv(t)
		cfg := Config{SegmentBytes: 300}
		l := e.open(cfg)
		var last []byte
		for seq := int32(0); seq < 12; seq++ {
			b := keyedProducerBatch(t, seq, "k")
			last = append([]byte(nil), b...)
			appendOK(t, l, b)
		}
		require.Greater(t, l.Segments(), 1)
		end := l.LogEndOffset()
		_, err := l.DeleteRecordsBefore(context.Background(), end)
		require.NoError(t, err)
		require.NoError(t, l.Flush(ctx))
		switch mode {
		case "crash after Maintain":
			require.NoError(t, l.Maintain(ctx))
			fallthrough
		case "crash":
			e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
			require.NoError(t, l.Discard())
		case "clean":
			require.NoError(t, l.Close())
		}
		l = e.open(cfg)
		require.Equal(t, end, l.LogStartOffset(), mode)
		res, err := l.Append(ctx, last, AppendOptions{})
		require.NoError(t, err, mode)
		require.True(t, res.Duplicate, "%s: the retry was appended again at %d", mode, res.FirstOffset)
		require.Equal(t, end-1, res.FirstOffset, mode)
		require.Equal(t, end, l.LogEndOffset(), mode)
		require.NoError(t, l.Close())
	}
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
