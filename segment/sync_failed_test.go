package segment

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestSyncAfterAFailedSyncFails: a failed fsync of a segment's .log may
// leave its pages marked clean (see vfs.WithFaults, and Linux), so that
// the next fsync of the file succeeds without writing them; two of the
// log's fsyncs of one segment may run one after the other (a group
// commit's, and a roll's seal). Every Sync and Seal after a failed one
// fails too: before, a roll's seal after a group commit's failed fsync
// succeeded, and the log moved its recovery point past bytes a power cut
// then took (Open then failed on the torn batch below it: "offsets from
// 11 were durable up to 13", TestCrashReadersSee seed 10391 under load);
// and a group commit's fsync after a roll's failed one acknowledged
// appends that were not durable (log.TestSyncAfterAFailedSyncIsNotTrusted).
// Fails on the old code.
func TestSyncAfterAFailedSyncFails(t *testing.T) {
	for _, then := range []string{"Sync", "Seal"} {
		t.Run(then, func(t *testing.T) {
			var armed atomic.Bool
			fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
					return vfs.ErrInjected
				}
				return nil
			}))
			require.NoError(t, fsys.MkdirAll("/d", 0o755))
			s := mustCreate(t, fsys, "/d", 0, Config{})
			require.NoError(t, s.Append(simpleBatch(t, 0, 2, 10)))
			require.NoError(t, s.Sync())
			require.NoError(t, s.Append(simpleBatch(t, 2, 2, 10)))
			armed.Store(true)
			require.ErrorIs(t, s.Sync(), vfs.ErrInjected)
			require.False(t, armed.Load())
			if then == "Sync" {
				require.ErrorIs(t, s.Sync(), vfs.ErrInjected, "a Sync after a failed one")
			} else {
				require.ErrorIs(t, s.Seal(true), vfs.ErrInjected, "a Seal after a failed Sync")
			}
		})
	}
}
