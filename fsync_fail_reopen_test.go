package runnel

import (
	"context"
	"strings"
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
	return vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			return vfs.ErrInjected
		}
		return nil
	})), armed
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
			var acked []string
			send := func(v string) error {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, v)})
				if err == nil {
					acked = append(acked, v)
				}
				return err
			}
			fetch := func(b *Broker) []string {
				resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: 1 << 20}}})
				require.NoError(t, err)
				require.NoError(t, resp.Partitions[0].Err)
				return values(t, resp.Partitions[0].Records)
			}
			require.NoError(t, send("one"))
			if sync == log.SyncAlways {
				armed.Store(true)
				require.ErrorIs(t, send("two"), log.ErrLogFenced)
			}
			seen := fetch(b) // what a consumer may have read before the restart
			if sync == log.SyncAlways {
				require.NoError(t, b.Close())
			} else {
				// Acknowledged after the write; the fsync of the close fails.
				require.NoError(t, send("two"))
				seen = fetch(b)
				armed.Store(true)
				require.ErrorIs(t, b.Close(), vfs.ErrInjected)
			}
			require.False(t, armed.Load(), "the fault was not reached")
			b, err = Open(cfg)
			require.NoError(t, err)
			got := fetch(b)
			require.Equal(t, seen, got[:min(len(seen), len(got))], "what consumers saw is still there, at the same offsets")
			require.NoError(t, send("four"))
			require.NoError(t, send("five"))
			if sync == log.SyncNever {
				require.NoError(t, b.Close()) // its flush makes them durable
			}

			for _, tail := range []vfs.TailMode{vfs.TailDrop, vfs.TailZeros} {
				b2, err := Open(Config{Dir: "/data", FS: mem.CrashClone(vfs.CrashOptions{Tail: tail})})
				require.NoError(t, err, "%s: the broker opens after a power loss", tail)
				got := fetch(b2)
				require.Subset(t, got, acked, "%s: every acknowledged record is there", tail)
				require.Equal(t, []string{"four", "five"}, got[len(got)-2:], "%s: nothing but the unacknowledged is missing", tail)
				require.NoError(t, b2.Close())
			}
		})
	}
}
