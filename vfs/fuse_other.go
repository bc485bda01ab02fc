//go:build unix && !linux

package vfs

// fuse reports whether dir may be on a FUSE file system (see lockName):
// here, not knowing the file system's kind, always.
func fuse(string) bool { return true }
