package log

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestSyncOfSegmentTruncatedIntoWhileRolled: under SyncNever a truncation
// cut back into a segment rolled without an fsync, which became the active
// segment again but stayed listed as rolled. An fsync then listed it twice
// (rolled and active); appends after that fsync went to it and it rolled
// again, listed once more, and the fsync's bookkeeping dropped every
// listing of it as synced. Those appends were never synced, but the next
// fsync took the durable offset and the recovery point past them: after a
// power loss Open refused the log, torn below its recovery point (found
// by TestConcurrentStress, seed 2).
func TestSyncOfSegmentTruncatedIntoWhileRolled(t *testing.T) {
	mem := vfs.NewMem()
	e := newEnv(t)
	e.fs = mem
	l := e.open(Config{Sync: SyncNever})
	ctx := t.Context()
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a"))
	appendOK(t, l, valueBatch(t, 1_700_000_000_001, "b"))
	require.NoError(t, l.Roll()) // [a b] rolled, not synced
	appendOK(t, l, valueBatch(t, 1_700_000_000_002, "c"))
	_, err := l.TruncateTo(1) // back into the rolled segment: [a]
	require.NoError(t, err)

	testHookSynced = func(hl *Log) {
		testHookSynced = nil
		appendOK(t, hl, valueBatch(t, 1_700_000_000_003, "d")) // after the fsync
		require.NoError(t, hl.Roll())
		appendOK(t, hl, valueBatch(t, 1_700_000_000_004, "e"))
	}
	defer func() { testHookSynced = nil }()
	require.NoError(t, l.Flush(ctx))
	require.NoError(t, l.Flush(ctx)) // must sync d's segment too
	require.NoError(t, l.Maintain(ctx))
	require.Equal(t, int64(3), l.DurableOffset())

	clone := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailDrop})
	require.NoError(t, l.Close())
	l2, err := Open(e.dir, Config{Sync: SyncNever}, Options{FS: clone, Clock: e.clock})
	require.NoError(t, err, "open after the crash")
	defer l2.Close()
	recs := readAll(t, l2, 0)
	require.Len(t, recs, 3, "a, d and e were flushed")
}
