package log

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// doubleFault opens a log with cfg on mem, appends "one" durably, then
// fails an fsync of its .log while the sync-failed checkpoint cannot be
// created either, and closes the log (which fails: the checkpoint is
// still denied). Under SyncAlways the append of "two" whose fsync fails
// is refused; under SyncNever it is acknowledged after its write, and
// the fsync of the Close fails. It returns the env, with the checkpoint
// still denied while deny is set, and the values acknowledged.
func doubleFault(t *testing.T, cfg Config) (e *env, mem *vfs.MemFS, deny *atomic.Bool, acked []string) {
	t.Helper()
	ctx := context.Background()
	deny = new(atomic.Bool)
	e, mem, armed, l := syncFailLog(t, cfg, deny)
	acked = []string{"one"}
	deny.Store(true)
	armed.Store(true)
	_, err := l.Append(ctx, valueBatch(t, 1, "two"), AppendOptions{})
	if cfg.Sync == SyncNever {
		require.NoError(t, err)
		acked = append(acked, "two")
	} else {
		require.ErrorIs(t, err, ErrLogFenced)
	}
	require.ErrorIs(t, l.Close(), vfs.ErrInjected, "the checkpoint could not be written")
	require.False(t, armed.Load(), "the fsync failed")
	_, err = mem.Stat(filepath.Join(e.dir, syncFailedFile))
	require.ErrorIs(t, err, fs.ErrNotExist)
	return e, mem, deny, acked
}

// TestOpenInSameProcessAfterUnwrittenSyncFailedCheckpoint: when the
// sync-failed checkpoint could not be written (the fsync failed, then
// the checkpoint's write) and the disk works again, an Open in the same
// process — on a new wrapper of the same file system, as a broker's
// reopen may be — writes the tail anew all the same, so that a power cut
// then keeps every acknowledged record. Before, it found no checkpoint,
// trusted the tail that the failed fsync left in the page cache only (no
// rewrite), and the power cut took "two" (SyncNever's, acknowledged) and
// "three", acknowledged after an fsync that wrote nothing.
func TestOpenInSameProcessAfterUnwrittenSyncFailedCheckpoint(t *testing.T) {
	for _, sync := range []SyncPolicy{SyncAlways, SyncNever} {
		t.Run(sync.String(), func(t *testing.T) {
			ctx := context.Background()
			e, mem, deny, acked := doubleFault(t, Config{Sync: sync})
			deny.Store(false) // the disk works again

			fresh := vfs.WithFaults(mem, vfs.InjectorFunc(func(vfs.Op, string) error { return nil }))
			l, err := Open(e.dir, Config{Sync: sync}, Options{FS: fresh, Clock: e.clock})
			require.NoError(t, err)
			require.False(t, l.Recovery().Clean)
			require.Positive(t, l.Recovery().RewrittenBytes, "the tail is written anew")
			_, err = mem.Stat(filepath.Join(e.dir, syncFailedFile))
			require.ErrorIs(t, err, fs.ErrNotExist, "written by the Open, removed once the rewrite is durable")
			seen := values(readAll(t, l, 0))
			require.Equal(t, []string{"one", "two"}, seen, "what was read before is there, at its offsets")
			_, err = l.Append(ctx, valueBatch(t, 1, "three"), AppendOptions{})
			require.NoError(t, err)
			require.NoError(t, l.Flush(ctx))
			acked = append(acked, "three")
			for _, tail := range []vfs.TailMode{vfs.TailDrop, vfs.TailZeros, vfs.TailGarbage} {
				e.requireCrashKeeps(mem, tail, "one", "two", "three")
			}
			require.Subset(t, []string{"one", "two", "three"}, acked)
			require.NoError(t, l.Close())
		})
	}
}

// TestOpenByAnotherNameAfterUnwrittenSyncFailedCheckpoint: the process
// remembers the log by its directory, not by how an Open spelled it: on
// the memory FS, where a relative name is under the root, an Open of
// "data/topic-0" after a failure of "/data/topic-0" (a broker opened
// again with Dir "data" where it had "/data", on the same MemFS) writes
// the tail anew too. Before, the key kept the spelling: the Open found
// no memory of the failure, trusted the tail the failed fsync had left
// unwritten, and a power cut then took every record, acknowledged ones
// too.
func TestOpenByAnotherNameAfterUnwrittenSyncFailedCheckpoint(t *testing.T) {
	ctx := context.Background()
	e, mem, deny, _ := doubleFault(t, Config{Sync: SyncNever})
	deny.Store(false) // the disk works again
	l, err := Open(strings.TrimPrefix(e.dir, "/"), Config{Sync: SyncNever}, Options{FS: mem, Clock: e.clock})
	require.NoError(t, err)
	require.Positive(t, l.Recovery().RewrittenBytes, "the tail is written anew")
	_, err = l.Append(ctx, valueBatch(t, 1, "three"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Flush(ctx))
	e.requireCrashKeeps(mem, vfs.TailDrop, "one", "two", "three")
	require.NoError(t, l.Close())
}
