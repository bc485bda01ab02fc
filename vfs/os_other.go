//go:build !unix && !windows

package vfs

import (
	"errors"
	"os"
	"syscall"
)

// isNameTooLong reports whether err, the Err of an error of package os
// about names, says that a name was too long.
func isNameTooLong(err error, _ ...string) bool {
	return errors.Is(err, syscall.ENAMETOOLONG)
}

// On platforms with neither unix nor Windows calls (wasip1, plan9) the OS FS
// works without directory sync, locking or mapping.

func syncDir(string) error { return nil }

func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) error { return nil }

func mapFile(f *os.File, _ int) (*Mapping, error) {
	return nil, &os.PathError{Op: "mmap", Path: f.Name(), Err: ErrNotSupported}
}

// lockName is the name Lock opens for name (see os_unix.go).
func lockName(name string) string { return name }
