package vfs

import (
	"errors"
	"io/fs"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLockChecksTheNameFirst: Lock opens (creates) the file before it
// takes the lock, so that a name that cannot be opened fails with the
// open's error, even when a lock is held under that name: here the
// lock's directory was removed under it. MemFS said ErrLocked.
func TestLockChecksTheNameFirst(t *testing.T) {
	for _, tc := range []struct {
		name  string
		newFS func(t *testing.T) (FS, string)
	}{
		{"OS", func(t *testing.T) (FS, string) { return OS, t.TempDir() }},
		{"Mem", func(t *testing.T) (FS, string) { return NewMem(), "/data" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, root := tc.newFS(t)
			if tc.name == "OS" && runtime.GOOS == "windows" {
				t.Skip("Windows does not remove a directory with a file open in it")
			}
			dir := filepath.Join(root, "d")
			require.NoError(t, fsys.MkdirAll(dir, 0o755))
			name := filepath.Join(dir, "LOCK")
			l, err := fsys.Lock(name)
			require.NoError(t, err)
			defer l.Close()
			if err := fsys.RemoveAll(dir); tc.name == "OS" && errors.Is(err, syscall.ENOTEMPTY) {
				// A FUSE file system (exfat-fuse, ntfs-3g, sshfs) keeps
				// a removed file that is open under a hidden name
				// (.fuse_hidden...) until it is closed.
				t.Skipf("the file system keeps the open lock file's directory: %v", err)
			} else {
				require.NoError(t, err)
			}

			_, err = fsys.Lock(name)
			require.ErrorIs(t, err, fs.ErrNotExist)
			require.NotErrorIs(t, err, ErrLocked)
		})
	}
}
