package testkit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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

// shmYoung is how recently a directory of lockedTempDir's may have
// changed and reclaimShm still leave it alone, locked or not:
// lockedTempDir makes its directory, then locks it, and a reclaim of
// another process between the two would remove it from under it. With
// it, a reclaim takes no directory lockedTempDir is about to lock (but
// one whose process stalled for shmYoung between the two calls, which it
// finds and replaces); a killed process's directory waits for the first
// FastTempDir at least shmYoung after its last change.
const shmYoung = time.Minute

// shmOldAge is how long nothing in a runnel-test-<n> directory, named as
// FastTempDir named them before the lock (until 2026-12-07), must have
// changed for reclaimShm to remove it. It has no lock to tell whether
// its process lives; but it was made at the start of one test, and a
// directory's times are never before its making, so one that nothing
// has touched for a day is no live test's: go test ends a test binary
// at its -timeout, 10 minutes by default.
const shmOldAge = 24 * time.Hour

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
	shmReclaimOnce.Do(func() { reclaimShm(shmDir, time.Now()) })
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
// leaves a directory so young alone (see shmYoung), but should this
// process stall between the two for longer, the reclaim may lock it and
// remove it, which lockedTempDir finds (its path no longer names the
// directory it locked) and so makes another.
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
// whose process was killed before its tests' cleanups ran, as of now:
// each one named runnel-test-<pid>-<n> that nobody holds the lock of and
// that has not changed for shmYoung. A live process holds the lock of
// each of its directories, so no directory in use is removed: not one
// of another test binary running at the same time (go test ./... runs
// several), nor one of a process in another pid namespace sharing
// /dev/shm, nor one whose pid was reused (the lock belongs to the open
// directory, not to the pid), nor one just made and not yet locked. A
// runnel-test-<n> of a FastTempDir from before the lock goes once
// nothing in it has changed for shmOldAge. Anything else is left alone,
// as is anything it cannot open, read or lock.
func reclaimShm(root string, now time.Time) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		switch {
		case !e.IsDir():
		case isShmTempName(e.Name()):
			reclaimDir(filepath.Join(root, e.Name()), now)
		case isOldShmTempName(e.Name()):
			reclaimOld(filepath.Join(root, e.Name()), now)
		}
	}
}

// reclaimDir removes dir if it has not changed for shmYoung and it can
// take its lock, which it holds while it removes it (a lockedTempDir
// that stalled after it made dir waits for it, then sees dir gone).
func reclaimDir(dir string, now time.Time) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || now.Sub(fi.ModTime()) < shmYoung {
		return // maybe made a moment ago, and about to be locked
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return // held: its process lives (or the lock failed: leave it)
	}
	if samePath(f, dir) {
		os.RemoveAll(dir)
	}
}

// reclaimOld removes dir, a runnel-test-<n> of a FastTempDir from
// before the lock, if neither it nor anything in it has changed for
// shmOldAge (see there).
func reclaimOld(dir string, now time.Time) {
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if now.Sub(fi.ModTime()) < shmOldAge {
			return errRecent
		}
		return nil
	})
	if err == nil {
		os.RemoveAll(dir)
	}
}

// errRecent ends reclaimOld's walk at a file changed too recently.
var errRecent = errors.New("changed recently")

// samePath reports whether the path dir names the directory f has open.
func samePath(f *os.File, dir string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(dir)
	return err == nil && os.SameFile(fi, pi)
}

// isOldShmTempName reports whether name is runnel-test-<n>, as
// FastTempDir named its directories before the lock.
func isOldShmTempName(name string) bool {
	n, ok := strings.CutPrefix(name, shmPrefix)
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
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
