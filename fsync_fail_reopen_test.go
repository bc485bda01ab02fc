package runnel

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// failNextLogSync returns an FS over mem whose next fsync of a segment's
// .log fails (vfs.ErrInjected) once armed is set; armed is then cleared.
func failNextLogSync(mem *vfs.MemFS) (fsys vfs.FS, armed *atomic.Bool) {
	armed = new(atomic.Bool)
	return failSyncAndCheckpoint(mem, armed, new(atomic.Bool)), armed
}

// acks produces one-record batches to partition 0 of topic "t", with
// acks=all, and keeps the values acknowledged.
type acks struct {
	t     *testing.T
	acked []string
}

// send produces v through b and returns Produce's error.
func (a *acks) send(b *Broker, v string) error {
	_, err := b.Produce(context.Background(), &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(a.t, v)})
	if err == nil {
		a.acked = append(a.acked, v)
	}
	return err
}

// fetchT returns the values of partition 0 of topic "t" on b (up to 1 MiB).
func fetchT(t *testing.T, b *Broker) []string {
	t.Helper()
	resp, err := b.Fetch(context.Background(), &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: 1 << 20}}})
	require.NoError(t, err)
	require.NoError(t, resp.Partitions[0].Err)
	return values(t, resp.Partitions[0].Records)
}

// afterPowerLoss opens a broker in /data on mem after a power loss, its
// files' unsynced tails dropped and then zeroed, and calls check with the
// values of partition 0 of topic "t" there.
func afterPowerLoss(t *testing.T, mem *vfs.MemFS, check func(tail vfs.TailMode, got []string)) {
	t.Helper()
	for _, tail := range []vfs.TailMode{vfs.TailDrop, vfs.TailZeros} {
		b, err := Open(Config{Dir: "/data", FS: mem.CrashClone(vfs.CrashOptions{Tail: tail})})
		require.NoError(t, err, "%s: the broker opens after a power loss", tail)
		check(tail, fetchT(t, b))
		require.NoError(t, b.Close())
	}
}

// TestFailedFsyncThenRestartKeepsAckedRecords: after a segment's fsync
// failed, a broker closed and opened again on the same file system (no
// machine crash) must not take the bytes that fsync lost for durable. It
// did: the log's tail after the failure, read back from what Linux keeps
// in its page cache marked clean (vfs.WithFaults models it), was trusted,
// the records appended after it were acknowledged after fsyncs that made
// nothing durable, and a power loss then took every record from the
// failed one on, acknowledged ones included. Found by
// TestAdminModelProperty's fault model.
func TestFailedFsyncThenRestartKeepsAckedRecords(t *testing.T) {
	for _, sync := range []log.SyncPolicy{log.SyncAlways, log.SyncNever} {
		t.Run(sync.String(), func(t *testing.T) {
			ctx := context.Background()
			mem := vfs.NewMem()
			fsys, armed := failNextLogSync(mem)
			cfg := Config{Dir: "/data", FS: fsys, MaintenanceInterval: time.Hour}
			b, err := Open(cfg)
			require.NoError(t, err)
			defer func() { b.Close() }()
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{Sync: sync}}))
			a := &acks{t: t}
			send := func(v string) error { return a.send(b, v) }
			require.NoError(t, send("one"))
			if sync == log.SyncAlways {
				armed.Store(true)
				require.ErrorIs(t, send("two"), log.ErrLogFenced)
			}
			seen := fetchT(t, b) // what a consumer may have read before the restart
			if sync == log.SyncAlways {
				require.NoError(t, b.Close())
			} else {
				// Acknowledged after the write; the fsync of the close fails.
				require.NoError(t, send("two"))
				seen = fetchT(t, b)
				armed.Store(true)
				require.ErrorIs(t, b.Close(), vfs.ErrInjected)
			}
			require.False(t, armed.Load(), "the fault was not reached")
			b, err = Open(cfg)
			require.NoError(t, err)
			got := fetchT(t, b)
			require.Equal(t, seen, got[:min(len(seen), len(got))], "what consumers saw is still there, at the same offsets")
			require.NoError(t, send("four"))
			require.NoError(t, send("five"))
			if sync == log.SyncNever {
				require.NoError(t, b.Close()) // its flush makes them durable
			}

			afterPowerLoss(t, mem, func(tail vfs.TailMode, got []string) {
				require.Subset(t, got, a.acked, "%s: every acknowledged record is there", tail)
				require.Equal(t, []string{"four", "five"}, got[len(got)-2:], "%s: nothing but the unacknowledged is missing", tail)
			})
		})
	}
}
