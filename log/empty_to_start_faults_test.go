package log

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// pastTheEndDir leaves in a memory FS a SyncNever log, of segments of 200
// bytes (so that rolls snapshot the producers), whose end a crash left
// below its log start offset of 7: producer 1 wrote offsets 0-4 in leader
// epoch 1 (synced), producer 2 offsets 5-9 in epoch 2 (lost), and a
// snapshot of the producers at 7 and one at 9 were synced.
func pastTheEndDir(t *testing.T, marker bool) (*vfs.MemFS, string, Config) {
	t.Helper()
	e := newEnv(t)
	cfg := Config{Sync: SyncNever, SegmentBytes: 200}
	l := e.open(cfg)
	ctx := context.Background()
	for i := range 10 {
		_, err := l.Append(ctx, idemBatch(t, int64(1+i/5), 0, int32(i%5), 1), AppendOptions{LeaderEpoch: int32(1 + i/5)})
		require.NoError(t, err)
		if i == 4 {
			require.NoError(t, l.Flush(ctx))
		}
	}
	start, err := l.DeleteRecordsBefore(context.Background(), 7)
	require.NoError(t, err)
	require.EqualValues(t, 7, start)
	// Snapshots at 7 and 9, synced, as rolls at those bases would have
	// written them before the crash lost the records below.
	l.mu.Lock()
	for _, off := range []int64{7, 9} {
		rows := append([][]int64{{-1, off, 0, 0, 0, 0}}, l.producers.rows()...)
		require.NoError(t, writeCheckpoint(l.fs, l.dir, snapshotName(off), checkpointV1, rows))
	}
	l.mu.Unlock()
	require.NoError(t, e.fs.SyncDir(e.dir))
	crashed := e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	require.NoError(t, l.Close())
	if marker {
		forgeCleanMarker(t, crashed, e.dir)
	}
	return crashed, e.dir, cfg
}

// checkEmptiedAtStart checks the log l that Open made of pastTheEndDir's,
// emptied at its start or not yet: never a record, an epoch, or a
// producer's state of below the log start offset, which stays at 7; a
// producer's retry of a batch acknowledged before the crash is appended.
func checkEmptiedAtStart(t *testing.T, l *Log, what string) {
	t.Helper()
	require.EqualValues(t, 7, l.LogStartOffset(), "%s: the log start offset", what)
	require.EqualValues(t, 7, l.LogEndOffset(), "%s: the log end offset", what)
	require.Empty(t, readAll(t, l, 7), "%s", what)
	require.False(t, l.Recovery().Clean, "%s: %+v", what, l.Recovery())
	names, err := l.fs.List(l.dir)
	require.NoError(t, err)
	require.NotContains(t, names, cleanShutdownFile, "%s", what)
	require.Empty(t, l.LeaderEpochs(), "%s: the epochs of the removed records", what)
	res, err := l.Append(context.Background(), idemBatch(t, 1, 0, 4, 1), AppendOptions{})
	require.NoError(t, err, "%s", what)
	require.False(t, res.Duplicate, "%s: producer 1's batch at 4 went with the segments", what)
	require.EqualValues(t, 7, res.FirstOffset, "%s", what)
}

// TestEmptyToStartFaults: an Open that empties a log whose end a crash left
// below its log start offset (see Open), failing at each of its
// file-system operations in turn, and then the power cut (with the
// directory operations it had not synced lost, or persisted in part in
// their order, as far as seeds 1-8 draw it): the next Open reaches the
// state that one that did not fail reaches; so with a stale clean-shutdown
// marker.
func TestEmptyToStartFaults(t *testing.T) {
	for _, marker := range []bool{false, true} {
		t.Run(fmt.Sprintf("marker=%v", marker), func(t *testing.T) { testEmptyToStartFaults(t, marker) })
	}
}

