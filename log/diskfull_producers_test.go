package log

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestFullDiskDeleteRecordsWithProducers: DeleteRecordsBefore into the
// active segment of a log that idempotent producers write (a producer-state
// snapshot as of the log end is needed first: none is at or past the new
// start) on a disk where nothing can be written removes the whole segments
// below the offset, which the snapshot at the active segment's base covers,
// fencing nothing; it fails unfenced, and once room is freed it moves the
// start on, the producer's retries still answered as duplicates, also after
// a crash. The merged code wrote the snapshot first: on a full disk it
// failed, fenced the log and freed nothing.
func TestFullDiskDeleteRecordsWithProducers(t *testing.T) {
	e := newEnv(t)
	var full atomic.Bool
	mem := e.fs.(*vfs.MemFS)
	e.fs = vfs.WithFaults(mem, fullDisk(&full))
	cfg := Config{SegmentBytes: 400}
	l := e.open(cfg)
	defer func() { l.Close() }()
	var batches [][]byte
	for i := range 30 {
		b := keyedProducerBatch(t, int32(i), "k")
		batches = append(batches, slices.Clone(b)) // Append stamps b
		appendOK(t, l, b)
	}
	segs := l.Segments()
	require.Greater(t, segs, 3)
	end := l.LogEndOffset()
	full.Store(true)
	_, err := l.DeleteRecordsBefore(context.Background(), end)
	require.ErrorIs(t, err, vfs.ErrInjected, "nothing can be written")
	require.NotErrorIs(t, err, ErrLogFenced, "a full disk fences nothing")
	require.Equal(t, 1, l.Segments(), "the whole segments below the offset removed all the same")
	names, lerr := e.fs.List(e.dir)
	require.NoError(t, lerr)
	for _, n := range names {
		require.False(t, strings.HasSuffix(n, tmpSuffix), "temporary file %s left", n)
	}
	// What a crash now finds: the log start at the active segment's base,
	// the producer's batches remembered.
	crashed := mem.CrashClone(vfs.CrashOptions{})
	full.Store(false)
	got, err := l.DeleteRecordsBefore(context.Background(), end)
	require.NoError(t, err, "the log is not fenced")
	require.Equal(t, end, got)
	requireDuplicate(t, l, slices.Clone(batches[29]), 29)
	// A crash now: the snapshot as of the new start was written (the
	// failed write of the first call listed it, and unlisted it).
	after := mem.CrashClone(vfs.CrashOptions{})
	require.NoError(t, l.Close())
	l = e.open(cfg)
	require.Equal(t, end, l.LogStartOffset())
	requireDuplicate(t, l, slices.Clone(batches[29]), 29)
	require.NoError(t, l.Close())

	require.NoError(t, l.Close())

	for _, c := range []struct {
		name  string
		fs    vfs.FS
		start int64 // at least
	}{{"crash after the failed call", crashed, 1}, {"crash after the call that moved the start", after, end}} {
		e.fs = c.fs
		l = e.open(cfg)
		require.Equal(t, end, l.LogEndOffset(), c.name)
		require.GreaterOrEqual(t, l.LogStartOffset(), c.start, c.name)
		requireDuplicate(t, l, slices.Clone(batches[29]), 29)
		require.NoError(t, l.Close())
	}
}

// TestSnapshotNotWrittenIsNotListed: under SyncNever a Flush moves the
// recovery point and writes a producer-state snapshot as of the log end;
// one that fails is logged, the log going on. A write that failed before
// its rename placed no file, and must leave no offset listed: the merged
// code listed it all the same, and a DeleteRecordsBefore to that offset
// then took it for the snapshot the new start needs, wrote none, and
// pruned the older ones, so that after a crash the producer's state was
// gone and its retry appended a second time.
func TestSnapshotNotWrittenIsNotListed(t *testing.T) {
	e := newEnv(t)
	mem := e.fs.(*vfs.MemFS)
	var failSnapshot atomic.Bool
	e.fs = vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if failSnapshot.Load() && op == vfs.OpCreate && strings.HasSuffix(name, snapshotSuffix+tmpSuffix) {
			return fmt.Errorf("%w: no space left", vfs.ErrInjected)
		}
		return nil
	}))
	cfg := Config{SegmentBytes: 400, Sync: SyncNever}
	l := e.open(cfg)
	defer func() { l.Close() }()
	var last []byte
	for i := range 30 {
		b := keyedProducerBatch(t, int32(i), "k")
		last = slices.Clone(b) // Append stamps b
		appendOK(t, l, b)
	}
	require.Greater(t, l.Segments(), 3)
	end := l.LogEndOffset()
	failSnapshot.Store(true)
	require.NoError(t, l.Flush(context.Background()), "a snapshot not written is logged, not returned")
	failSnapshot.Store(false)
	got, err := l.DeleteRecordsBefore(context.Background(), end)
	require.NoError(t, err)
	require.Equal(t, end, got)

	e.fs = mem.CrashClone(vfs.CrashOptions{})
	require.NoError(t, l.Close())
	l = e.open(cfg)
	require.Equal(t, end, l.LogStartOffset())
	requireDuplicate(t, l, last, 29)
}

