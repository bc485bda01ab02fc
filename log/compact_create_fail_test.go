package log

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestCompactionCreateFailureLeavesNoCleanedFile: a compaction pass
// creates its cleaned copy's .log.cleaned, then its indexes. A creation
// of an index that fails (a full disk's inodes, an I/O error) failed the
// pass, and left the .log.cleaned it had created: every other failure of
// the pass removes the copy's files, this one did not, and the file
// stayed until the next Open, or a later pass of a group at the same
// base, replaced it. The pass now removes it.
func TestCompactionCreateFailureLeavesNoCleanedFile(t *testing.T) {
	for _, failing := range []string{segment.IndexSuffix + cleanedSuffix, segment.TimeIndexSuffix + cleanedSuffix} {
		t.Run(failing, func(t *testing.T) {
			mem := vfs.NewMem()
			var armed atomic.Bool
			fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if armed.Load() && op == vfs.OpCreate && strings.HasSuffix(name, failing) {
					return vfs.ErrInjected
				}
				return nil
			}))
			e := &env{t: t, fs: fsys, dir: "/data/topic-0", clock: newClock()}
			cfg := Config{SegmentBytes: 1000, CleanupPolicy: Compact}
			l := e.open(cfg)
			for _, v := range []string{"a", "b", "c", "d"} {
				appendOK(t, l, keyedBatch(t, "k"+v))
				appendOK(t, l, keyedBatch(t, "k"+v))
				require.NoError(t, l.Roll())
			}

			armed.Store(true)
			_, err := l.Compact(context.Background())
			require.ErrorIs(t, err, vfs.ErrInjected)
			armed.Store(false)
			names, err := mem.List(e.dir)
			require.NoError(t, err)
			for _, name := range names {
				require.NotContains(t, name, cleanedSuffix, "the failed pass left its cleaned copy's files: %q", names)
			}

			// The log is not fenced: the next pass compacts.
			_, err = l.Compact(context.Background())
			require.NoError(t, err)
			require.NoError(t, l.Close())
		})
	}
}
