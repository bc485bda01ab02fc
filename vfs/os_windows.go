//go:build windows

package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf16"

	"golang.org/x/sys/windows"
)

// openFile opens a file of the OS FS as os.OpenFile does, but sharing
// delete access (FILE_SHARE_DELETE) besides read and write, so that the
// file can be renamed or removed while it is open, as on unix systems:
// os.OpenFile does not share delete access, and a rename or remove of a
// file it has open fails with ERROR_SHARING_VIOLATION. It takes the flags
// the OS FS uses (O_RDONLY, O_RDWR, O_CREATE, O_TRUNC); the handle is not
// inherited by child processes, as os.OpenFile's is not. A name too long
// for the Win32 layer is passed with the \\?\ prefix, as package os
// does. Errors are those of os.OpenFile: an *os.PathError with Op "open".
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(longPath(name))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	access := uint32(windows.GENERIC_READ)
	if flag&(os.O_RDWR|os.O_WRONLY) != 0 {
		access |= windows.GENERIC_WRITE
	}
	disposition := uint32(windows.OPEN_EXISTING)
	if flag&os.O_CREATE != 0 {
		disposition = windows.OPEN_ALWAYS
	}
	attrs := uint32(windows.FILE_ATTRIBUTE_NORMAL)
	if perm&0o200 == 0 && flag&os.O_CREATE != 0 {
		attrs = windows.FILE_ATTRIBUTE_READONLY
	}
	h, err := windows.CreateFile(p, access,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, disposition, attrs, 0)
	if err != nil {
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			// As os.OpenFile: a directory opened for writing.
			if fa, aerr := windows.GetFileAttributes(p); aerr == nil && fa&windows.FILE_ATTRIBUTE_DIRECTORY != 0 {
				err = syscall.EISDIR
			}
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(h), name)
	if flag&os.O_TRUNC != 0 {
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, &fs.PathError{Op: "open", Path: name, Err: pathErrErr(err)}
		}
	}
	return f, nil
}

// longPath returns name with the \\?\ prefix when it is too long for
// the Win32 layer's MAX_PATH (package os adds it from 248 characters, the
// longest directory name Windows takes): the absolute, cleaned path, or
// \\?\UNC\ for a network share. Other names are returned as they are.
func longPath(name string) string {
	if len(name) < 248 || strings.HasPrefix(name, `\\?\`) || strings.HasPrefix(name, `\\.\`) {
		return name
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return name
	}
	if strings.HasPrefix(abs, `\\`) {
		return `\\?\UNC\` + abs[2:]
	}
	return `\\?\` + abs
}

// pathErrErr returns the Err of an *fs.PathError, or err.
func pathErrErr(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// isNameTooLong reports whether err, the Err of an error of package os
// about the given names, says that a name was too long. Windows reports
// ERROR_FILENAME_EXCED_RANGE for a path too long for the Win32 layer, but
// NTFS reports a component longer than 255 UTF-16 code units as an
// invalid name (STATUS_OBJECT_NAME_INVALID, ERROR_INVALID_NAME), as it
// does a name with a character it refuses: that one counts only when a
// component of a name is in fact that long.
func isNameTooLong(err error, names ...string) bool {
	if errors.Is(err, windows.ERROR_FILENAME_EXCED_RANGE) {
		return true
	}
	return errors.Is(err, windows.ERROR_INVALID_NAME) && slices.ContainsFunc(names, hasLongComponent)
}

// hasLongComponent reports whether a component of name is longer than 255
// UTF-16 code units, which NTFS does not accept.
func hasLongComponent(name string) bool {
	for _, c := range strings.FieldsFunc(name, func(r rune) bool { return r == '\\' || r == '/' }) {
		n := 0
		for _, r := range c {
			n += utf16.RuneLen(r)
		}
		if n > 255 {
			return true
		}
	}
	return false
}

// syncDir is a no-op on Windows, which has no documented way to flush a
// directory: FlushFileBuffers is documented for files and volumes (a
// volume handle needs administrator rights), and on a directory handle
// (opened with FILE_FLAG_BACKUP_SEMANTICS) it is reported to fail with
// ERROR_ACCESS_DENIED. NTFS journals the change of a directory entry, but
// commits its journal lazily: a file created, renamed or removed just
// before a power loss may come back as it was, SyncDir or not. (A later
// FlushFileBuffers of a file changed after it may commit it with the
// journal; nothing documents that either.) The durability that the package
// comment promises for directory entries is therefore weaker on Windows.
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

// unlockFile releases lockFile's lock on f. Closing f's handle would
// release it too, but only once the open file's last handle is gone (a
// duplicate keeps it), and then when Windows gets to it: LockFileEx's
// documentation says that time "depends upon available system resources"
// and asks processes to unlock explicitly, as Go's cmd/go does.
func unlockFile(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, new(windows.Overlapped))
}

// mapFile is not offered on Windows; the index falls back to ReadAt/WriteAt.
func mapFile(f *os.File, _ int) (*Mapping, error) {
	return nil, &os.PathError{Op: "mmap", Path: f.Name(), Err: ErrNotSupported}
}

// busyRetryFor bounds how long retryBusy retries, as Go's own tools
// (cmd/internal/robustio) retry such errors for up to 2 s.
const busyRetryFor = 500 * time.Millisecond

// testHookBusyRetry, when set (by tests), runs before each retry of
// retryBusy, with the error it retries.
var testHookBusyRetry func(error)

// retryBusy runs a removal or rename of the OS FS, and again, with a
// growing pause, while it fails with an error that another program's
// handle gives for a moment — a virus scanner or a search indexer that
// opened the file without sharing delete access (ERROR_SHARING_VIOLATION,
// ERROR_ACCESS_DENIED, ERROR_LOCK_VIOLATION) — for up to busyRetryFor.
// Then it returns the last error: a removal that fails fences a log, so a
// moment's wait is worth it. (ERROR_ACCESS_DENIED is also a lasting
// refusal, such as a read-only file: that is reported busyRetryFor late.)
func retryBusy(op func() error) error {
	deadline := time.Now().Add(busyRetryFor)
	pause := time.Millisecond
	for {
		err := op()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		if testHookBusyRetry != nil {
			testHookBusyRetry(err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// isBusy reports whether err is one that another program's open handle
// gives a removal or rename (see retryBusy).
func isBusy(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case windows.ERROR_SHARING_VIOLATION, windows.ERROR_ACCESS_DENIED, windows.ERROR_LOCK_VIOLATION:
		return true
	}
	return false
}

// lockName is the name Lock opens for name: name itself. Windows locks
// the file, which NTFS and FAT find under any case of its name (see
// os_unix.go for FUSE's file systems).
func lockName(name string) string { return name }
