package vfs

import (
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// OS is the operating system's file system. Its errors are package os's,
// except that those for a name too long also match ErrNameTooLong.
//
// On Windows, a file open without FILE_SHARE_DELETE (as os.OpenFile opens
// files) can be neither renamed nor removed. So OS opens its files sharing
// read, write and delete access, and renaming or removing an open file
// works as on unix systems.
//
// One difference stays where Windows does not delete with POSIX semantics
// (recent Windows 10 and 11 do on NTFS; older versions, other file systems
// and Wine do not). There a removed file keeps its name until its last
// handle is closed, and creating a file of that name, or renaming one to
// it, fails meanwhile (access denied). runnel's storage closes a segment's
// files before it removes them.
var OS FS = osFS{}

type osFS struct{}

// osErr returns err, the error of a call of package os, with the Err of an
// *fs.PathError or *os.LinkError that says a name was too long wrapped so
// that it matches ErrNameTooLong too. It is called on error paths only.
func osErr(err error) error {
	switch e := err.(type) {
	case *fs.PathError:
		if isNameTooLong(e.Err, e.Path) {
			return &fs.PathError{Op: e.Op, Path: e.Path, Err: &nameTooLongError{e.Err}}
		}
	case *os.LinkError:
		if isNameTooLong(e.Err, e.Old, e.New) {
			return &os.LinkError{Op: e.Op, Old: e.Old, New: e.New, Err: &nameTooLongError{e.Err}}
		}
	}
	return err
}

func (osFS) Create(name string) (File, error) {
	f, err := openFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, osErr(err)
	}
	return &osFile{f: f}, nil
}

func (osFS) Open(name string) (File, error) {
	f, err := openFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, osErr(err)
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

func (osFS) Remove(name string) error {
	return osErr(retryBusy(func() error { return os.Remove(name) }))
}

func (osFS) RemoveAll(name string) error {
	return osErr(retryBusy(func() error { return os.RemoveAll(name) }))
}

func (osFS) Rename(oldname, newname string) error {
	return osErr(retryBusy(func() error { return os.Rename(oldname, newname) }))
}

func (osFS) MkdirAll(dir string, perm os.FileMode) error { return osErr(os.MkdirAll(dir, perm)) }
func (osFS) SyncDir(dir string) error                    { return osErr(syncDir(dir)) }

func (osFS) Stat(name string) (os.FileInfo, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, osErr(err)
	}
	return fi, nil
}

func (osFS) List(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, osErr(err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, osErr(err)
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) Lock(name string) (io.Closer, error) {
	path := lockName(name)
	held.Lock()
	defer held.Unlock()
	// A file this process holds is refused before it is opened: where the
	// system's lock belongs to the process (fcntl's), closing any
	// descriptor of the file releases it, and a refused Lock would close
	// the one it opened (see held).
	if fi, err := os.Stat(path); err == nil && held.has(fi) {
		return nil, &os.PathError{Op: "lock", Path: name, Err: ErrLocked}
	}
	f, err := openFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, osErr(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, osErr(err)
	}
	if held.has(fi) {
		// Moved to the name since the Stat above (a rename or a link,
		// which nothing of runnel's makes): closing f may release the
		// lock as above, and refusing is all that is left.
		f.Close()
		return nil, &os.PathError{Op: "lock", Path: name, Err: ErrLocked}
	}
	if err := lockSys(f); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "lock", Path: name, Err: err}
	}
	held.files = append(held.files, fi)
	return &osLock{f: f, fi: fi}, nil
}

// lockSys takes the system's lock on f (lockFile); tests replace it to
// play a file system whose locks belong to the process.
var lockSys = lockFile

// held lists the files this process holds a Lock on. The system's lock
// alone does not keep a second Lock in the same process out everywhere:
// flock(2) locks belong to the open file, but on NFS (and wherever flock
// is emulated with fcntl's locks) they belong to the process, which would
// get the lock twice. Kafka's JVM keeps such a table for the same reason
// (OverlappingFileLockException). Files are told apart as os.SameFile
// does (device and inode, or Windows' file ID), so another name of the
// same file (a symbolic link, another case on a case-insensitive file
// system) is the same lock. Where the file system numbers a file by the
// name it was reached by, the lock is taken under one spelling: see
// lockName.
//
// Where the system's lock belongs to the process, as fcntl's record locks
// do, closing any descriptor of the file releases it: so Lock refuses a
// held file before it opens one (the trap for which SQLite keeps a table
// of its open files, and of which Java's FileChannel.lock warns).
var held heldFiles

