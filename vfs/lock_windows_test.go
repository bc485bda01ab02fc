//go:build windows

package vfs

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/windows"
)

// TestLockCloseUnlocks: closing a Lock releases the lock when Close
// returns, also while another handle of the same open file is still
// there (a duplicate, here; a tool that duplicated it). Windows releases
// the lock of a handle closed with it held only once the open file's last
// handle is gone, and then when it gets to it: LockFileEx's documentation
// says the time it takes "depends upon available system resources" and
// asks that a process unlock explicitly. Before, Close only closed its
// handle: with the duplicate open, the next Open of the directory was
// refused (ErrLocked) until it was closed too.
func TestLockCloseUnlocks(t *testing.T) {
	name := filepath.Join(t.TempDir(), "runnel.lock")
	l, err := OS.Lock(name)
	require.NoError(t, err)
	h := windows.Handle(l.(*osLock).f.Fd())
	self := windows.CurrentProcess()
	var dup windows.Handle
	require.NoError(t, windows.DuplicateHandle(self, h, self, &dup, 0, false, windows.DUPLICATE_SAME_ACCESS))
	defer windows.CloseHandle(dup)

	require.NoError(t, l.Close())
	l, err = OS.Lock(name)
	require.NoError(t, err, "free once Close has returned")
	require.NoError(t, l.Close())
}
