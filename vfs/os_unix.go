//go:build unix

package vfs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// isNameTooLong reports whether err, the Err of an error of package os
// about names, says that a name was too long.
func isNameTooLong(err error, _ ...string) bool {
	return errors.Is(err, syscall.ENAMETOOLONG)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = dirSyncErr(d.Sync())
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// dirSyncErr is what SyncDir makes of the error of a directory's fsync.
// Some file systems cannot sync a directory and refuse with EINVAL, as
// fsync(2) does for a descriptor that "does not support synchronization":
// SMB and other network shares (WSL's drvfs among them), some FUSE file
// systems. There a directory's entries are as durable as the file system
// makes them, and failing would keep runnel from running on them at all;
// PostgreSQL, SQLite and goleveldb take that answer as success too. Any
// other error (EIO, ENOSPC, ...) is the directory's and is returned.
func dirSyncErr(err error) error {
	if errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}

func mapFile(f *os.File, length int) (*Mapping, error) {
	if length <= 0 {
		return &Mapping{data: []byte{}, unmap: func([]byte) error { return nil }}, nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, length, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: f.Name(), Err: err}
	}
	return &Mapping{data: b, unmap: unix.Munmap}, nil
}

// lockName is the name Lock opens for name: name, or on a FUSE file
// system name respelled as its directories spell it (respell). On a
// case-insensitive file system, "Data/runnel.lock" and "data/runnel.lock"
// are one file; but a FUSE file system that numbers its files by the
// name they were looked up by (exfat-fuse, and others built on libfuse's
// high-level API) gives the two spellings two inode numbers, and flock(2)
// two locks, so that two brokers given the directory in two cases would
// both run on it. Spelled as their entries are, the two are one name, one
// inode, one lock. Other file systems find one inode under every
// spelling, and are spared respell's listings.
func lockName(name string) string {
	if !fuse(filepath.Dir(name)) {
		return name
	}
	return respell(name)
}

// respell returns name with each element that its directory holds in
// another case only spelled as the directory spells it. An element that
// is there as given is kept (a case-sensitive file system may hold both
// spellings), as are the elements from the first that is not there, or
// whose directory cannot be listed or holds no entry, or several, that
// differ from it in case only. A name with nothing respelled is returned
// as given.
func respell(name string) string {
	abs, err := filepath.Abs(name)
	if err != nil {
		return name
	}
	parts := strings.Split(abs, string(filepath.Separator))
	dir := string(filepath.Separator)
	respelled := false
	for i, p := range parts {
		if p == "" {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			break // not there (in any case): nothing to spell
		}
		names, err := osFS{}.List(dir)
		if err != nil {
			break
		}
		if !slices.Contains(names, p) {
			match := ""
			for _, n := range names {
				if strings.EqualFold(n, p) {
					if match != "" {
						match = ""
						break
					}
					match = n
				}
			}
			if match == "" {
				break
			}
			parts[i] = match
			respelled = true
		}
		dir = filepath.Join(dir, parts[i])
	}
	if !respelled {
		return name
	}
	return filepath.Join(string(filepath.Separator), filepath.Join(parts...))
}
