package log

import (
	"context"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestOpenKeepsRememberedFailureUntilRewriteDurable: an Open that cannot
// write the sync-failed checkpoint the process remembered fails, and the
// process remembers still; the next Open, the disk working, rewrites.
// A power cut between the two takes nothing acknowledged.
func TestOpenKeepsRememberedFailureUntilRewriteDurable(t *testing.T) {
	e, mem, deny, _ := doubleFault(t, Config{})
	_, err := Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock})
	require.ErrorIs(t, err, vfs.ErrInjected, "the checkpoint cannot be written yet")
	key, ok := failedKeyOf(e.fs, e.dir)
	require.True(t, ok)
	off, ok := failedLogs.lookup(key)
	require.True(t, ok, "still remembered")
	require.Equal(t, int64(1), off, "the durable offset when the fsync failed")
	e.requireCrashKeeps(mem, vfs.TailDrop, "one")

	deny.Store(false)
	l := e.open(Config{})
	require.Positive(t, l.Recovery().RewrittenBytes)
	_, ok = failedLogs.lookup(key)
	require.False(t, ok)
	require.NoError(t, l.Close())
	l = e.open(Config{})
	require.True(t, l.Recovery().Clean, "nothing left to rewrite")
	require.NoError(t, l.Close())
}

// TestDiscardForgetsUnwrittenSyncFailedCheckpoint: a log discarded (its
// directory about to go, as DeleteTopic removes it) is forgotten, so that
// a new log at its path is not taken for it.
func TestDiscardForgetsUnwrittenSyncFailedCheckpoint(t *testing.T) {
	ctx := context.Background()
	var deny atomic.Bool
	e, _, armed, l := syncFailLog(t, Config{}, &deny)
	deny.Store(true)
	armed.Store(true)
	_, err := l.Append(ctx, valueBatch(t, 1, "two"), AppendOptions{})
	require.ErrorIs(t, err, ErrLogFenced)
	_, ok := failedLogs.lookup(l.failedKey)
	require.True(t, ok, "remembered as the log fenced")
	require.NoError(t, l.Discard())
	_, ok = failedLogs.lookup(l.failedKey)
	require.False(t, ok, "forgotten by Discard")
	require.NoError(t, e.fs.RemoveAll(e.dir))
	deny.Store(false)

	l = e.open(Config{})
	require.Zero(t, l.Recovery().SegmentsFound)
	require.Zero(t, l.Recovery().RewrittenBytes)
	require.NoError(t, l.Close())
}

// TestRememberedFailureBelowCheckpoint: Open takes the lower of the
// offsets of the checkpoint it finds and of the process's memory; and an
// entry for a log that did not fail (a stale one) costs a rewrite of
// bytes that were durable already, and no record.
func TestRememberedFailureBelowCheckpoint(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	l := e.open(Config{})
	for _, v := range []string{"one", "two", "three"} {
		_, err := l.Append(ctx, valueBatch(t, 1, v), AppendOptions{})
		require.NoError(t, err)
	}
	size := l.Size()
	require.NoError(t, l.Close())

	rewritten := func(checkpoint, remembered int64) int64 {
		t.Helper()
		if checkpoint >= 0 {
			require.NoError(t, writeOffset(e.fs, e.dir, syncFailedFile, checkpoint))
		}
		key, ok := failedKeyOf(e.fs, e.dir)
		require.True(t, ok)
		if remembered >= 0 {
			failedLogs.record(key, remembered)
		}
		l := e.open(Config{})
		defer func() { require.NoError(t, l.Close()) }()
		_, ok = failedLogs.lookup(key)
		require.False(t, ok)
		_, err := e.fs.Stat(filepath.Join(e.dir, syncFailedFile))
		require.ErrorIs(t, err, fs.ErrNotExist)
		require.Equal(t, []string{"one", "two", "three"}, values(readAll(t, l, 0)))
		require.False(t, l.Recovery().Clean)
		return l.Recovery().RewrittenBytes
	}
	all := rewritten(-1, 0)
	require.Equal(t, size, all, "a stale entry at 0: the whole log written anew")
	fromTwo := rewritten(2, -1)
	require.Positive(t, fromTwo)
	require.Less(t, fromTwo, all)
	require.Equal(t, all, rewritten(2, 0), "the memory's offset, the lower")
	require.Equal(t, fromTwo, rewritten(2, 3), "the checkpoint's offset, the lower")
}