func testEmptyToStartFaults(t *testing.T, marker bool) {
	base, dir, cfg := pastTheEndDir(t, marker)
	count := vfs.Count()
	l, err := Open(dir, cfg, Options{FS: vfs.WithFaults(base.CrashClone(vfs.CrashOptions{}), count)})
	require.NoError(t, err)
	n := count.N() // Open's operations
	checkEmptiedAtStart(t, l, "no fault")
	require.NoError(t, l.Close())
	require.Greater(t, n, 10)
	for k := 1; k <= n; k++ {
		for seed := range 9 { // 0: no reordering; 1-8: the order persisted in part
			t.Run(fmt.Sprintf("fault=%d,seed=%d", k, seed), func(t *testing.T) {
				mem := base.CrashClone(vfs.CrashOptions{})
				l, err := Open(dir, cfg, Options{FS: vfs.WithFaults(mem, vfs.FailFrom(k))})
				if err == nil {
					l.Close() // fails: the faults go on
				}
				crashed := mem.CrashClone(vfs.CrashOptions{Reorder: seed > 0, Rand: rand.New(rand.NewPCG(uint64(seed), 1))})
				l, err = Open(dir, cfg, Options{FS: crashed})
				require.NoError(t, err)
				checkEmptiedAtStart(t, l, "after the crash")
				require.NoError(t, l.Close())
			})
		}
	}
}

// TestLogStartPastTheEndThenMaintenance: a compacted log that Open emptied
// at its log start (see TestLogStartPastTheRecoveredEnd), with a cleaner
// checkpoint below it: compaction, time look-ups, DeleteRecordsBefore,
// retention and a truncation afterwards see only the records appended
// since, from the log start on, and so does the Open after a crash.
func TestLogStartPastTheEndThenMaintenance(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever, SegmentBytes: 200, CleanupPolicy: Compact | Delete}
	ctx := context.Background()
	l := crashPastTheEnd(t, e, cfg, func(l *Log, i int) {
		appendOK(t, l, keyedBatch(t, fmt.Sprint("k", i%2)))
		if i == 4 {
			require.NoError(t, l.Flush(ctx))
			res, err := l.Compact(ctx)
			require.NoError(t, err)
			require.Positive(t, res.CleanedTo)
		}
	})
	require.EqualValues(t, 7, l.LogStartOffset())
	require.Less(t, l.cleaned, int64(7), "the cleaner checkpoint of the removed segments")
	for i := range 12 {
		res := appendOK(t, l, keyedBatch(t, fmt.Sprint("n", i%3)))
		require.EqualValues(t, 7+i, res.FirstOffset)
	}
	require.NoError(t, l.Flush(ctx))
	_, err := l.Compact(ctx)
	require.NoError(t, err)
	latest := func(l *Log) map[string]int64 {
		got := map[string]int64{}
		for _, r := range readAll(t, l, l.LogStartOffset()) {
			require.GreaterOrEqual(t, r.Offset, l.LogStartOffset())
			require.NotContains(t, string(r.Key), "k", "a record of the removed segments at %d", r.Offset)
			got[string(r.Key)] = r.Offset
		}
		return got
	}
	want := map[string]int64{"n0": 16, "n1": 17, "n2": 18}
	require.Equal(t, want, latest(l))
	off, ok, err := l.OffsetForTime(0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, readAll(t, l, 7)[0].Offset, off, "the first record compaction kept")
	start, err := l.DeleteRecordsBefore(context.Background(), 9)
	require.NoError(t, err)
	require.EqualValues(t, 9, start)
	_, err = l.ApplyRetention(context.Background())
	require.NoError(t, err)
	_, err = l.TruncateTo(8)
	require.ErrorIs(t, err, ErrOffsetOutOfRange, "below the log start")
	next, err := l.TruncateTo(18)
	require.NoError(t, err)
	require.EqualValues(t, 18, next)
	want = map[string]int64{"n0": 16, "n1": 17, "n2": 15} // n2 at 18 cut
	require.Equal(t, want, latest(l))
	require.NoError(t, l.Flush(ctx))

	l = e.crashReopen(l, cfg)
	defer l.Close()
	require.EqualValues(t, 9, l.LogStartOffset())
	require.EqualValues(t, 18, l.LogEndOffset())
	require.Equal(t, want, latest(l))
}
