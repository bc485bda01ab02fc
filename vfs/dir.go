package vfs

import (
	"errors"
	"os"
	"path/filepath"
)

// MkdirAllDurable creates dir and its missing parents with perm, as
// fsys.MkdirAll does, and then syncs the parent of each directory it
// created (SyncDir), outermost first, so that none of them vanishes in a
// crash. A dir that exists already is left as it is and synced nothing.
//
// Errors: fsys's errors from Stat (other than a missing directory),
// MkdirAll and SyncDir.
func MkdirAllDurable(fsys FS, dir string, perm os.FileMode) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := fsys.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir, perm); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fsys.SyncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}