// TestFailedKeyOf: the key of a log in failedLogs sees through the
// wrappers of its file system, cleans its path, makes the OS file
// system's absolute and a MemFS's rooted (a relative name is under its
// root there), and tells file systems apart.
func TestFailedKeyOf(t *testing.T) {
	key := func(fsys vfs.FS, dir string) failedKey {
		t.Helper()
		k, ok := failedKeyOf(fsys, dir)
		require.True(t, ok)
		return k
	}
	nop := vfs.InjectorFunc(func(vfs.Op, string) error { return nil })
	mem, other := vfs.NewMem(), vfs.NewMem()
	require.Equal(t, key(mem, "/data/t-0"), key(vfs.WithFaults(vfs.WithFaults(mem, nop), nop), "/data//t-0/"))
	require.NotEqual(t, key(mem, "/data/t-0"), key(other, "/data/t-0"))
	require.NotEqual(t, key(mem, "/data/t-0"), key(mem, "/data/t-1"))
	for _, other := range []string{"data/t-0", "./data/t-0", "../data/t-0", "/../data/t-0"} {
		require.Equal(t, key(mem, "/data/t-0"), key(mem, other), "%s: the same directory of the MemFS", other)
	}
	// The key names one directory where the MemFS finds one: with
	// backslashes, separators on Windows (where \data\t-0 is that
	// directory) and a name's characters elsewhere; and with a volume
	// name, which the MemFS takes for a directory's name. (The key
	// without filepath.ToSlash fails this on Windows only.)
	require.NoError(t, mem.MkdirAll("/data/t-0", 0o755))
	for _, other := range []string{`\data\t-0`, `data\t-0`, `C:\data\t-0`, `C:/data/t-0`} {
		_, err := mem.Stat(other)
		require.Equal(t, err == nil, key(mem, other) == key(mem, "/data/t-0"), "%s: the MemFS's answer (%v)", other, err)
	}

	abs, err := filepath.Abs("t-0")
	require.NoError(t, err)
	require.Equal(t, key(vfs.OS, abs), key(vfs.WithFaults(vfs.OS, nop), "t-0"))
	require.NotEqual(t, key(vfs.OS, abs), key(mem, abs))

	_, ok := failedKeyOf(uncomparableFS{FS: mem, names: []string{"x"}}, "/data/t-0")
	require.False(t, ok, "a file system that is not comparable has no key")
	failedLogs.record(failedKey{}, 1)
	_, ok = failedLogs.lookup(failedKey{})
	require.False(t, ok, "the zero key, of a file system that has none, is not recorded")
}

// uncomparableFS is an FS whose values cannot be compared.
type uncomparableFS struct {
	vfs.FS
	names []string
}

// TestFailedLogsForgetGarbageMemFS: the entries of an in-memory file
// system go once it is garbage (a crash test's disk, replaced by its
// crash clone), with the next record.
func TestFailedLogsForgetGarbageMemFS(t *testing.T) {
	gone := func() failedKey {
		k, ok := failedKeyOf(vfs.NewMem(), "/data/t-0")
		require.True(t, ok)
		failedLogs.record(k, 7)
		return k
	}()
	runtime.GC()
	require.True(t, gone.dead())
	live := vfs.NewMem()
	k, ok := failedKeyOf(live, "/data/t-0")
	require.True(t, ok)
	failedLogs.record(k, 3)
	_, ok = failedLogs.lookup(gone)
	require.False(t, ok, "swept")
	off, ok := failedLogs.lookup(k)
	require.True(t, ok)
	require.Equal(t, int64(3), off)
	failedLogs.record(k, 5)
	off, _ = failedLogs.lookup(k)
	require.Equal(t, int64(3), off, "the lower offset kept")
	failedLogs.forget(k, math.MinInt64)
	_, ok = failedLogs.lookup(k)
	require.False(t, ok)
	runtime.KeepAlive(live)
}

// TestOpenWhoseRecoverySyncAndCheckpointFail: an Open whose recovery
// fsync fails, and then the write of the sync-failed checkpoint at its
// recovery point too, is remembered by the process as a log that failed
// is; the next Open, the disk working, writes the tail anew.
func TestOpenWhoseRecoverySyncAndCheckpointFail(t *testing.T) {
	ctx := context.Background()
	var deny atomic.Bool
	e, mem, armed, l := syncFailLog(t, Config{Sync: SyncNever}, &deny)
	_, err := l.Append(ctx, valueBatch(t, 1, "two"), AppendOptions{})
	require.NoError(t, err)
	// Killed without a Close (an Open of another process would follow):
	// the next Open recovers and syncs.
	require.NoError(t, l.Discard())
	armed.Store(true)
	deny.Store(true)
	_, err = Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock})
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.False(t, armed.Load(), "the recovery's fsync failed")
	_, err = mem.Stat(filepath.Join(e.dir, syncFailedFile))
	require.ErrorIs(t, err, fs.ErrNotExist)
	key, ok := failedKeyOf(e.fs, e.dir)
	require.True(t, ok)
	_, ok = failedLogs.lookup(key)
	require.True(t, ok, "remembered")

	deny.Store(false)
	l = e.open(Config{})
	require.Positive(t, l.Recovery().RewrittenBytes)
	_, err = l.Append(ctx, valueBatch(t, 1, "three"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Flush(ctx))
	e.requireCrashKeeps(mem, vfs.TailDrop, "one", "two", "three")
	require.NoError(t, l.Close())
}

