package testkit

import "golang.org/x/sys/unix"

// shmFree returns the bytes free to an unprivileged user in the file
// system at dir, and whether dir is a directory there to ask.
func shmFree(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
