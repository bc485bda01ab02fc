package vfs

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// leakCycles is the number of cycles of a leak test: n (a quarter under
// -short), or RUNNEL_LEAK_CYCLES if set.
func leakCycles(t testing.TB, n int) int {
	if v := os.Getenv("RUNNEL_LEAK_CYCLES"); v != "" {
		c, err := strconv.Atoi(v)
		require.NoError(t, err, "RUNNEL_LEAK_CYCLES")
		return c
	}
	if testing.Short() {
		return n / 4
	}
	return n
}

// liveHeap is the heap that is live after two collections.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

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
			h0 := liveHeap()
			n := leakCycles(t, 2000)
			for i := 5; i < 5+n; i++ {
				cycle(i)
			}
			h1 := liveHeap()
			t.Logf("%d cycles: live heap %d -> %d (%+.0f B/cycle)", n, h0, h1, float64(h1-h0)/float64(n))
			require.Zero(t, m.Allocated())
			require.LessOrEqual(t, h1, 2*h0+4<<20, "removed files' memory is kept")
		})
	}
}
