package vfs

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSyncDirRefusedAsUnsupported: a file system that cannot sync a
// directory answers fsync(2) with EINVAL, as SMB shares, WSL's drvfs and
// some FUSE file systems do; SyncDir takes that as "nothing to do" rather
// than failing every topic creation and Open there. /proc is such a file
// system on every Linux.
func TestSyncDirRefusedAsUnsupported(t *testing.T) {
	f, err := os.Open("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	serr := f.Sync()
	f.Close()
	if !errors.Is(serr, syscall.EINVAL) {
		t.Skipf("this kernel's /proc does not refuse a directory fsync with EINVAL: %v", serr)
	}
	require.NoError(t, OS.SyncDir("/proc"))

	// A directory that is missing is still an error, and so is any error
	// of the fsync itself but EINVAL.
	require.ErrorIs(t, OS.SyncDir("/proc/no-such-dir"), os.ErrNotExist)
	require.ErrorIs(t, dirSyncErr(&os.PathError{Op: "sync", Path: "d", Err: syscall.EIO}), syscall.EIO)
	require.NoError(t, dirSyncErr(nil))
}
