package vfs

import (
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
