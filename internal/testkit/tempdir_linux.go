package testkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// shmDir is where FastTempDir puts its directories when it can.
const shmDir = "/dev/shm"

// shmPrefix begins the name of each directory shmTempDir makes, which
// goes on with the process id and a random number: runnel-test-<pid>-<n>.
// The process id is for people (whose directory it is); what tells
// reclaimShm that a directory's process is gone is its lock.
const shmPrefix = "runnel-test-"

// shmReclaimOnce runs reclaimShm once a process, at its first
// FastTempDir on /dev/shm.
var shmReclaimOnce sync.Once

// shmFree returns the bytes free to an unprivileged user in the file
// system at dir, and whether dir is a directory there to ask.
func shmFree(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}

// shmTempDir makes a directory for t on /dev/shm and reports true, or
// reports false where there is no /dev/shm with shmMinFree bytes free
// (after reclaimShm has removed what killed processes left there: the
// room they held counts). The directory is locked (flock) until t's
// cleanup has removed it: a process that is killed first leaves it
// unlocked, which is how reclaimShm knows it for a leftover.
func shmTempDir(t testing.TB) (string, bool) {
	t.Helper()
	if _, ok := shmFree(shmDir); !ok {
		return "", false
	}
	shmReclaimOnce.Do(func() { reclaimShm(shmDir) })
	if free, _ := shmFree(shmDir); free < shmMinFree {
		return "", false
	}
	dir, lock, err := lockedTempDir(shmDir)
	if err != nil {
		return "", false
	}
	t.Cleanup(func() {
		os.RemoveAll(dir)
		lock.Close() // only now: a directory is never unlocked while its process uses it
	})
	return dir, true
}

// lockedTempDir makes a directory runnel-test-<pid>-<n> in root and
// returns it with the open directory that holds its exclusive flock,
// which the caller closes once it has removed the directory. The lock
// is taken after the directory is made: a reclaimShm of another process
// may lock it in between and remove it, which lockedTempDir finds (its
// path no longer names the directory it locked) and so makes another.
func lockedTempDir(root string) (string, *os.File, error) {
	for range 3 {
		dir, err := os.MkdirTemp(root, fmt.Sprintf("%s%d-", shmPrefix, os.Getpid()))
		if err != nil {
			return "", nil, err
		}
		f, err := os.Open(dir)
		if err != nil {
			continue // removed already
		}
		// Blocking: a reclaimShm that holds the lock removes dir and lets
		// it go, and then the check below sees that dir has gone.
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			os.Remove(dir)
			return "", nil, err
		}
		if samePath(f, dir) {
			return dir, f, nil
		}
		f.Close()
	}
	return "", nil, errors.New("testkit: the directories made on " + root + " were each removed before they could be locked")
}

// reclaimShm removes the directories in root that shmTempDir made and
// whose process was killed before its tests' cleanups ran: each one
// named runnel-test-<pid>-<n> that nobody holds the lock of. A live
// process holds the lock of each of its directories, so no directory in
// use is removed: not one of another test binary running at the same
// time (go test ./... runs several), nor one of a process in another
// pid namespace sharing /dev/shm, nor one whose pid was reused (the
// lock belongs to the open directory, not to the pid). A directory
// named otherwise (the runnel-test-<n> of a FastTempDir from before the
// lock, which may still be in use) is left alone, as is anything it
// cannot open or lock.
func reclaimShm(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() && isShmTempName(e.Name()) {
			reclaimDir(filepath.Join(root, e.Name()))
		}
	}
}

// reclaimDir removes dir if it can take its lock, which it holds while
// it removes it (a lockedTempDir that has just made dir waits for it,
// then sees dir gone).
func reclaimDir(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return // held: its process lives (or the lock failed: leave it)
	}
	if samePath(f, dir) {
		os.RemoveAll(dir)
	}
}

// samePath reports whether the path dir names the directory f has open.
func samePath(f *os.File, dir string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(dir)
	return err == nil && os.SameFile(fi, pi)
}

// isShmTempName reports whether name is runnel-test-<pid>-<n>, as
// lockedTempDir names its directories.
func isShmTempName(name string) bool {
	rest, ok := strings.CutPrefix(name, shmPrefix)
	if !ok {
		return false
	}
	pid, n, ok := strings.Cut(rest, "-")
	return ok && pid != "" && strings.Trim(pid, "0123456789") == "" && n != ""
}
