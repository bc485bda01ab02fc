package vfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestReview31RefusedLockKeepsTheProcesssLock: where the system's lock
// belongs to the process (fcntl(2)'s record locks, which NFS-style
// emulations of flock give, and for which the table of held files
// exists), closing any descriptor of the file releases it. A second Lock
// of a file this process holds must therefore be refused without
// opening (and then closing) the file: it released the first Lock's lock,
// and another process could then open the broker's directory while the
// first broker still runs. The test plays such a file system with a
// lockSys that takes fcntl's lock, and looks at the lock through an open
// file description lock (F_OFD_GETLK), which sees the process's.
func TestReview31RefusedLockKeepsTheProcesssLock(t *testing.T) {
	lockSys = func(f *os.File) error {
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return ErrLocked
		}
		return err
	}
	t.Cleanup(func() { lockSys = lockFile })
	dir := t.TempDir()
	name := filepath.Join(dir, "runnel.lock")
	probe, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer probe.Close() // after the Locks' Close: it too would release them
	locked := func() bool {
		t.Helper()
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		require.NoError(t, unix.FcntlFlock(probe.Fd(), unix.F_OFD_GETLK, &lk))
		return lk.Type != unix.F_UNLCK
	}

	l, err := OS.Lock(name)
	require.NoError(t, err)
	require.True(t, locked(), "Lock took the lock")
	_, err = OS.Lock(name)
	require.ErrorIs(t, err, ErrLocked, "a second Lock in the same process")
	require.True(t, locked(), "the refused second Lock released the first's")
	if err := os.Symlink(name, filepath.Join(dir, "link")); err == nil {
		_, err = OS.Lock(filepath.Join(dir, "link"))
		require.ErrorIs(t, err, ErrLocked, "the same file by another name")
		require.True(t, locked(), "the refused Lock by another name released the first's")
	}
	require.NoError(t, l.Close())
	require.False(t, locked(), "released by Close")
}
