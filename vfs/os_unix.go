//go:build unix

package vfs

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// isNameTooLong reports whether err, the Err of an error of package os
// about names, says that a name was too long.
func isNameTooLong(err error, _ ...string) bool {
	return errors.Is(err, syscall.ENAMETOOLONG)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func lockFile(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return ErrLocked
	}
	return err
}

func mapFile(f *os.File, length int) (*Mapping, error) {
	if length <= 0 {
		return &Mapping{data: []byte{}, unmap: func([]byte) error { return nil }}, nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, length, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: f.Name(), Err: err}
	}
	return &Mapping{data: b, unmap: unix.Munmap}, nil
}
