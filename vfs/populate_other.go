//go:build !linux

package vfs

// populate does nothing here (see populate_linux.go): the memory is
// touched a page at a time as it is first written.
func populate([]byte) {}
