//go:build unix

package vfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRespell: respell (lockName's, on FUSE) respells an element only where the directory
// holds it in another case alone, as a case-insensitive file system finds
// it. On a case-sensitive one (where the tests usually run) it changes
// nothing: a name that is there stays (also beside one that differs in
// case only), and so does one that is not (its directory is not another
// case's). TestLockDirInAnotherCase, of package runnel, runs the lock on
// exFAT.
func TestRespell(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "Data"), 0o755))
	kept := filepath.Join(dir, "Data", "runnel.lock")
	other := filepath.Join(dir, "DATA", "runnel.lock")
	require.Equal(t, kept, respell(kept))
	missing := filepath.Join(dir, "nodir", "runnel.lock")
	require.Equal(t, missing, respell(missing))
	if _, err := os.Stat(filepath.Dir(other)); err == nil {
		t.Log("a case-insensitive file system")
		require.Equal(t, kept, respell(other))
		return
	}
	require.Equal(t, other, respell(other))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "data"), 0o755))
	lower := filepath.Join(dir, "data", "runnel.lock")
	require.Equal(t, lower, respell(lower))
	require.Equal(t, kept, respell(kept))
}
