package runnel_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
)

// An idle broker's maintenance touches no file: once a run has
// checkpointed what the appends before it left (and flushed a SyncNever
// or SyncPeriodic log's tail), the runs after it, with nothing appended,
// make no file system operation at all — on a laptop, no disk wake-up
// every MaintenanceInterval, whatever the partition count, the cleanup
// policy or the sync policy.
func TestIdleMaintenanceDoesNoIO(t *testing.T) {
	ctx := context.Background()
	var ops atomic.Int64
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(vfs.Op, string) error {
		ops.Add(1)
		return nil
	}))
	// The broker's clock moves only when the test says: SyncPeriodic's
	// FlushInterval (1 ms) has passed at the first run, and not again
	// after. On the system clock, the first two runs could both fall in
	// the millisecond of the appends, leaving the flush to an idle run.
	clock := &stepClock{}
	clock.ns.Store(time.Now().UnixNano())
	b, err := runnel.Open(runnel.Config{FS: fs, Clock: clock})
	require.NoError(t, err)
	defer b.Close()
	for i, c := range []log.Config{
		{},
		{Sync: log.SyncNever},
		{Sync: log.SyncPeriodic, FlushMessages: 10, FlushInterval: time.Millisecond},
		{CleanupPolicy: log.Compact, MinCleanableDirtyRatio: -1},
		{CleanupPolicy: log.Compact | log.Delete, RetentionTime: time.Hour, RetentionBytes: 1 << 20},
	} {
		name := fmt.Sprint("t", i)
		require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 4, Config: c}))
		for p := range int32(4) {
			leakProduce(t, b, name, p, "k", []byte("v"))
		}
	}
	clock.ns.Add(int64(time.Second))
	before := ops.Load()
	require.NoError(t, b.Maintain(ctx))
	require.Positive(t, ops.Load()-before, "the first run checkpoints the appends: the count counts")
	require.NoError(t, b.Maintain(ctx)) // a compaction's own checkpoint, say
	for range 3 {
		before := ops.Load()
		require.NoError(t, b.Maintain(ctx))
		require.Zero(t, ops.Load()-before, "file system operations in an idle maintenance run")
	}
}
