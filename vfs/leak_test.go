package vfs

import (
	"fmt"
	"testing"

	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/stretchr/testify/require"
)

// The memory of files removed from a MemFS is freed once the removal is
// durable (SyncDir), also through renames over them (a compaction's
// swap). (Until then a crash may bring a removed file back, with its
// synced content: in a directory never synced, the last memPendingMax
// directory operations keep the files they bound.)
func TestLeakMemRemovedFiles(t *testing.T) {
	data := make([]byte, 64<<10)
	for _, sync := range []bool{true} {
		t.Run(fmt.Sprint("syncdir=", sync), func(t *testing.T) {
			m := NewMem()
			require.NoError(t, m.MkdirAll("/d", 0o755))
			cycle := func(i int) {
				name := fmt.Sprintf("/d/%020d.log", i)
				f, err := m.Create(name)
				require.NoError(t, err)
				_, err = f.Write(data)
				require.NoError(t, err)
				require.NoError(t, f.Sync())
				require.NoError(t, f.Close())
				// A swap: a new file renamed over it, then removed.
				g, err := m.Create(name + ".cleaned")
				require.NoError(t, err)
				_, err = g.Write(data[:1000])
				require.NoError(t, err)
				require.NoError(t, g.Close())
				require.NoError(t, m.Rename(name+".cleaned", name))
				if sync {
					require.NoError(t, m.SyncDir("/d"))
				}
				require.NoError(t, m.Remove(name))
				if sync {
					require.NoError(t, m.SyncDir("/d"))
				}
			}
			for i := range 5 {
				cycle(i)
			}
			h0 := leakcheck.LiveHeap()
			n := leakcheck.Cycles(t, 2000)
			for i := 5; i < 5+n; i++ {
				cycle(i)
			}
			h1 := leakcheck.LiveHeap()
			t.Logf("%d cycles: live heap %d -> %d (%+.0f B/cycle)", n, h0, h1, float64(h1-h0)/float64(n))
			require.Zero(t, m.Allocated())
			require.LessOrEqual(t, h1, 2*h0+4<<20, "removed files' memory is kept")
		})
	}
}
