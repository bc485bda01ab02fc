package runnel

import (
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// dirOf returns the dir= of the lines of msg in o, in order.
func dirOf(o *levelLines, msg string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var dirs []string
	for _, r := range o.lines {
		if r.Message != msg {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "dir" {
				dirs = append(dirs, a.Value.String())
			}
			return true
		})
	}
	return dirs
}

// TestStrayFaultLinesNameTheDirectory: the Warn lines of removeStrays'
// failures give dir= as TestStrayDirLinesNameTheDirectory's lines do
// (d15393c): a stray's removal that fails names the stray's path, and a
// failed sync of the data directory, or a failed listing of it, names the
// data directory. None of the three was checked.
func TestStrayFaultLinesNameTheDirectory(t *testing.T) {
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	dir := strayDir(t, mem)
	data := filepath.Clean("/data") // as the FS is asked: \data on Windows
	for _, tc := range []struct {
		msg  string
		want string
		hit  func(op vfs.Op, name string) bool
	}{
		{"removing a stray partition directory", dir, func(op vfs.Op, name string) bool {
			return op == vfs.OpRemove && filepath.Clean(name) == filepath.Clean(dir)
		}},
		{"keeping a stray partition directory that holds records: left as it is", dir, func(op vfs.Op, name string) bool {
			return op == vfs.OpStat && filepath.Dir(name) == dir // holdsRecords cannot tell: kept
		}},
		{"listing the data directory for stray partitions", "/data", func(op vfs.Op, name string) bool {
			return op == vfs.OpList && filepath.Clean(name) == data
		}},
		{"syncing the data directory", "/data", func(op vfs.Op, name string) bool {
			if op != vfs.OpSyncDir || filepath.Clean(name) != data {
				return false
			}
			_, err := mem.Stat(dir)
			return errors.Is(err, fs.ErrNotExist) // once the stray is removed
		}},
	} {
		t.Run(tc.msg, func(t *testing.T) {
			if _, err := mem.Stat(dir); err != nil {
				dir = strayDir(t, mem)
			}
			faulty := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if tc.hit(op, name) {
					return errInjectedFault
				}
				return nil
			}))
			var o levelLines
			b, err := Open(Config{Dir: "/data", FS: faulty, Logger: o.logger()})
			if err == nil {
				require.NoError(t, b.Close())
			}
			require.Equal(t, []string{tc.want}, dirOf(&o, tc.msg))
		})
	}
}
