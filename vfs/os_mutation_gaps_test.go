package vfs

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Tests that close gaps mutation testing found in the OS FS (os.go),
// MkdirAllDurable (dir.go) and Unwrap (wrap.go) on every system: each
// fails against a mutant that every other test let through.

// OpenOS opens an existing file read-only: its content reads, a write
// through it fails; a missing file is an error matching fs.ErrNotExist,
// and not created; a name too long matches ErrNameTooLong.
func TestOpenOS(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	f, err := OS.Create(name)
	require.NoError(t, err)
	_, err = f.Write([]byte("abc"))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	g, err := OpenOS(name)
	require.NoError(t, err)
	defer g.Close()
	b := make([]byte, 3)
	_, err = g.ReadAt(b, 0)
	require.NoError(t, err)
	require.Equal(t, "abc", string(b))
	_, err = g.Write([]byte("x"))
	require.Error(t, err, "a write through a read-only file")

	missing := filepath.Join(dir, "missing")
	_, err = OpenOS(missing)
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = OS.Stat(missing)
	require.ErrorIs(t, err, fs.ErrNotExist, "OpenOS created the file")

	if onWine() {
		return // Wine answers a name too long as not found (see NameTooLong)
	}
	_, err = OpenOS(filepath.Join(dir, strings.Repeat("x", MaxNameLen+1)))
	require.ErrorIs(t, err, ErrNameTooLong)
}

// Closing a Lock drops its file from the process's table (held): the
// table does not grow with each Lock taken and closed.
func TestOSLockCloseEmptiesTheTable(t *testing.T) {
	dir := t.TempDir()
	held.Lock()
	before := len(held.files)
	held.Unlock()
	for range 3 {
		l, err := OS.Lock(filepath.Join(dir, "LOCK"))
		require.NoError(t, err)
		require.NoError(t, l.Close())
	}
	held.Lock()
	defer held.Unlock()
	require.Len(t, held.files, before)
}

// MkdirAllDurable cleans the name first: a directory named with a
// trailing separator is created and its parent synced once, not synced
// itself as the parent of "dir/".
func TestMkdirAllDurableCleansTheName(t *testing.T) {
	mem := NewMem()
	syncs := Count(OpSyncDir)
	require.NoError(t, MkdirAllDurable(WithFaults(mem, syncs), "/a/b/", 0o755))
	require.Equal(t, 2, syncs.N(), "the parents of a and b")
	for _, d := range []string{"/a", "/a/b"} {
		_, err := mem.CrashClone(CrashOptions{}).Stat(d)
		require.NoError(t, err, d)
	}
}

// A failed MkdirAll is MkdirAllDurable's error: it does not go on to
// create the directories below (which MkdirAll would create the failed
// one with, unsynced) and report success.
func TestMkdirAllDurableMkdirError(t *testing.T) {
	mem := NewMem()
	err := MkdirAllDurable(WithFaults(mem, FailNth(1, OpMkdir)), "/x/y", 0o755)
	require.ErrorIs(t, err, ErrInjected)
	_, err = mem.Stat("/x")
	require.ErrorIs(t, err, fs.ErrNotExist)
}

// Unwrap sees through a deep stack of wrappers (here 100), not only two.
func TestUnwrapDeep(t *testing.T) {
	nop := InjectorFunc(func(Op, string) error { return nil })
	mem := NewMem()
	var fsys FS = mem
	for range 100 {
		fsys = WithFaults(fsys, nop)
	}
	require.Same(t, mem, Unwrap(fsys), "100 wrappers")
}
