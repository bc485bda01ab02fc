package testkit

import "testing"

// shmMinFree is the room /dev/shm must have for FastTempDir to use it:
// a container's default /dev/shm is 64 MiB, which a test's files could
// fill (and a full tmpfs fails a test that a disk would pass).
const shmMinFree = 256 << 20

// FastTempDir returns a directory for the test, removed when it ends: on
// /dev/shm if there is one with shmMinFree bytes free (a tmpfs: its
// fsyncs cost nothing, and its files are opened and mapped as a disk's
// are), else t.TempDir(). For a test on the OS file system whose time
// was its fsyncs, and whose subject is not the disk's.
//
// A directory on /dev/shm outlives a test process that is killed (a
// timeout, a crash, a kill -9), and holds its memory until removed: so
// the first FastTempDir of each process removes the directories that
// killed processes left there (see shmTempDir).
func FastTempDir(t testing.TB) string {
	t.Helper()
	if dir, ok := shmTempDir(t); ok {
		return dir
	}
	return t.TempDir()
}
