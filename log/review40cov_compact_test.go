package log

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestReview40OpenSwapFaults: Open completes a compaction's swap that a
// crash interrupted after its commit point (a .log.swap, here the cleaned
// copy of segment 3 that kept every record): it scans the swap file's
// batches (scanEnd), removes the segments it replaces, syncs the directory
// and renames the swap into place (completeSwap). Each of those steps
// that fails fails Open with its error, and the Open after it, the fault
// gone, finds every record once, in order.
func TestReview40OpenSwapFaults(t *testing.T) {
	cfg := Config{Sync: SyncAlways}
	swap := segment.FileName(3, segment.LogSuffix+swapSuffix)
	for _, c := range []struct {
		name   string
		op     vfs.Op
		suffix string
	}{
		{"scanEnd open", vfs.OpOpen, swap},
		{"scanEnd read", vfs.OpRead, swap},
		{"completeSwap remove", vfs.OpRemove, segment.FileName(3, segment.LogSuffix)},
		{"completeSwap index remove", vfs.OpRemove, segment.FileName(3, segment.IndexSuffix)},
		{"completeSwap syncdir", vfs.OpSyncDir, ""},
		{"completeSwap rename", vfs.OpRename, swap},
	} {
		// The k-th such operation fails, each k until Open does not fail.
		for k := 1; ; k++ {
			require.Less(t, k, 50, c.name)
			e := newEnv(t)
			l := e.open(cfg)
			for i := range 12 {
				appendOK(t, l, valueBatch(t, 1_700_000_000_000, fmt.Sprint(i)))
				if i%3 == 2 {
					require.NoError(t, l.Roll()) // segments at 0, 3, 6, 9
				}
			}
			require.NoError(t, l.Close())
			writeMemFile(t, e.fs, filepath.Join(e.dir, swap),
				readAllFile(t, e.fs, filepath.Join(e.dir, segment.FileName(3, segment.LogSuffix))))

			seen, armed := 0, true
			faulty := vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if armed && op == c.op && strings.HasSuffix(name, c.suffix) {
					if seen++; seen == k {
						return vfs.ErrInjected
					}
				}
				return nil
			}))
			l, err := Open(e.dir, cfg, Options{FS: faulty, Clock: e.clock})
			armed = false
			if err == nil {
				require.NoError(t, l.Close())
				break
			}
			require.ErrorIs(t, err, vfs.ErrInjected, "%s #%d", c.name, k)

			l = e.open(cfg)
			require.EqualValues(t, 12, l.LogEndOffset(), "%s #%d", c.name, k)
			recs := readAll(t, l, 0)
			require.Len(t, recs, 12, "%s #%d", c.name, k)
			for i, r := range recs {
				require.EqualValues(t, i, r.Offset)
				require.Equal(t, fmt.Sprint(i), string(r.Value))
			}
			names, err := e.fs.List(e.dir)
			require.NoError(t, err)
			for _, n := range names {
				require.NotContains(t, n, swapSuffix, "%s #%d", c.name, k)
			}
			require.NoError(t, l.Close())
		}
	}
}
