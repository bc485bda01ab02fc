package runnel

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// failSyncAndCheckpoint returns an FS over mem whose next fsync of a
// segment's .log fails once armed is set (armed is then cleared), and
// whose creation of the log's sync-failed checkpoint fails while deny is
// set: two faults in a row.
func failSyncAndCheckpoint(mem *vfs.MemFS, armed, deny *atomic.Bool) vfs.FS {
	return vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			return vfs.ErrInjected
		}
		if op == vfs.OpCreate && strings.Contains(name, "sync-failed-checkpoint") && deny.Load() {
			return vfs.ErrInjected
		}
		return nil
	}))
}

// TestDoubleFaultThenBrokerReopenKeepsAckedRecords: a partition's fsync
// fails, and the sync-failed checkpoint cannot be written either (the
// broker's Close fails); the disk works again, and the broker opens again
// in the same process, on a new wrapper of the same file system. It must
// write the tail anew: before, it trusted the bytes that the failed fsync
// left in the page cache only, and a power cut then took the records
// acknowledged after the reopen.
func TestDoubleFaultThenBrokerReopenKeepsAckedRecords(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	var armed, deny atomic.Bool
	cfg := Config{Dir: "/data", FS: failSyncAndCheckpoint(mem, &armed, &deny), MaintenanceInterval: time.Hour}
	b, err := Open(cfg)
	require.NoError(t, err)
	defer func() { b.Close() }()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	a := &acks{t: t}
	send := func(v string) error { return a.send(b, v) }
	require.NoError(t, send("one"))
	armed.Store(true)
	deny.Store(true)
	require.ErrorIs(t, send("two"), log.ErrLogFenced)
	require.ErrorIs(t, b.Close(), vfs.ErrInjected, "the checkpoint could not be written")
	require.False(t, armed.Load())

	deny.Store(false) // the disk works again
	cfg.FS = vfs.WithFaults(mem, vfs.InjectorFunc(func(vfs.Op, string) error { return nil }))
	b, err = Open(cfg)
	require.NoError(t, err)
	require.NoError(t, send("three"))
	require.NoError(t, send("four"))

	afterPowerLoss(t, mem, func(tail vfs.TailMode, got []string) {
		require.Subset(t, got, a.acked, "%s: every acknowledged record is there", tail)
	})
}
