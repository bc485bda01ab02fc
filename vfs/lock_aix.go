//go:build aix

package vfs

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes fcntl(2)'s exclusive lock on the whole of f, without
// waiting: AIX has no flock(2). The lock belongs to the process, and
// closing any descriptor of the file releases it: the table of held files
// keeps a second Lock in this process out without opening the file (see
// held).
func lockFile(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return ErrLocked
	}
	return err
}

// unlockFile does nothing: closing any descriptor of the file releases
// fcntl's lock.
func unlockFile(*os.File) error { return nil }
