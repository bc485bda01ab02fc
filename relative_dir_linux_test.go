package runnel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOpenRelativeDirWithoutWorkingDir: Open makes a relative Dir
// absolute (as Kafka's log dirs) before it touches the disk; when the
// process's working directory cannot be named (it was removed), Open
// fails with an error that names the Dir, rather than lock and fill a
// directory that the working directory's path no longer leads to.
// (Linux: a process may stand in a removed directory there.)
func TestOpenRelativeDirWithoutWorkingDir(t *testing.T) {
	gone := filepath.Join(t.TempDir(), "gone")
	require.NoError(t, os.Mkdir(gone, 0o755))
	t.Chdir(gone)
	require.NoError(t, os.Remove(gone))
	if _, err := os.Getwd(); err == nil {
		t.Skip("the working directory, removed, still has a name here")
	}
	b, err := Open(Config{Dir: "data"})
	if err == nil {
		b.Close()
	}
	require.Error(t, err)
	require.Contains(t, err.Error(), "runnel: opening data")
}
