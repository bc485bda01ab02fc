//go:build unix

package vfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLockName: lockName respells an element only where the directory
// holds it in another case alone, as a case-insensitive file system finds
// it. On a case-sensitive one (where the tests usually run) it changes
// nothing: a name that is there stays (also beside one that differs in
// case only), and so does one that is not (its directory is not another
// case's). TestLockDirInAnotherCase, of package runnel, runs the lock on
// exFAT.
func TestLockName(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "Data"), 0o755))
	kept := filepath.Join(dir, "Data", "runnel.lock")
	other := filepath.Join(dir, "DATA", "runnel.lock")
	require.Equal(t, kept, lockName(kept))
	missing := filepath.Join(dir, "nodir", "runnel.lock")
	require.Equal(t, missing, lockName(missing))
	if _, err := os.Stat(filepath.Dir(other)); err == nil {
		t.Log("a case-insensitive file system")
		require.Equal(t, kept, lockName(other))
		return
	}
	require.Equal(t, other, lockName(other))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "data"), 0o755))
	lower := filepath.Join(dir, "data", "runnel.lock")
	require.Equal(t, lower, lockName(lower))
	require.Equal(t, kept, lockName(kept))
}
