package vfs

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// populate asks the kernel to back b's whole pages with memory now, in
// one call, rather than a page fault at a time as they are first written
// (madvise(2) MADV_POPULATE_WRITE). Nothing in b changes. It is only a
// speed-up: where the kernel cannot, nothing happens.
func populate(b []byte) {
	if len(b) == 0 || populateBroken.Load() {
		return
	}
	const page = 4096
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	skip := int((page - addr%page) % page)
	n := (len(b) - skip) &^ (page - 1)
	if skip >= len(b) || n <= 0 {
		return
	}
	if err := unix.Madvise(b[skip:skip+n], unix.MADV_POPULATE_WRITE); err != nil {
		populateBroken.Store(true)
	}
}
