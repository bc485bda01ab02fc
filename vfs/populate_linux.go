package vfs

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pageSize is the kernel's page size: 4 KiB on most, 16 or 64 KiB on some
// arm64 and ppc64 kernels.
var pageSize = uintptr(os.Getpagesize())

// populate asks the kernel to back b's whole pages with memory now, in
// one call, rather than a page fault at a time as they are first written
// (madvise(2) MADV_POPULATE_WRITE). Nothing in b changes. It is only a
// speed-up: where the kernel cannot, nothing happens. A kernel without
// the advice (before Linux 5.14: EINVAL), or that forbids it, turns it
// off for the process; another failure (ENOMEM) only for this call.
func populate(b []byte) {
	if len(b) == 0 || populateBroken.Load() {
		return
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	skip := int((pageSize - addr%pageSize) % pageSize)
	if skip >= len(b) {
		return
	}
	n := (len(b) - skip) &^ int(pageSize-1)
	if n <= 0 {
		return
	}
	err := unix.Madvise(b[skip:skip+n], unix.MADV_POPULATE_WRITE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		populateBroken.Store(true)
	}
}
