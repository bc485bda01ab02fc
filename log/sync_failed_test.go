package log

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// failLogSync returns an FS over mem whose next .log fsync fails once
// armed is set (armed is then cleared), and whose creation of the
// sync-failed checkpoint fails while deny (if not nil) is set.
func failLogSync(mem *vfs.MemFS, armed, deny *atomic.Bool) vfs.FS {
	return vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			return vfs.ErrInjected
		}
		if op == vfs.OpCreate && strings.Contains(name, syncFailedFile) && deny != nil && deny.Load() {
			return vfs.ErrInjected
		}
		return nil
	}))
}

// syncFailLog opens a log with cfg on failLogSync(mem, armed, deny) and
// appends "one" to it, durably.
func syncFailLog(t *testing.T, cfg Config, deny *atomic.Bool) (e *env, mem *vfs.MemFS, armed *atomic.Bool, l *Log) {
	t.Helper()
	mem, armed = vfs.NewMem(), new(atomic.Bool)
	e = newEnv(t)
	e.fs = failLogSync(mem, armed, deny)
	l = e.open(cfg)
	_, err := l.Append(context.Background(), valueBatch(t, 1, "one"), AppendOptions{})
	require.NoError(t, err)
	return e, mem, armed, l
}

// requireCrashKeeps opens the log on a crash clone of mem that keeps the
// unsynced tail per tail, and requires its records' values to be want.
func (e *env) requireCrashKeeps(mem *vfs.MemFS, tail vfs.TailMode, want ...string) {
	e.t.Helper()
	l, err := Open(e.dir, Config{}, Options{FS: mem.CrashClone(vfs.CrashOptions{Tail: tail}), Clock: e.clock})
	require.NoError(e.t, err)
	require.Equal(e.t, want, values(readAll(e.t, l, 0)), "%s", tail)
	require.NoError(e.t, l.Close())
}

// TestOpenAfterFailedSyncRewritesTail: a log opened again on the file
// system where an fsync of it failed (no crash between) writes the bytes
// past its durable offset anew, so that the appends after them become
// durable; before, they sat after bytes that no fsync wrote, and a power
// loss cut them all (see TestFailedFsyncThenRestartKeepsAckedRecords in
// package runnel, which failed without this).
func TestOpenAfterFailedSyncRewritesTail(t *testing.T) {
	ctx := context.Background()
	e, mem, armed, l := syncFailLog(t, Config{}, nil)
	armed.Store(true)
	_, err := l.Append(ctx, valueBatch(t, 1, "two"), AppendOptions{})
	require.ErrorIs(t, err, ErrLogFenced)
	require.NoError(t, l.Close())
	_, err = mem.Stat(filepath.Join(e.dir, syncFailedFile))
	require.NoError(t, err, "the failure is recorded")

	l = e.open(Config{})
	info := l.Recovery()
	require.False(t, info.Clean)
	require.Positive(t, info.RewrittenBytes)
	_, err = mem.Stat(filepath.Join(e.dir, syncFailedFile))
	require.ErrorIs(t, err, fs.ErrNotExist, "removed once the bytes are durable")
	require.Equal(t, []string{"one", "two"}, values(readAll(t, l, 0)), "what was read before is there, at its offsets")
	for _, v := range []string{"three", "four"} {
		_, err := l.Append(ctx, valueBatch(t, 1, v), AppendOptions{})
		require.NoError(t, err)
	}
	for _, tail := range []vfs.TailMode{vfs.TailDrop, vfs.TailZeros, vfs.TailGarbage} {
		e.requireCrashKeeps(mem, tail, "one", "two", "three", "four")
	}
	require.NoError(t, l.Close())
	l = e.open(Config{})
	require.True(t, l.Recovery().Clean)
	require.NoError(t, l.Close())
}

