package log

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestRecoveryPointWriteFailureThenTruncation: under SyncNever a Flush
// syncs the segments rolled since the last and moves the recovery point
// to the active segment's base; the checkpoint's rename is done but the
// directory's sync fails (logged, not returned: the log goes on). The
// checkpoint on disk is then at that base. A truncation below it must
// lower it, as it lowers one it wrote, or new appends past the cut, torn
// by a power loss, lie below a recovery point that says they were synced,
// and Open refuses the log. It did not: the log kept the old recovery
// point in memory when the write failed, and the truncation, seeing it
// below the cut, wrote nothing (its own directory sync made the
// checkpoint durable).
func TestRecoveryPointWriteFailureThenTruncation(t *testing.T) {
	mem := vfs.NewMem()
	var failSyncDir atomic.Bool
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSyncDir && failSyncDir.CompareAndSwap(true, false) {
			return vfs.ErrInjected
		}
		return nil
	}))
	e := newEnv(t)
	e.fs = fsys
	cfg := Config{Sync: SyncNever, SegmentBytes: 400, RetentionTime: -1}
	l := e.open(cfg)
	for i := range 12 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, fmt.Sprint(i)))
	}
	require.Greater(t, l.Segments(), 1)
	segs := *l.segs.Load()
	activeBase := segs[len(segs)-1].Base()

	failSyncDir.Store(true) // the recovery point's write, after the fsyncs
	require.NoError(t, l.Flush(t.Context()))
	require.False(t, failSyncDir.Load(), "the write's SyncDir failed")
	require.Equal(t, activeBase, recoveryPointOnDisk(t, mem, e.dir))

	cut := activeBase - 2
	_, err := l.TruncateTo(cut)
	require.NoError(t, err)
	require.LessOrEqual(t, recoveryPointOnDisk(t, mem, e.dir), l.LogEndOffset())
	for i := range 5 {
		_, _, err := l.AppendAsync(context.Background(), valueBatch(t, 1_700_000_000_100, fmt.Sprint("new", i)), AppendOptions{})
		require.NoError(t, err)
	}
	clone := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailGarbage})
	l2, err := Open(e.dir, cfg, Options{FS: clone, Clock: e.clock})
	require.NoError(t, err, "open after the crash")
	require.GreaterOrEqual(t, l2.LogEndOffset(), cut)
	require.NoError(t, l2.Close())
	require.NoError(t, l.Close())
}
