package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMemErrorsAsLinux: the MemFS, the in-memory broker's storage
// and the crash model, fails Remove and Rename of names through a file,
// through a missing directory, and of a directory not empty, as Linux
// does: the same error type, op, fs sentinel match (fs.ErrNotExist,
// fs.ErrExist, fs.ErrInvalid) and, where MemFS's cause is no such
// sentinel, the errno's message (ENOTDIR's "not a directory", ENOTEMPTY's
// "directory not empty"). It also reaches MemFS's own checks of the
// directories on the way (walk, parentDir), which resolve otherwise
// spares them by failing such names first, under the same lock.
func TestMemErrorsAsLinux(t *testing.T) {
	setup := func(t *testing.T, fsys FS, root string) {
		t.Helper()
		require.NoError(t, fsys.MkdirAll(filepath.Join(root, "d", "sub"), 0o755))
		f, err := fsys.Create(filepath.Join(root, "f"))
		require.NoError(t, err)
		require.NoError(t, f.Close())
		g, err := fsys.Create(filepath.Join(root, "g"))
		require.NoError(t, err)
		require.NoError(t, g.Close())
	}
	ops := []struct {
		name string
		do   func(fsys FS, root string) error
	}{
		{"remove f/x", func(fsys FS, r string) error { return fsys.Remove(filepath.Join(r, "f", "x")) }},
		{"remove f/x/y", func(fsys FS, r string) error { return fsys.Remove(filepath.Join(r, "f", "x", "y")) }},
		{"remove missing/x", func(fsys FS, r string) error { return fsys.Remove(filepath.Join(r, "missing", "x")) }},
		{"remove d (not empty)", func(fsys FS, r string) error { return fsys.Remove(filepath.Join(r, "d")) }},
		{"rename f/x g", func(fsys FS, r string) error {
			return fsys.Rename(filepath.Join(r, "f", "x"), filepath.Join(r, "g"))
		}},
		{"rename g f/x", func(fsys FS, r string) error {
			return fsys.Rename(filepath.Join(r, "g"), filepath.Join(r, "f", "x"))
		}},
		{"rename g f/x/y", func(fsys FS, r string) error {
			return fsys.Rename(filepath.Join(r, "g"), filepath.Join(r, "f", "x", "y"))
		}},
		{"rename missing/x g", func(fsys FS, r string) error {
			return fsys.Rename(filepath.Join(r, "missing", "x"), filepath.Join(r, "g"))
		}},
		{"rename g missing/x", func(fsys FS, r string) error {
			return fsys.Rename(filepath.Join(r, "g"), filepath.Join(r, "missing", "x"))
		}},
		{"rename f/ h", func(fsys FS, r string) error {
			return fsys.Rename(filepath.Join(r, "f")+"/", filepath.Join(r, "h"))
		}},
		{"rename d/sub d (not empty)", func(fsys FS, r string) error {
			return fsys.Rename(filepath.Join(r, "d", "sub"), filepath.Join(r, "d"))
		}},
	}
	cause := func(err error) error {
		var pe *os.PathError
		var le *os.LinkError
		switch {
		case errors.As(err, &pe):
			return pe.Err
		case errors.As(err, &le):
			return le.Err
		}
		return err
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			dir := t.TempDir()
			setup(t, OS, dir)
			mem := NewMem()
			setup(t, mem, "/r")
			oerr, merr := op.do(OS, dir), op.do(mem, "/r")
			require.Error(t, oerr)
			require.Error(t, merr)
			require.IsType(t, oerr, merr)
			var ope, mpe *os.PathError
			if errors.As(oerr, &ope) && errors.As(merr, &mpe) {
				require.Equal(t, ope.Op, mpe.Op)
			}
			for _, target := range []error{fs.ErrNotExist, fs.ErrExist, fs.ErrInvalid} {
				require.Equal(t, errors.Is(oerr, target), errors.Is(merr, target), "matching %v: OS %v, MemFS %v", target, oerr, merr)
			}
			if c := cause(merr); c != fs.ErrNotExist && c != fs.ErrExist && c != fs.ErrInvalid {
				// No fs sentinel: the message is the errno's.
				require.Equal(t, cause(oerr).Error(), c.Error(), "OS %v, MemFS %v", oerr, merr)
			}
		})
	}
}
