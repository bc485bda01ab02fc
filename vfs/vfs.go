// Package vfs is runnel's file-system seam: every byte the storage layers
// (index, segment, log) read or write goes through an FS and its Files, so
// the same code runs on the operating system's disk (OS) and in memory
// (NewMem), and crash tests can drop unsynced data or inject faults.
//
// It is a leaf of the layer stack: of runnel's packages it imports only
// internal/isnil (so that WithFaults takes a nil *Counter or InjectorFunc
// for no injector).
//
// The contract the storage code relies on:
//
//   - Write appends at the end of the file (a File has no seek offset).
//   - Nothing is durable until Sync; a new, removed or renamed directory
//     entry is durable only after SyncDir of its directory (on Windows,
//     which cannot flush a directory, not even then: see SyncDir).
//   - Until then, nothing else is promised: a crash may keep any part of
//     what was not synced, in any order (see CrashOptions.Reorder).
//   - Views (see View) never change under their holder.
//
// Platform abilities that not every OS has (memory mapping, file locking,
// directory sync) sit behind build tags, each with a portable fallback.
package vfs

import (
	"errors"
	"io"
	"os"
)

// ErrNotSupported is returned (wrapped) by an optional ability that this FS
// or platform does not have, such as Map on a platform without mmap.
var ErrNotSupported = errors.New("runnel/vfs: not supported")

// ErrLocked is returned (wrapped in an *os.PathError) by FS.Lock when another
// process, or another Lock in this one, already holds the lock.
//
// On Windows a process that ends without releasing its lock (killed, or
// crashed) has it released by the system some time after it is gone,
// "depending on available system resources" in LockFileEx's words: a Lock
// right after such an end may get ErrLocked, where on Linux and macOS the
// lock goes with the process. A supervisor that restarts a killed process
// at once should retry the Open on ErrLocked for a moment.
var ErrLocked = errors.New("runnel/vfs: already locked (by another process, or another Open in this one)")

// MaxNameLen is the longest path component, in bytes, that every file
// system runnel supports accepts: Linux and macOS refuse a component longer
// than 255 bytes, Windows (NTFS) one longer than 255 UTF-16 code units,
// which is never more than its UTF-8 length in bytes. MemFS refuses longer
// components (see ErrNameTooLong), so that what works in memory works on
// disk.
const MaxNameLen = 255

// ErrNameTooLong is matched (errors.Is) by the error of an FS method given
// a name with a component longer than the file system accepts.
//
// It is the one portable test. The error is still the *os.PathError
// (*os.LinkError for Rename) that package os returns. Its Err still reads
// as the OS's own and matches the platform's code:
//
//   - syscall.ENAMETOOLONG on Linux, macOS and other unix systems;
//   - on Windows, ERROR_FILENAME_EXCED_RANGE, or ERROR_INVALID_NAME when a
//     component of the name is longer than 255 UTF-16 code units.
//
// MemFS returns it, wrapping syscall.ENAMETOOLONG on every platform ("file
// name too long"), for a component longer than MaxNameLen bytes. It does
// so from every method that resolves a name, in the order Linux checks: a
// missing directory or a file on the way to the long component fails as
// such first.
var ErrNameTooLong = errors.New("runnel/vfs: file name too long")

// nameTooLongError is the Err of an *os.PathError or *os.LinkError for a
// name too long: it reads as the platform's error, which it wraps, and
// matches ErrNameTooLong besides.
type nameTooLongError struct{ err error }

func (e *nameTooLongError) Error() string        { return e.err.Error() }
func (e *nameTooLongError) Unwrap() error        { return e.err }
func (e *nameTooLongError) Is(target error) bool { return target == ErrNameTooLong }

