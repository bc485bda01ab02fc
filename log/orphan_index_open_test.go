package log

import (
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// straysAfterCleanClose writes a log of a few segments through fsys,
// closes it cleanly, and leaves in its directory an offset index and a
// time index of a segment it does not have (base 1000, past its
// end): those a removal that failed after the .log leaves. It
// returns the stray files' names.
func straysAfterCleanClose(t *testing.T, e *env, cfg Config) []string {
	t.Helper()
	l := e.open(cfg)
	for _, v := range []string{"a", "b", "c"} {
		appendOK(t, l, keyedBatch(t, "k"+v))
		require.NoError(t, l.Roll())
	}
	require.NoError(t, l.Close())
	strays := []string{segment.FileName(1000, segment.IndexSuffix), segment.FileName(1000, segment.TimeIndexSuffix)}
	for _, name := range strays {
		f, err := e.fs.Create(filepath.Join(e.dir, name))
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	require.NoError(t, e.fs.SyncDir(e.dir))
	return strays
}

// TestOpenRemovesOrphanedIndexesOfBothKinds: Open removes an orphaned
// time index as it does an orphaned offset index, durably (a crash
// right after Open does not bring them back), and the clean-shutdown
// marker stays trusted: the segments are as the clean Close left them.
func TestOpenRemovesOrphanedIndexesOfBothKinds(t *testing.T) {
	mem := vfs.NewMem()
	e := &env{t: t, fs: mem, dir: "/data/topic-0", clock: newClock()}
	cfg := Config{SegmentBytes: 1000}
	strays := straysAfterCleanClose(t, e, cfg)
	require.Len(t, orphanIndexes(t, mem, e.dir), len(strays))

	l := e.open(cfg)
	require.True(t, l.Recovery().Clean, "the orphaned indexes made the clean-shutdown marker stale")
	require.Empty(t, orphanIndexes(t, mem, e.dir), "Open left an index without its .log")
	require.Empty(t, orphanIndexes(t, mem.CrashClone(vfs.CrashOptions{}), e.dir), "a crash after Open brought back an orphaned index")
	recs := readAll(t, l, l.LogStartOffset())
	require.Len(t, recs, 3)
	require.NoError(t, l.Close())
}

// TestOpenFailsWhenAnOrphanedIndexStays: an orphaned index that Open
// cannot remove (an I/O error) fails Open with that error, as another
// failure of Open's to change the directory does; the next Open removes
// it.
func TestOpenFailsWhenAnOrphanedIndexStays(t *testing.T) {
	mem := vfs.NewMem()
	var failing atomic.Value
	failing.Store("")
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if f := failing.Load().(string); f != "" && op == vfs.OpRemove && filepath.Base(name) == f {
			return vfs.ErrInjected
		}
		return nil
	}))
	e := &env{t: t, fs: fsys, dir: "/data/topic-0", clock: newClock()}
	cfg := Config{SegmentBytes: 1000}
	strays := straysAfterCleanClose(t, e, cfg)
	for _, stray := range strays {
		failing.Store(stray)
		_, err := Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock})
		require.ErrorIs(t, err, vfs.ErrInjected, "the removal of %s failed", stray)
	}
	failing.Store("")
	l := e.open(cfg)
	defer l.Close()
	require.Empty(t, orphanIndexes(t, mem, e.dir))
	require.Len(t, readAll(t, l, l.LogStartOffset()), 3)
}
