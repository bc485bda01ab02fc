package vfs

import (
	"io/fs"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMkdirAllDurable(t *testing.T) {
	mem := NewMem()
	require.NoError(t, mem.MkdirAll("/a", 0o755))
	require.NoError(t, mem.SyncDir("/"))

	// MkdirAll alone: the new directories are not durable.
	require.NoError(t, mem.MkdirAll("/a/plain/x", 0o755))
	_, err := mem.CrashClone(CrashOptions{}).Stat("/a/plain")
	require.ErrorIs(t, err, os.ErrNotExist)

	// MkdirAllDurable: each one is, and the syncs are of their parents.
	syncs := Count(OpSyncDir)
	require.NoError(t, MkdirAllDurable(WithFaults(mem, syncs), "/a/b/c/d", 0o755))
	require.Equal(t, 3, syncs.N(), "the parents of b, c and d")
	clone := mem.CrashClone(CrashOptions{})
	for _, d := range []string{"/a/b", "/a/b/c", "/a/b/c/d"} {
		fi, err := clone.Stat(d)
		require.NoError(t, err, d)
		require.True(t, fi.IsDir(), d)
	}

	// An existing directory: nothing to create, nothing synced.
	syncs = Count(OpSyncDir)
	require.NoError(t, MkdirAllDurable(WithFaults(mem, syncs), "/a/b/c", 0o755))
	require.Zero(t, syncs.N())

	// A file in the way, and a failed sync, are the FS's errors.
	f, err := mem.Create("/a/file")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Error(t, MkdirAllDurable(mem, "/a/file/sub", 0o755))
	err = MkdirAllDurable(WithFaults(mem, FailNth(1, OpSyncDir)), "/a/e", 0o755)
	require.ErrorIs(t, err, ErrInjected)
}

// A retry after a failed sync makes the directories durable: it used to
// find them created by the failed call, return nil, and sync nothing, so
// that a crash lost them (and the log files later put in them). Each
// sync of a chain fails once in turn.
func TestMkdirAllDurableRetryAfterFailedSync(t *testing.T) {
	for nth := 1; nth <= 3; nth++ {
		mem := NewMem()
		faulty := WithFaults(mem, FailNth(nth, OpSyncDir))
		err := MkdirAllDurable(faulty, "/x/y/z", 0o755)
		require.ErrorIs(t, err, ErrInjected, "sync %d", nth)
		require.NoError(t, MkdirAllDurable(faulty, "/x/y/z", 0o755), "the retry, sync %d failed", nth)
		clone := mem.CrashClone(CrashOptions{})
		for _, d := range []string{"/x", "/x/y", "/x/y/z"} {
			fi, err := clone.Stat(d)
			require.NoError(t, err, "%s after a crash, sync %d failed", d, nth)
			require.True(t, fi.IsDir())
		}
	}
}

// A Stat that fails other than with a missing directory fails
// MkdirAllDurable with its error, creating nothing: the directory may
// well exist.
func TestMkdirAllDurableStatError(t *testing.T) {
	m := NewMem()
	err := MkdirAllDurable(WithFaults(m, FailNth(1, OpStat)), "/a/b", 0o755)
	require.ErrorIs(t, err, ErrInjected)
	require.Empty(t, must[[]string](t)(m.List("/")))
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
