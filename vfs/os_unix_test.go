//go:build unix && !aix

package vfs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The OS FS on Unix systems (os.go, os_unix.go): modes, the system's
// lock, mappings and descriptors.

// The OS FS creates files (Create, and Lock's file) with mode 0644 and
// directories with the mode MkdirAll (and MkdirAllDurable) is given, less
// the umask, as
// os.Create and os.MkdirAll do: a file of the data directory stays
// readable to its group and others (a backup, an operator's tools). The
// umask is 0 meanwhile, so that the modes are the ones asked for.
func TestOSCreateModes(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })

	f, err := OS.Create(filepath.Join(dir, "f"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	l, err := OS.Lock(filepath.Join(dir, "LOCK"))
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NoError(t, OS.MkdirAll(filepath.Join(dir, "a", "b"), 0o750))
	require.NoError(t, MkdirAllDurable(OS, filepath.Join(dir, "c", "d"), 0o750))

	for name, want := range map[string]os.FileMode{
		"f": 0o644, "LOCK": 0o644, "a": 0o750, filepath.Join("a", "b"): 0o750,
		"c": 0o750, filepath.Join("c", "d"): 0o750,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err, name)
		require.Equal(t, want, fi.Mode().Perm(), name)
	}
}

// Lock takes the system's lock (flock(2), exclusive, not waiting), not
// only this process's table: a lock file another open file description
// holds, as another process does, is refused with ErrLocked (an
// *os.PathError naming the file, its descriptor closed); one that Lock
// holds refuses another's exclusive lock, and a shared one too.
func TestOSLockIsTheSystems(t *testing.T) {
	name := filepath.Join(t.TempDir(), "LOCK")
	other, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer other.Close()
	fd := int(other.Fd())

	require.NoError(t, unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB)) // a shared lock keeps Lock out too
	before := openFDs(t)
	for range 10 {
		_, err = OS.Lock(name)
		require.ErrorIs(t, err, ErrLocked)
		var pe *os.PathError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, name, pe.Path)
	}
	if before >= 0 {
		require.LessOrEqual(t, openFDs(t), before, "Lock left the descriptors of the refused locks open")
	}
	require.NoError(t, unix.Flock(fd, unix.LOCK_UN))

	l, err := OS.Lock(name)
	require.NoError(t, err)
	require.ErrorIs(t, unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK)
	require.ErrorIs(t, unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB), unix.EWOULDBLOCK)
	require.NoError(t, l.Close())
	require.NoError(t, unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB), "free once Lock's is closed")

	// Any other error of flock(2) is returned as it is, not taken for
	// the lock: here a closed file's (EBADF).
	closed, err := os.Open(name)
	require.NoError(t, err)
	require.NoError(t, closed.Close())
	err = lockFile(closed)
	require.ErrorIs(t, err, unix.EBADF)
	require.NotErrorIs(t, err, ErrLocked)
}

// Map maps the first length bytes of an OS file read-only; a length of 0
// maps nothing (mmap(2) would refuse it) and works; a closed file's
// mapping fails with an *os.PathError naming the file.
func TestOSMap(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	f, err := OS.Create(name)
	require.NoError(t, err)
	_, err = f.Write([]byte("0123456789"))
	require.NoError(t, err)

	m, err := f.(Mapper).Map(4)
	require.NoError(t, err)
	require.Equal(t, "0123", string(m.Bytes()))
	require.NoError(t, m.Close())
	require.NoError(t, m.Close())

	m, err = f.(Mapper).Map(0)
	require.NoError(t, err)
	require.Empty(t, m.Bytes())
	require.NoError(t, m.Close())

	require.NoError(t, f.Close())
	_, err = f.(Mapper).Map(4)
	var pe *os.PathError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "mmap", pe.Op)
	require.Equal(t, name, pe.Path)
}

// openFDs returns how many descriptors the process has open, or -1 where
// it cannot tell (no /proc/self/fd or /dev/fd).
func openFDs(t *testing.T) int {
	t.Helper()
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		if es, err := os.ReadDir(dir); err == nil {
			return len(es)
		}
	}
	return -1
}

// The OS FS closes every descriptor it opens for a call that returns no
// file: List's and SyncDir's of the directory, and a Lock's refused
// because this process holds it already.
func TestOSLeavesNoDescriptorOpen(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "LOCK")
	l, err := OS.Lock(name)
	require.NoError(t, err)
	defer l.Close()
	before := openFDs(t)
	if before < 0 {
		t.Skip("cannot count the open descriptors")
	}
	for range 10 {
		_, err := OS.List(dir)
		require.NoError(t, err)
		require.NoError(t, OS.SyncDir(dir))
		_, err = OS.Lock(name)
		require.ErrorIs(t, err, ErrLocked)
	}
	require.LessOrEqual(t, openFDs(t), before)
}