// FS is a file system. Names use the host's path separator (filepath.Join).
// Errors are *os.PathError or *os.LinkError as from package os, so
// errors.Is(err, fs.ErrNotExist) and fs.ErrExist work on every FS, and
// errors.Is(err, ErrNameTooLong) for a name with a component too long for
// the file system (see MaxNameLen).
type FS interface {
	// Create creates the named file for reading and writing, truncating it
	// if it exists.
	Create(name string) (File, error)
	// Open opens an existing file for reading and writing.
	Open(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes a path and everything below it; a missing path is
	// not an error.
	RemoveAll(name string) error
	// Rename atomically renames oldname to newname, replacing newname if it
	// is a file. It never replaces a directory, even an empty one: that
	// fails with an error matching fs.ErrExist (on Windows, with an error
	// of its own), as os.Rename does.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and its missing parents.
	MkdirAll(dir string, perm os.FileMode) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// Stat describes the named file or directory.
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the directory's entries (creates, removes, renames)
	// durable. The OS FS does it with fsync(2) of the directory on Linux
	// and other unix systems (F_FULLFSYNC on macOS); on Windows, which
	// offers no way to flush a directory, it does nothing, and NTFS
	// commits the change with its journal later. A file system that
	// cannot sync a directory and says so with EINVAL (SMB and other
	// network shares, some FUSE file systems) is taken at its word: SyncDir
	// returns nil there, and the entries are as durable as it makes them.
	SyncDir(dir string) error
	// Lock takes an exclusive advisory lock on the named file, creating it
	// if needed, and holds it until the returned Closer is closed. If the
	// lock is held elsewhere it fails at once with an error matching
	// ErrLocked. Closing the Closer again does nothing and returns nil.
	Lock(name string) (io.Closer, error)
}

// File is an open file. Its methods may be called concurrently, except that
// Write, WriteAt and Truncate must not run concurrently with each other.
//
// A file is changed through one File at a time. Both FSs keep the size
// (Write's append position, and Size's answer) in the File, as learnt at
// Open and moved by its own Write, WriteAt and Truncate. So another File's
// changes are not seen there: a Write then lands at the old end, over or
// short of what the other wrote (leaving zeros between), in memory as on
// disk.
type File interface {
	// Write appends p at the end of the file.
	io.Writer
	// ReadAt reads len(p) bytes at off; it returns io.EOF when fewer exist.
	io.ReaderAt
	// WriteAt writes p at off, extending the file if needed.
	io.WriterAt
	io.Closer
	// Sync makes the file's contents durable.
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Size returns the file's current size, including unsynced writes, as
	// this File knows it (see above).
	Size() (int64, error)
	// Name returns the name the file was opened with.
	Name() string
}

// Viewer is implemented by files that can hand out their bytes without
// copying them (the in-memory FS).
//
// View returns bytes [off, off+n) of the file. The caller must not modify
// them. They stay valid and unchanged for as long as the caller holds
// them, whatever happens to the file later (appends, overwrites,
// truncation, removal). View returns io.ErrUnexpectedEOF if the file ends
// before off+n.
//
// An implementation may copy when it does not hold the range in one piece
// (the in-memory FS copies a range that spans its chunks).
type Viewer interface {
	View(off int64, n int) ([]byte, error)
}

// Trimmer is implemented by files that keep room to spare for appends in
// memory: the in-memory FS, whose files grow by chunks each about as large
// as the file so far.
//
// Trim gives back the room the file's last chunk has spare when that is a
// quarter of the chunk or more, and at least 4 KiB. The room kept is then
// under about 14% of the file's bytes. It is for a file that is not
// expected to grow any more: a sealed segment. (With small segments, up to
// about half of each segment's memory went unused.)
//
// It changes nothing of the file's content, views or durability, and the
// file may still grow (into a new chunk). It does no I/O and cannot fail.
// Wrappers (WithFaults) forward it, and it is no operation for their
// injectors.
type Trimmer interface {
	Trim()
}

// PrefixViewer is implemented by Viewers that hold their bytes in pieces
// and can hand out the piece that holds a given offset without copying
// (the in-memory FS). ViewPrefix returns the longest prefix of bytes [off,
// off+n) of the file that it holds in one piece — at least one byte when
// n > 0 — with View's promises: the caller must not modify the bytes, and
// they never change. It returns io.ErrUnexpectedEOF if the file ends
// before off+n, as View does.
//
// A reader that can use fewer bytes than it asked for (whole record
// batches, a copy to a writer) loops on ViewPrefix and never copies; one
// that needs the whole range in one slice calls View, which may copy a
// range that spans pieces.
type PrefixViewer interface {
	Viewer
	ViewPrefix(off int64, n int) ([]byte, error)
}

// ReadView returns bytes [off, off+n) of f with the lifetime promised by
// Viewer: as a view when f implements Viewer, else read into a new buffer.
// It returns io.ErrUnexpectedEOF if the file ends before off+n, and the
// errors of f's View or ReadAt.
func ReadView(f File, off int64, n int) ([]byte, error) {
	if v, ok := f.(Viewer); ok {
		return v.View(off, n)
	}
	b := make([]byte, n)
	m, err := f.ReadAt(b, off)
	if m == n {
		return b, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

// ReadViewPrefix returns a prefix of bytes [off, off+n) of f, at least one
// byte when n > 0, with the lifetime promised by Viewer: f's ViewPrefix
// when f implements PrefixViewer, else all n bytes as ReadView returns
// them. It returns io.ErrUnexpectedEOF if the file ends before off+n, and
// the errors of f's ViewPrefix, View or ReadAt.
func ReadViewPrefix(f File, off int64, n int) ([]byte, error) {
	if v, ok := f.(PrefixViewer); ok {
		return v.ViewPrefix(off, n)
	}
	return ReadView(f, off, n)
}

// Mapper is implemented by files that can be memory-mapped read-only (OS
// files on unix-like systems). Where mapping is not available Map returns
// an error matching ErrNotSupported, and callers fall back to ReadAt.
// There are no writable mappings: the first store to each page of a
// writable shared mapping stalls while the file system reserves a block
// and updates the file's times (about a millisecond on ext4), so writers
// use WriteAt.
type Mapper interface {
	// Map maps the first length bytes of the file, which must already be at
	// least that long, read-only.
	Map(length int) (*Mapping, error)
}

// Mapping is a read-only memory-mapped region of a file. Its Bytes must
// not be used after Close.
type Mapping struct {
	data  []byte
	unmap func([]byte) error
}

// Bytes returns the mapped memory.
func (m *Mapping) Bytes() []byte { return m.data }

// Close unmaps the memory. It is safe to call more than once.
func (m *Mapping) Close() error {
	if m.data == nil {
		return nil
	}
	d := m.data
	m.data = nil
	return m.unmap(d)
}
