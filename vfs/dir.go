package vfs

import (
	"errors"
	"os"
	"path/filepath"
)

// MkdirAllDurable creates dir and its missing parents with perm, as
// fsys.MkdirAll does, one at a time, outermost first, syncing the parent
// of each it creates (SyncDir) before it creates the next, so that none of
// them vanishes in a crash. A dir that exists already is left as it is and
// synced nothing. When a sync fails, the directory it was to make durable
// is removed again (it is empty: the ones below it are not created yet),
// so that a retry creates and syncs it instead of finding it there and
// taking it for durable.
//
// Errors: fsys's errors from Stat (other than a missing directory),
// MkdirAll, SyncDir and Remove (a failed sync's, joined with the removal's
// when that fails too).
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
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := fsys.MkdirAll(d, perm); err != nil {
			return err
		}
		if err := fsys.SyncDir(filepath.Dir(d)); err != nil {
			return errors.Join(err, fsys.Remove(d))
		}
	}
	return nil
}
