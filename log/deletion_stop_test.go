package log

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestDeleteSegmentsStopsAtAFailedRemoval: a deletion of segments
// (DeleteRecords, retention) whose removal of one segment fails stops
// there, as Kafka's does, leaving that segment and the later ones it was
// to delete on disk: it went on removing them, leaving a gap below the
// log start offset between the segment whose removal failed and the
// segments that stay.
func TestDeleteSegmentsStopsAtAFailedRemoval(t *testing.T) {
	cfg := Config{Sync: SyncAlways, SegmentBytes: 100}
	e, mem := deletionStoppedAt1(t, cfg)

	names, err := mem.List(e.dir)
	require.NoError(t, err)
	var bases []int64
	for _, name := range names {
		if base, suffix, ok := segment.ParseFileName(name); ok && suffix == segment.LogSuffix {
			bases = append(bases, base)
		}
	}
	require.Equal(t, []int64{1, 2, 3, 4}, bases, "segment 0 removed, the failed one and the next kept: no gap")

	l := e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 3, l.LogStartOffset())
	require.EqualValues(t, 5, l.LogEndOffset())
	recs := readAll(t, l, 3)
	require.Len(t, recs, 2)
	require.Equal(t, "d", string(recs[0].Value))
	require.Equal(t, "e", string(recs[1].Value))
}

// deletionStoppedAt1 makes a log of cfg (SegmentBytes of one batch) with
// segments at bases 0 to 4, one record each, at timestamps ts to ts+4,
// whose DeleteRecordsBefore(3) fails to remove segment 1, and discards
// it: e's file system is the faulty one, mem the one under it.
func deletionStoppedAt1(t *testing.T, cfg Config) (*env, *vfs.MemFS) {
	t.Helper()
	const ts = 1_700_000_000_000
	mem := vfs.NewMem()
	var armed atomic.Bool
	failing := segment.FileName(1, segment.LogSuffix)
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpRemove && strings.HasSuffix(name, failing) {
			return vfs.ErrInjected
		}
		return nil
	}))
	e := &env{t: t, fs: fsys, dir: "/data/topic-0", clock: newClock()}
	l := e.open(cfg)
	for i, v := range []string{"a", "b", "c", "d", "e"} {
		appendOK(t, l, valueBatch(t, ts+int64(i), v)) // a segment each: bases 0 to 4
	}
	require.Equal(t, 5, l.Segments())

	armed.Store(true)
	_, err := l.DeleteRecordsBefore(context.Background(), 3)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.ErrorIs(t, err, ErrLogFenced)
	armed.Store(false)
	require.NoError(t, l.Discard())
	return e, mem
}

// TestDeleteRecordsCheckpointInPlace: a DeleteRecordsBefore whose log
// start checkpoint is renamed into place but whose directory's fsync
// fails fences the log and starts it at the new offset, as the next Open
// does: it left the log start where it was, so that reads served the
// records below the new start until a reopen took them away. Found by
// runnel's TestAdminModelProperty (seed 300005).
func TestDeleteRecordsCheckpointInPlace(t *testing.T) {
	cfg := Config{Sync: SyncAlways, SegmentBytes: 100}
	const ts = 1_700_000_000_000
	mem := vfs.NewMem()
	var armed atomic.Bool
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpSyncDir {
			return vfs.ErrInjected
		}
		return nil
	}))
	e := &env{t: t, fs: fsys, dir: "/data/topic-0", clock: newClock()}
	l := e.open(cfg)
	for i, v := range []string{"a", "b", "c", "d", "e"} {
		appendOK(t, l, valueBatch(t, ts+int64(i), v))
	}
	armed.Store(true)
	_, err := l.DeleteRecordsBefore(context.Background(), 3)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.ErrorIs(t, err, ErrLogFenced)
	armed.Store(false)
	require.EqualValues(t, 3, l.LogStartOffset(), "the checkpoint in place says 3")
	require.Equal(t, []string{"d", "e"}, recordValues(readAll(t, l, 3)))
	require.NoError(t, l.Discard())

	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 3, l.LogStartOffset())
	require.Equal(t, []string{"d", "e"}, recordValues(readAll(t, l, 3)))
}

func recordValues(recs []*record.Record) []string {
	var vs []string
	for _, r := range recs {
		vs = append(vs, string(r.Value))
	}
	return vs
}
