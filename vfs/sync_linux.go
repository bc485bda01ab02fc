package vfs

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// syncData makes f's data durable with fdatasync(2): the data and the
// metadata needed to read it back (its size, after an append or a
// truncation), without the timestamps that fsync(2) also writes, one
// journal commit fewer on ext4. etcd's WAL and PostgreSQL (the default
// wal_sync_method on Linux) sync their logs the same way.
func syncData(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return f.Sync() // its error
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if serr = unix.Fdatasync(int(fd)); !errors.Is(serr, unix.EINTR) {
				return
			}
		}
	}); err != nil {
		return f.Sync() // closed: the error os gives (fs.ErrClosed)
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
