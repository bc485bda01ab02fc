package log

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestSyncDoesNotCoverAppendsAfterATruncation: a group-commit fsync lists
// the log end (10) and the active segment, and while it runs the log is
// truncated to 5, rolled, and appended to again (5, 6, in the new segment,
// which that fsync does not sync). The fsync must not then claim offsets
// up to the end it listed durable: they are new, unsynced batches. It did
// (it took the smaller of the listed end and the new log end, 7): the
// appends' Durability.Wait returned without an fsync (acknowledged under
// SyncAlways), Maintain checkpointed the recovery point at 7, and after a
// power loss the acknowledged offsets 5 and 6 were gone — or, with a torn
// tail below the checkpoint, Open refused the log.
func TestSyncDoesNotCoverAppendsAfterATruncation(t *testing.T) {
	for _, tail := range []vfs.TailMode{vfs.TailDrop, vfs.TailGarbage} {
		t.Run(tail.String(), func(t *testing.T) {
			mem := vfs.NewMem()
			e := newEnv(t)
			e.fs = mem
			cfg := Config{Sync: SyncAlways}
			l := e.open(cfg)
			var first Durability // of offsets 0..4, kept by the truncation
			for i := range 10 {
				_, d, err := l.AppendAsync(context.Background(), valueBatch(t, 1_700_000_000_000+int64(i), "old"), AppendOptions{})
				require.NoError(t, err)
				if i == 4 {
					first = d
				}
			}
			var waits []Durability
			testHookSyncListed = func(hl *Log) {
				testHookSyncListed = nil
				_, err := hl.TruncateTo(5)
				require.NoError(t, err)
				require.NoError(t, hl.Roll())
				for i := range 2 {
					_, d, err := hl.AppendAsync(context.Background(), valueBatch(t, 1_700_000_000_100+int64(i), "new"), AppendOptions{})
					require.NoError(t, err)
					waits = append(waits, d)
				}
			}
			defer func() { testHookSyncListed = nil }()
			require.NoError(t, first.Wait(t.Context()))
			require.Equal(t, int64(7), l.LogEndOffset())
			for _, d := range waits {
				require.NoError(t, d.Wait(t.Context()))
			}
			require.NoError(t, l.Maintain(t.Context()))

			clone := mem.CrashClone(vfs.CrashOptions{Tail: tail})
			l2, err := Open(e.dir, cfg, Options{FS: clone, Clock: e.clock})
			require.NoError(t, err, "open after the crash")
			require.Equal(t, int64(7), l2.LogEndOffset(), "acknowledged offsets 5 and 6 kept")
			recs := readAll(t, l2, 0)
			require.Len(t, recs, 7)
			require.Equal(t, "new", string(recs[6].Value))
			require.NoError(t, l2.Close())
			require.NoError(t, l.Close())
		})
	}
}