// TestFailedLogsConcurrent: failedLogs is safe for concurrent use (under
// -race): logs of several directories recorded, looked up and forgotten
// at once, each ending with what its own calls left.
func TestFailedLogsConcurrent(t *testing.T) {
	mem := vfs.NewMem()
	const logs = 8
	done := make(chan failedKey, logs)
	for i := range logs {
		go func() {
			k, _ := failedKeyOf(mem, filepath.Join("/data", "t-"+string(rune('a'+i))))
			for off := int64(100); off > 0; off-- {
				failedLogs.record(k, off)
				if got, ok := failedLogs.lookup(k); !ok || got != off {
					t.Errorf("%v: recorded %d, found %d, %v", k.dir, off, got, ok)
				}
				if off%2 == 0 {
					failedLogs.forget(k, off)
				}
			}
			done <- k
		}()
	}
	for range logs {
		k := testkit.Await(t, done, "a recording goroutine's key")
		off, ok := failedLogs.lookup(k)
		require.True(t, ok)
		require.Equal(t, int64(1), off)
		failedLogs.forget(k, math.MinInt64)
	}
}

// TestFailedRegistryForgetKeepsALowerOffset: forget removes an entry only
// if it is at least the offset from which the bytes were made durable: a
// lower offset, recorded since, stays; math.MinInt64 removes any.
func TestFailedRegistryForgetKeepsALowerOffset(t *testing.T) {
	r := failedRegistry{m: map[failedKey]int64{}}
	k := failedKey{fs: "fs", dir: "/d"}
	r.record(k, 5)
	r.forget(k, 7)
	off, ok := r.lookup(k)
	require.True(t, ok, "a lower offset stays")
	require.EqualValues(t, 5, off)
	r.forget(k, 5)
	_, ok = r.lookup(k)
	require.False(t, ok)
	r.record(k, 5)
	r.forget(k, math.MinInt64)
	_, ok = r.lookup(k)
	require.False(t, ok)
}

// TestSyncFailedCheckpointInPlaceCountsAsWritten: a sync-failed checkpoint
// renamed into place whose directory fsync failed counts as written (see
// writeSyncFailed): the process does not remember the log as one whose
// checkpoint it could not write, and the next Open finds the checkpoint
// and writes the tail anew.
func TestSyncFailedCheckpointInPlaceCountsAsWritten(t *testing.T) {
	var armed, denyDir atomic.Bool
	mem := vfs.NewMem()
	e := newEnv(t)
	e.fs = vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			denyDir.Store(true)
			return vfs.ErrInjected
		}
		if op == vfs.OpSyncDir && denyDir.Load() {
			return vfs.ErrInjected
		}
		return nil
	}))
	l := e.open(Config{})
	appendOK(t, l, valueBatch(t, 1, "one"))
	armed.Store(true)
	_, err := l.Append(context.Background(), valueBatch(t, 1, "two"), AppendOptions{})
	require.ErrorIs(t, err, ErrLogFenced)
	_, err = mem.Stat(filepath.Join(e.dir, syncFailedFile))
	require.NoError(t, err, "in place")
	_, remembered := failedLogs.lookup(l.failedKey)
	require.False(t, remembered)
	denyDir.Store(false)
	require.NoError(t, l.Close())

	l = e.open(Config{})
	defer l.Close()
	require.Positive(t, l.Recovery().RewrittenBytes)
}