type heldFiles struct {
	sync.Mutex
	files []os.FileInfo
}

// has reports whether fi is one of the files held; the caller holds h.
func (h *heldFiles) has(fi os.FileInfo) bool {
	return slices.ContainsFunc(h.files, func(f os.FileInfo) bool { return os.SameFile(f, fi) })
}

// osLock holds a lock taken by Lock: closing its descriptor releases the
// lock. Close is idempotent, as MemFS's is, so that a store that closes
// its lock twice passes on disk as it does in memory.
type osLock struct {
	f      *os.File
	fi     os.FileInfo // in held until Close
	closed atomic.Bool
}

func (l *osLock) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	// Unlocked before the close, so that the lock is free when Close
	// returns (see unlockFile: Windows; elsewhere the close frees it).
	// Its error is not the caller's: the close releases the lock anyway,
	// later; and a test's lockSys may have taken none.
	_ = unlockFile(l.f)
	err := l.f.Close()
	held.Lock()
	held.files = slices.DeleteFunc(held.files, func(h os.FileInfo) bool { return h == l.fi })
	held.Unlock()
	return err
}

// osFile wraps an *os.File without embedding it, so that only the File
// methods (append-only Write among them) are reachable.
type osFile struct {
	f    *os.File
	size atomic.Int64 // the append position; only writers change it
	// io is held shared by each ReadAt, WriteAt and Write, and exclusively
	// by Close, so that no read or write is in progress when Close
	// begins. On Windows, an os.File's ReadAt or WriteAt (go1.26.8's
	// internal/poll readWriteLock; older versions unchecked) takes a
	// reference to the handle and its read lock, then its write lock; a
	// Close that begins between the two (the call waiting for another
	// ReadAt's write lock, say) makes the call fail without giving back
	// its reference, and Close then waits for it for ever: a segment
	// deleted while fetches read it hung its partition
	// (TestOSFileCloseRacingIO, under Wine). A call after Close
	// still fails with os.ErrClosed.
	io sync.RWMutex
}

func (f *osFile) Write(p []byte) (int, error) {
	f.io.RLock()
	defer f.io.RUnlock()
	off := f.size.Load()
	n, err := f.f.WriteAt(p, off)
	f.size.Store(off + int64(n))
	return n, err
}

func (f *osFile) WriteAt(p []byte, off int64) (int, error) {
	f.io.RLock()
	defer f.io.RUnlock()
	n, err := f.f.WriteAt(p, off)
	// Nothing written (p empty, or the write failed) extends nothing.
	if end := off + int64(n); n > 0 && end > f.size.Load() {
		f.size.Store(end)
	}
	return n, err
}

func (f *osFile) ReadAt(p []byte, off int64) (int, error) {
	f.io.RLock()
	defer f.io.RUnlock()
	return f.f.ReadAt(p, off)
}

func (f *osFile) Sync() error { return syncData(f.f) }

func (f *osFile) Close() error {
	f.io.Lock() // no ReadAt or WriteAt in progress (see io)
	defer f.io.Unlock()
	return f.f.Close()
}

func (f *osFile) Name() string         { return f.f.Name() }
func (f *osFile) Size() (int64, error) { return f.size.Load(), nil }

func (f *osFile) Truncate(size int64) error {
	if err := f.f.Truncate(size); err != nil {
		return err
	}
	f.size.Store(size)
	return nil
}

// OpenOS opens the named file of the OS FS read-only, as the OS FS opens
// its own files: on Windows sharing delete access (FILE_SHARE_DELETE), so
// that the file can be renamed or removed while the returned file is open,
// as on unix systems. The segment layer uses it for a read of its own
// (sendfile) that must not stop the log from deleting the segment.
//
// Errors: those of os.Open, an *os.PathError naming name.
func OpenOS(name string) (*os.File, error) {
	f, err := openFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, osErr(err)
	}
	return f, nil
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