// TestOpenWhoseRecoverySyncFails: an Open whose own recovery fsync fails
// records it, so that the next Open (the broker's RetryReopen, say) writes
// the tail anew rather than trusting it.
func TestOpenWhoseRecoverySyncFails(t *testing.T) {
	ctx := context.Background()
	e, mem, armed, l := syncFailLog(t, Config{Sync: SyncNever}, nil)
	// Killed without a Close: the next Open recovers and syncs.
	l.Discard()
	armed.Store(true)
	_, err := Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock})
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.False(t, armed.Load())

	l = e.open(Config{})
	require.Positive(t, l.Recovery().RewrittenBytes)
	_, err = l.Append(ctx, valueBatch(t, 1, "two"), AppendOptions{})
	require.NoError(t, err)
	e.requireCrashKeeps(mem, vfs.TailDrop, "one", "two")
	require.NoError(t, l.Close())
}

// TestFencedCloseRetriesSyncFailedCheckpoint: when the checkpoint cannot
// be written as the log is fenced, Close writes it, or fails saying so.
func TestFencedCloseRetriesSyncFailedCheckpoint(t *testing.T) {
	ctx := context.Background()
	var deny atomic.Bool
	e, mem, armed, l := syncFailLog(t, Config{}, &deny)
	deny.Store(true)
	armed.Store(true)
	_, err := l.Append(ctx, valueBatch(t, 1, "two"), AppendOptions{})
	require.ErrorIs(t, err, ErrLogFenced)
	_, err = mem.Stat(filepath.Join(e.dir, syncFailedFile))
	require.ErrorIs(t, err, fs.ErrNotExist)
	deny.Store(false)
	require.NoError(t, l.Close())
	_, err = mem.Stat(filepath.Join(e.dir, syncFailedFile))
	require.NoError(t, err, "written by Close")

	l = e.open(Config{})
	require.Positive(t, l.Recovery().RewrittenBytes)
	require.NoError(t, l.Close())
}

// values are the records' values.
func values(recs []*record.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

// TestOpenAfterFailedSyncWithNothingUnsynced: a Close whose fsync fails
// with nothing unsynced lost nothing (vfs.WithFaults leaves such a file as
// it was); the next Open, which cuts the segment at its durable end, all
// of it, rewrites nothing, and the appends after it are durable.
func TestOpenAfterFailedSyncWithNothingUnsynced(t *testing.T) {
	ctx := context.Background()
	e, mem, armed, l := syncFailLog(t, Config{}, nil)
	armed.Store(true)
	require.ErrorIs(t, l.Close(), vfs.ErrInjected)
	require.False(t, armed.Load())

	l = e.open(Config{})
	require.Zero(t, l.Recovery().RewrittenBytes)
	_, err := l.Append(ctx, valueBatch(t, 1, "two"), AppendOptions{})
	require.NoError(t, err)
	e.requireCrashKeeps(mem, vfs.TailDrop, "one", "two")
	require.NoError(t, l.Close())
}

// openFailingLogWrite opens the log on mem with its first write of a .log
// failing, and requires the Open to fail with it (msg says which write).
func (e *env) openFailingLogWrite(mem *vfs.MemFS, msg string) {
	e.t.Helper()
	var armed atomic.Bool
	armed.Store(true)
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			return vfs.ErrInjected
		}
		return nil
	}))
	_, err := Open(e.dir, Config{}, Options{FS: fsys, Clock: e.clock})
	require.ErrorIs(e.t, err, vfs.ErrInjected, msg)
	require.False(e.t, armed.Load(), msg)
}

// failOn returns an FS over mem whose every op on the file name fails.
func failOn(mem *vfs.MemFS, op vfs.Op, name string) vfs.FS {
	return vfs.WithFaults(mem, vfs.InjectorFunc(func(o vfs.Op, n string) error {
		if o == op && n == name {
			return vfs.ErrInjected
		}
		return nil
	}))
}

