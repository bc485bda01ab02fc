package vfs

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLockTwiceInOneProcess: a second Lock of a file this process holds
// fails with ErrLocked whatever the system's lock says, also by another
// name of the same file, and works again once the first is closed. On NFS
// (and wherever flock(2) is emulated with fcntl's locks) the system's
// lock belongs to the process, which would get it twice: two Opens of one
// broker directory in one process would both run. The test plays such a
// file system with a lockSys that always grants the lock.
func TestLockTwiceInOneProcess(t *testing.T) {
	lockSys = func(*os.File) error { return nil }
	t.Cleanup(func() { lockSys = lockFile })
	dir := t.TempDir()
	name := filepath.Join(dir, ".lock")

	l1, err := OS.Lock(name)
	require.NoError(t, err)
	_, err = OS.Lock(name)
	require.ErrorIs(t, err, ErrLocked, "a second Lock in the same process")
	if runtime.GOOS != "windows" {
		link := filepath.Join(dir, "link")
		if err := os.Symlink(name, link); err != nil {
			// exFAT and FAT have no symbolic links (ENOSYS, EPERM).
			t.Logf("no other name for the file: %v", err)
		} else {
			_, err = OS.Lock(link)
			require.ErrorIs(t, err, ErrLocked, "the same file by another name")
		}
	}
	other, err := OS.Lock(filepath.Join(dir, ".other"))
	require.NoError(t, err, "another file locks")
	require.NoError(t, other.Close())

	require.NoError(t, l1.Close())
	require.NoError(t, l1.Close(), "closing twice changes nothing")
	l2, err := OS.Lock(name)
	require.NoError(t, err, "free again once closed")
	require.NoError(t, l2.Close())
}
