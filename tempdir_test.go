package runnel

import (
	"testing"

	"github.com/runnel/runnel/internal/testkit"
)

// fastTempDir is testkit.FastTempDir: a directory on /dev/shm where there
// is room, else t.TempDir().
func fastTempDir(t *testing.T) string {
	t.Helper()
	return testkit.FastTempDir(t)
}
