package vfs

import (
	"io"
	"os"
	"sort"
	"sync/atomic"
)

// OS is the operating system's file system.
var OS FS = osFS{}

type osFS struct{}

func (osFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f}, nil
}

func (osFS) Open(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	of := &osFile{f: f}
	of.size.Store(fi.Size())
	return of, nil
}

func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) RemoveAll(name string) error                 { return os.RemoveAll(name) }
func (osFS) Rename(oldname, newname string) error        { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) Stat(name string) (os.FileInfo, error)       { return os.Stat(name) }
func (osFS) SyncDir(dir string) error                    { return syncDir(dir) }

func (osFS) List(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "lock", Path: name, Err: err}
	}
	return f, nil // closing the descriptor releases the lock
}

// osFile wraps an *os.File without embedding it, so that only the File
// methods (append-only Write among them) are reachable.
type osFile struct {
	f    *os.File
	size atomic.Int64 // the append position; only writers change it
}

func (f *osFile) Write(p []byte) (int, error) {
	off := f.size.Load()
	n, err := f.f.WriteAt(p, off)
	f.size.Store(off + int64(n))
	return n, err
}

func (f *osFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(p, off)
	if end := off + int64(n); end > f.size.Load() {
		f.size.Store(end)
	}
	return n, err
}

func (f *osFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }
func (f *osFile) Sync() error                             { return syncData(f.f) }
func (f *osFile) Close() error                            { return f.f.Close() }
func (f *osFile) Name() string                            { return f.f.Name() }
func (f *osFile) Size() (int64, error)                    { return f.size.Load(), nil }

func (f *osFile) Truncate(size int64) error {
	if err := f.f.Truncate(size); err != nil {
		return err
	}
	f.size.Store(size)
	return nil
}

// OSFile returns the *os.File under f if f is an OS file, for callers that
// hand it to the kernel (sendfile via io.Copy to a *net.TCPConn). The caller
// must not write through it.
func OSFile(f File) (*os.File, bool) {
	of, ok := f.(*osFile)
	if !ok {
		return nil, false
	}
	return of.f, true
}

func (f *osFile) Map(length int) (*Mapping, error) {
	return mapFile(f.f, length)
}
