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
	err = dirSyncErr(d.Sync())
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// dirSyncErr is what SyncDir makes of the error of a directory's fsync.
// Some file systems cannot sync a directory and refuse with EINVAL, as
// fsync(2) does for a descriptor that "does not support synchronization":
// SMB and other network shares (WSL's drvfs among them), some FUSE file
// systems. There a directory's entries are as durable as the file system
// makes them, and failing would keep runnel from running on them at all;
// PostgreSQL, SQLite and goleveldb take that answer as success too. Any
// other error (EIO, ENOSPC, ...) is the directory's and is returned.
func dirSyncErr(err error) error {
	if errors.Is(err, syscall.EINVAL) {
		return nil
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
