package vfs

import "golang.org/x/sys/unix"

// fuse reports whether dir is on a FUSE file system (see lockName).
func fuse(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.FUSE_SUPER_MAGIC
}
