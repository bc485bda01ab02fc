//go:build windows

package vfs

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// syncDir is a no-op on Windows: directories cannot be opened for flushing,
// and NTFS journals its metadata.
func syncDir(string) error { return nil }

func lockFile(f *os.File) error {
	ol := new(windows.Overlapped)
	err := windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return ErrLocked
	}
	return err
}

// mapFile is not offered on Windows; the index falls back to ReadAt/WriteAt.
func mapFile(f *os.File, _ int) (*Mapping, error) {
	return nil, &os.PathError{Op: "mmap", Path: f.Name(), Err: ErrNotSupported}
}
