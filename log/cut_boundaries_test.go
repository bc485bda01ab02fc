package log

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The boundaries of DeleteRecordsBefore and TruncateTo: a negative offset,
// an offset at a segment's base, one past the last snapshot, the log end.
// Each test pins a comparison or a check that the rest of the suite would
// let change.

// TestDeleteRecordsBeforeNegative: any negative offset is refused as out of
// range, -1 too (a log whose start offset is 0 would otherwise take it for
// one at or below its start and answer 0, no error).
func TestDeleteRecordsBeforeNegative(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), "a", "b"))
	for _, off := range []int64{-1, -2, -1 << 62} {
		_, err := l.DeleteRecordsBefore(context.Background(), off)
		require.ErrorIs(t, err, ErrOffsetOutOfRange, "offset %d", off)
	}
	require.Zero(t, l.LogStartOffset())
}

// segmentBases lists l's segments' base offsets, oldest first.
func segmentBases(l *Log) []int64 {
	var out []int64
	for _, s := range *l.segs.Load() {
		out = append(out, s.Base())
	}
	return out
}

// TestDeleteRecordsBeforeAtSegmentBase: an offset that is exactly the base
// of a segment deletes every segment before it at once, the one just below
// included (it holds nothing at or past the new start), as Kafka's
// deletion of the segments whose next one starts at or below the log
// start offset.
func TestDeleteRecordsBeforeAtSegmentBase(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 200})
	defer l.Close()
	for i := range 12 {
		appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), fmt.Sprint(i)))
	}
	bases := segmentBases(l)
	require.Greater(t, len(bases), 3)
	start, err := l.DeleteRecordsBefore(context.Background(), bases[2])
	require.NoError(t, err)
	require.Equal(t, bases[2], start)
	require.Equal(t, bases[2:], segmentBases(l), "the segments wholly below the new start are deleted")
	// One past a base keeps the segment holding it.
	start, err = l.DeleteRecordsBefore(context.Background(), bases[3]+1)
	require.NoError(t, err)
	require.Equal(t, bases[3]+1, start)
	require.Equal(t, bases[3:], segmentBases(l))
}

// TestDeleteRecordsOnePastLastSnapshotKeepsProducers: DeleteRecordsBefore
// to one past the last producer-state snapshot (which the prune then
// removes, below the new start) writes a snapshot as of the log end first,
// so that a crash does not lose the producers: their retry of a deleted
// batch is still a duplicate. TestDeleteRecordsKeepsProducersAcrossCrash
// deletes to the log end only, far past every snapshot.
func TestDeleteRecordsOnePastLastSnapshotKeepsProducers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cfg := Config{SegmentBytes: 300}
	l := e.open(cfg)
	var batches [][]byte
	// Until a roll has written a snapshot (past the one at 0), and a batch
	// follows the one at its offset.
	lastSnap := func() int64 {
		if len(l.snapshots) == 0 {
			return 0
		}
		return l.snapshots[len(l.snapshots)-1]
	}
	for seq := int32(0); lastSnap() == 0 || l.LogEndOffset() < lastSnap()+2; seq++ {
		require.Less(t, seq, int32(100), "no snapshot written at a roll")
		b := keyedProducerBatch(t, seq, "k")
		batches = append(batches, append([]byte(nil), b...))
		appendOK(t, l, b)
	}
	snap := lastSnap()
	require.Greater(t, l.Segments(), 1)
	_, err := l.DeleteRecordsBefore(context.Background(), snap+1)
	require.NoError(t, err)
	require.NoError(t, l.Flush(ctx))
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	require.NoError(t, l.Discard())
	l = e.open(cfg)
	defer l.Close()
	require.Equal(t, snap+1, l.LogStartOffset())
	// Batch i holds offset i (one record each); batch snap is below the
	// start now.
	res, err := l.Append(ctx, batches[snap], AppendOptions{})
	require.NoError(t, err)
	require.True(t, res.Duplicate, "the retry of the deleted batch at %d was appended again at %d", snap, res.FirstOffset)
	require.Equal(t, snap, res.FirstOffset)
}

// TestTruncateToEndChangesNothing: TruncateTo at or past the log end is a
// no-op, as Kafka's ("has no effect"): no write, no fsync, no snapshot, and
// no truncation for a concurrent fsync or compaction to see (a follower
// asks for it at each reconciliation with its leader).
func TestTruncateToEndChangesNothing(t *testing.T) {
	var ops atomic.Int64
	var counting atomic.Bool
	hook := func(op vfs.Op, name string) {
		if counting.Load() && op != vfs.OpRead && op != vfs.OpStat && op != vfs.OpList {
			ops.Add(1)
			t.Logf("%v %s", op, name)
		}
	}
	h := &hook
	l, _ := hookedLog(t, Config{SegmentBytes: 300}, h)
	for seq := range int32(8) {
		appendOK(t, l, keyedProducerBatch(t, seq, "k"))
	}
	end, cuts := l.LogEndOffset(), l.truncations.Load()
	counting.Store(true)
	for _, off := range []int64{end, end + 1, end + 100} {
		got, err := l.TruncateTo(off)
		require.NoError(t, err)
		require.Equal(t, end, got)
	}
	counting.Store(false)
	require.Zero(t, ops.Load(), "file system operations of a truncation at or past the end")
	require.Equal(t, cuts, l.truncations.Load(), "a truncation counted")
}

// TestTruncateToSegmentBase: a truncation to a segment's base removes that
// segment with those after it, and the segment before it, which ends
// there, becomes the active one again (no empty segment is left at the
// cut); appends go on from the cut.
func TestTruncateToSegmentBase(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 200}
	l := e.open(cfg)
	defer func() { l.Close() }()
	for i := range 12 {
		appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), fmt.Sprint(i)))
	}
	bases := segmentBases(l)
	require.Greater(t, len(bases), 3)
	cut := bases[2]
	got, err := l.TruncateTo(cut)
	require.NoError(t, err)
	require.Equal(t, cut, got)
	require.Equal(t, bases[:2], segmentBases(l))
	res := appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), "again"))
	require.Equal(t, cut, res.FirstOffset)
	require.NoError(t, l.Close())
	l = e.open(cfg)
	require.Equal(t, cut+1, l.LogEndOffset())
	recs := readAll(t, l, cut)
	require.Len(t, recs, 1)
	require.Equal(t, "again", string(recs[0].Value))
}
