package vfs

import (
	"io/fs"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMkdirAllDurableNothingThere: MkdirAllDurable on a file
// system whose Stat finds nothing, not even the root, stops its walk up
// at the root (filepath.Dir of it is itself) and creates every element.
func TestMkdirAllDurableNothingThere(t *testing.T) {
	for _, dir := range []string{"/a/b", "a/b"} {
		mem := NewMem()
		fsys := WithFaults(mem, InjectorFunc(func(op Op, _ string) error {
			if op == OpStat {
				return fs.ErrNotExist
			}
			return nil
		}))
		require.NoError(t, MkdirAllDurable(fsys, dir, 0o755), dir)
		fi, err := mem.Stat(dir)
		require.NoError(t, err, dir)
		require.True(t, fi.IsDir(), dir)
	}
}
