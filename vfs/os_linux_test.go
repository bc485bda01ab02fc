package vfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The OS FS's Linux code (os.go, sync_linux.go, fuse_linux.go), and the
// lock where the system's lock belongs to the process.

// A write that fails moves the append position by what it wrote only:
// /dev/full refuses every write (ENOSPC) having written nothing, so that
// Size stays 0 after a Write and a WriteAt that fail.
func TestOSFailedWriteMovesNoAppendPosition(t *testing.T) {
	f, err := OS.Open("/dev/full")
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer f.Close()
	n, err := f.Write([]byte("abc"))
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Zero(t, n)
	n, err = f.WriteAt([]byte("abc"), 5)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Zero(t, n)
	size, err := f.Size()
	require.NoError(t, err)
	require.Zero(t, size)
}

// Sync returns fdatasync(2)'s error, as an *os.PathError naming the file:
// /dev/null cannot be synced (EINVAL). Unlike SyncDir's, a file's EINVAL
// is not taken for "nothing to do".
func TestOSSyncError(t *testing.T) {
	f, err := OS.Open("/dev/null")
	if err != nil {
		t.Skipf("no /dev/null: %v", err)
	}
	defer f.Close()
	err = f.Sync()
	require.ErrorIs(t, err, syscall.EINVAL)
	var pe *os.PathError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "/dev/null", pe.Path)
}

// fuse is false for a directory on a file system other than FUSE (here
// the test's temporary directory, unless that is on FUSE) and for one
// that is missing.
func TestFuseOnlyOnFUSE(t *testing.T) {
	dir := t.TempDir()
	var st unix.Statfs_t
	require.NoError(t, unix.Statfs(dir, &st))
	if st.Type == unix.FUSE_SUPER_MAGIC {
		t.Skip("the temporary directory is on FUSE")
	}
	require.False(t, fuse(dir))
	require.False(t, fuse(dir+"/missing"))
}

// Closing a Mapping unmaps it: the file is no longer among the process's
// mappings (/proc/self/maps).
func TestOSMappingCloseUnmaps(t *testing.T) {
	name := filepath.Join(t.TempDir(), "mapped")
	f, err := OS.Create(name)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Write(make([]byte, 8192))
	require.NoError(t, err)
	mapped := func() bool {
		b, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Skipf("no /proc/self/maps: %v", err)
		}
		return strings.Contains(string(b), name)
	}
	m, err := f.(Mapper).Map(8192)
	require.NoError(t, err)
	require.True(t, mapped())
	require.NoError(t, m.Close())
	require.False(t, mapped(), "still mapped after Close")
}

// TestRefusedLockKeepsTheProcesssLock: where the system's lock
// belongs to the process (fcntl(2)'s record locks, which NFS-style
// emulations of flock give, and for which the table of held files
// exists), closing any descriptor of the file releases it. A second Lock
// of a file this process holds must therefore be refused without
// opening (and then closing) the file: it released the first Lock's lock,
// and another process could then open the broker's directory while the
// first broker still runs. The test plays such a file system with a
// lockSys that takes fcntl's lock, and looks at the lock through an open
// file description lock (F_OFD_GETLK), which sees the process's.
func TestRefusedLockKeepsTheProcesssLock(t *testing.T) {
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
