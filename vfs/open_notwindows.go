//go:build !windows

package vfs

import "os"

// openFile opens a file of the OS FS: os.OpenFile (see os_windows.go for
// Windows, which needs delete sharing).
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}

// retryBusy runs a removal or rename of the OS FS: once (see
// os_windows.go for Windows, where another program's handle can refuse it
// for a moment).
func retryBusy(op func() error) error { return op() }