// TestFailedRegistryFindsAnOSDirectoryByAnotherPath: an entry of a
// directory on the OS file system is found, and forgotten, through
// another path to the same directory (a symbolic link here; another case
// of its name on a case-insensitive file system, as macOS's and
// Windows' are by default, is the same to os.SameFile), as the lock of a
// broker's directory is: a log opened again that way writes its tail
// anew, as by its first path. Before, the key was the absolute path
// alone: the Open found no memory of the failure and trusted a tail the
// failed fsync may have left unwritten. A directory that is not that one
// is not found, nor one whose entry was forgotten.
func TestFailedRegistryFindsAnOSDirectoryByAnotherPath(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "t-0")
	require.NoError(t, os.Mkdir(dir, 0o755))
	other := filepath.Join(root, "t-1")
	require.NoError(t, os.Mkdir(other, 0o755))
	link := filepath.Join(root, "link")
	symlinkOrSkip(t, dir, link)
	key := func(d string) failedKey {
		k, ok := failedKeyOf(vfs.OS, d)
		require.True(t, ok)
		return k
	}
	require.NotEqual(t, key(dir), key(link), "two spellings, two keys")

	var r failedRegistry
	r.m = map[failedKey]int64{}
	r.record(key(dir), 4)
	off, ok := r.lookup(key(link))
	require.True(t, ok, "found by the link")
	require.EqualValues(t, 4, off)
	_, ok = r.lookup(key(other))
	require.False(t, ok, "another directory")

	r.record(key(link), 2) // one entry per directory: the lower offset
	require.Len(t, r.m, 1)
	off, _ = r.lookup(key(dir))
	require.EqualValues(t, 2, off)

	r.forget(key(link), math.MinInt64)
	_, ok = r.lookup(key(dir))
	require.False(t, ok, "forgotten by the link")
	require.Empty(t, r.ids)

	// Another file system's directory of the same path is not the OS's:
	// it neither finds nor forgets its entry, nor has an identity.
	r.record(key(dir), 6)
	mem := vfs.NewMem()
	memKey, ok := failedKeyOf(mem, dir)
	require.True(t, ok)
	_, ok = r.lookup(memKey)
	require.False(t, ok, "a MemFS's directory of the OS directory's path")
	r.forget(memKey, math.MinInt64)
	_, ok = r.lookup(key(link))
	require.True(t, ok, "not forgotten by a MemFS's key")
	r.record(memKey, 1)
	require.Len(t, r.ids, 1, "the OS directory's identity only")
	r.forget(memKey, math.MinInt64)
	runtime.KeepAlive(mem)

	// The directory replaced at its path (the old one moved away, so
	// that the new one cannot take its identity) and failing there: its
	// entry is found by another path to the new one. Before, the entry
	// kept the identity of the directory it was first recorded for, and
	// the link, to the new one, found nothing.
	require.NoError(t, os.Rename(dir, dir+".old"))
	require.NoError(t, os.Mkdir(dir, 0o755))
	r.record(key(dir), 5)
	off, ok = r.lookup(key(link))
	require.True(t, ok, "the new directory found by the link")
	require.EqualValues(t, 5, off)
}

// symlinkOrSkip makes link a symbolic link to target, or skips t where
// none can be made: Windows without the privilege refuses; Wine 8's
// CreateSymbolicLinkW reports success and makes nothing (a stub), which
// the Lstat finds.
func symlinkOrSkip(t *testing.T, target, link string) {
	t.Helper()
	err := os.Symlink(target, link)
	if err == nil {
		_, err = os.Lstat(link)
	}
	if err != nil {
		t.Skipf("no symbolic link here: %v", err)
	}
}

// TestFailedRegistryStatsWithoutItsMutex: the registry stats an OS
// directory (record, and lookup and forget by another path) without its
// mutex held, which every log's Open in the process takes: record's stat
// goes to the disk that has just failed, which may hang it. Before, a
// stat that hung held up every Open (on any file system), Discard and
// record in the process.
func TestFailedRegistryStatsWithoutItsMutex(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "t-0")
	require.NoError(t, os.Mkdir(dir, 0o755))
	link := filepath.Join(root, "link")
	symlinkOrSkip(t, dir, link)
	var r failedRegistry
	r.m = map[failedKey]int64{}
	statted := 0
	testHookStatDir = func(d string) {
		if d != dir && d != link {
			return // another test's
		}
		statted++
		require.True(t, r.mu.TryLock(), "a stat of %s under the registry's mutex", d)
		r.mu.Unlock()
	}
	defer func() { testHookStatDir = nil }()
	k, ok := failedKeyOf(vfs.OS, dir)
	require.True(t, ok)
	l, ok := failedKeyOf(vfs.OS, link)
	require.True(t, ok)
	r.record(k, 3)
	off, ok := r.lookup(l)
	require.True(t, ok)
	require.EqualValues(t, 3, off)
	r.forget(l, math.MinInt64)
	_, ok = r.lookup(k)
	require.False(t, ok)
	require.Equal(t, 3, statted, "record's, lookup's, forget's")
}