// TestFullDiskStartMovedDropsEpochs: retention on a disk where no
// checkpoint can be written removes the segments below the new start and
// fails unfenced; the start is then the first segment's base, as an Open
// would find it, and so are the leader epochs: none ends below the start
// (Open's trimEpochs drops them). The merged code moved the start without
// truncating the epochs from it (setStartLocked's step after the
// checkpoint), so that OffsetForLeaderEpoch answered an epoch whose
// records were all deleted with an end offset below the start, until the
// start moved again.
func TestFullDiskStartMovedDropsEpochs(t *testing.T) {
	e := newEnv(t)
	var full atomic.Bool
	e.fs = vfs.WithFaults(e.fs, fullDisk(&full))
	cfg := Config{SegmentBytes: 400, RetentionBytes: 1000}
	l := e.open(cfg)
	defer func() { l.Close() }()
	for i := range 30 {
		_, err := l.Append(context.Background(), valueBatch(t, e.clock.Now().UnixMilli(), fmt.Sprint(i)), AppendOptions{LeaderEpoch: int32(i / 3)})
		require.NoError(t, err)
	}
	full.Store(true)
	_, err := l.ApplyRetention(context.Background())
	require.ErrorIs(t, err, vfs.ErrInjected, "the checkpoint is not written")
	require.NotErrorIs(t, err, ErrLogFenced)
	start := l.LogStartOffset()
	require.Positive(t, start)
	epochs := l.LeaderEpochs()
	require.Equal(t, start, epochs[0].StartOffset, "the first epoch starts at the log start: %v", epochs)
	got := slices.Clone(epochs)

	full.Store(false)
	require.NoError(t, l.Close())
	l = e.open(cfg)
	require.Equal(t, start, l.LogStartOffset())
	require.Equal(t, got, l.LeaderEpochs(), "as an Open finds them")
}

// TestFullDiskDeleteRecordsCrashes cuts the power at each file-system
// operation of a DeleteRecordsBefore to the log end on a full disk, of a
// log an idempotent producer writes (the segments go first, the call
// fails unfenced), then of the one that moves the start once room is
// freed, with and without reordered directory operations: whatever the
// crash leaves, the log ends where it did, starts at most at the offset,
// reads every record from its start, and answers the producer's retry of
// its last batch as a duplicate (TestFullDiskDeleteRecordsWithProducers
// crashes after the second call).
func TestFullDiskDeleteRecordsCrashes(t *testing.T) {
	for _, reorder := range []bool{false, true} {
		k := 0
		for fullDiskDeleteRecordsCrash(t, k, reorder) {
			k++
		}
		t.Logf("reorder %v: %d operations", reorder, k)
		require.Greater(t, k, 10)
	}
}

// fullDiskDeleteRecordsCrash runs TestFullDiskDeleteRecordsCrashes with the
// power cut at the k-th file-system operation of the two calls; it reports
// whether the calls made that many.
func fullDiskDeleteRecordsCrash(t *testing.T, k int, reorder bool) bool {
	t.Helper()
	e := newEnv(t)
	mem := e.fs.(*vfs.MemFS)
	var full, armed atomic.Bool
	var ops atomic.Int64
	var crashed *vfs.MemFS
	inner := fullDisk(&full)
	e.fs = vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() {
			if ops.Add(1) == int64(k+1) && crashed == nil {
				crashed = mem.CrashClone(vfs.CrashOptions{Reorder: reorder, Rand: rand.New(rand.NewPCG(uint64(k), 1))})
			}
		}
		return inner.MaybeError(op, name)
	}))
	cfg := Config{SegmentBytes: 400}
	l := e.open(cfg)
	var last []byte
	for i := range 30 {
		b := keyedProducerBatch(t, int32(i), "k")
		last = slices.Clone(b)
		appendOK(t, l, b)
	}
	end := l.LogEndOffset()
	full.Store(true)
	armed.Store(true)
	_, err := l.DeleteRecordsBefore(context.Background(), end)
	require.NotErrorIs(t, err, ErrLogFenced)
	full.Store(false)
	got, err := l.DeleteRecordsBefore(context.Background(), end)
	require.NoError(t, err)
	require.Equal(t, end, got)
	armed.Store(false)
	require.NoError(t, l.Close())
	if crashed == nil {
		return false
	}
	e.fs = crashed
	l = e.open(cfg)
	defer l.Close()
	what := fmt.Sprintf("power cut at operation %d (reorder %v)", k, reorder)
	require.Equal(t, end, l.LogEndOffset(), what)
	require.LessOrEqual(t, l.LogStartOffset(), end, what)
	recs := readAll(t, l, l.LogStartOffset())
	require.Len(t, recs, int(end-l.LogStartOffset()), what)
	for i, r := range recs {
		require.Equal(t, l.LogStartOffset()+int64(i), r.Offset, what)
	}
	res, err := l.Append(context.Background(), last, AppendOptions{})
	require.NoError(t, err, what)
	require.True(t, res.Duplicate, "%s: the retry of the last batch appended again", what)
	return true
}