// TestOpenWhoseRewriteFailsKeepsTheTail: when the write of an Open's
// rewrite after a failed fsync fails, after the segment was cut before
// the bytes it writes anew, the next Open puts them back from the copy
// the rewrite saved first. Before, they were lost: records acknowledged
// under SyncNever, whose offsets were then handed out again.
func TestOpenWhoseRewriteFailsKeepsTheTail(t *testing.T) {
	ctx := context.Background()
	e, mem := failedSyncNever(t)
	e.openFailingLogWrite(mem, "the rewrite's write")

	// Twice: on the FS as it is, and on what a power cut would leave of it.
	for _, fsys := range []vfs.FS{mem.CrashClone(vfs.CrashOptions{}), mem} {
		l, err := Open(e.dir, Config{}, Options{FS: fsys, Clock: e.clock})
		require.NoError(t, err)
		require.Positive(t, l.Recovery().RewrittenBytes)
		require.Equal(t, []string{"one", "two"}, values(readAll(t, l, 0)))
		_, err = l.Append(ctx, valueBatch(t, 1, "three"), AppendOptions{})
		require.NoError(t, err)
		require.Equal(t, []string{"one", "two", "three"}, values(readAll(t, l, 0)))
		require.NoError(t, l.Close())
	}
	e.requireCrashKeeps(mem, vfs.TailDrop, "one", "two", "three")
}

// TestOpenWhoseRecoveryFailsPastTheLogSyncsWritesNothingAnew: an Open
// whose recovery fails after the log files' fsyncs — an index's fsync, or
// the open of an index or of the directory that the process's descriptor
// limit refuses (EMFILE) — records no sync failure: the log's bytes are as
// they were, and the next Open recovers them without writing anything
// anew. Before, the last step, the directory's fsync (its open refused
// here), was taken for a failed fsync of the log, and the next Open
// rewrote the tail, warning of a failure that had not happened: that
// case fails on the old syncRecovered; the index cases (failing in the
// recovery's own sync of the rebuilt indexes) passed already, and guard
// the rule.
func TestOpenWhoseRecoveryFailsPastTheLogSyncsWritesNothingAnew(t *testing.T) {
	emfile := &fs.PathError{Op: "open", Path: "x", Err: syscall.EMFILE}
	for _, c := range []struct {
		name string
		fail func(op vfs.Op, name string) error
	}{
		{"index fsync", func(op vfs.Op, name string) error {
			if op == vfs.OpSync && strings.HasSuffix(name, ".index") {
				return vfs.ErrInjected
			}
			return nil
		}},
		{"index open at the descriptor limit", func(op vfs.Op, name string) error {
			if op == vfs.OpOpen && strings.HasSuffix(name, ".timeindex") {
				return emfile
			}
			return nil
		}},
		{"directory fsync", func(op vfs.Op, _ string) error {
			if op == vfs.OpSyncDir {
				return emfile
			}
			return nil
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			mem := vfs.NewMem()
			var armed, hit atomic.Bool
			e := newEnv(t)
			e.fs = vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if !armed.Load() {
					return nil
				}
				err := c.fail(op, name)
				if err != nil {
					hit.Store(true)
				}
				return err
			}))
			// Two segments, synced only by the recovery: the first is
			// sealed (its indexes closed, opened again to be synced).
			l := e.open(Config{Sync: SyncNever, SegmentBytes: 100})
			for _, v := range []string{"one", "two", "three"} {
				_, err := l.Append(ctx, valueBatch(t, 1, strings.Repeat(v, 20)), AppendOptions{})
				require.NoError(t, err)
			}
			// Killed without a Close: the next Open recovers and syncs.
			require.NoError(t, l.Discard())
			armed.Store(true)
			_, err := Open(e.dir, Config{Sync: SyncNever, SegmentBytes: 100}, Options{FS: e.fs, Clock: e.clock})
			require.Error(t, err)
			require.True(t, hit.Load(), "the failure was injected")
			armed.Store(false)
			_, err = mem.Stat(filepath.Join(e.dir, syncFailedFile))
			require.ErrorIs(t, err, fs.ErrNotExist, "no sync failure recorded")

			l = e.open(Config{Sync: SyncNever, SegmentBytes: 100})
			require.Zero(t, l.Recovery().RewrittenBytes)
			require.Len(t, readAll(t, l, 0), 3)
			require.NoError(t, l.Close())
		})
	}
}
