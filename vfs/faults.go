package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/runnel/runnel/internal/isnil"
)

// Op names a kind of file-system operation, for fault injection.
type Op int

const (
	// OpCreate is FS.Create.
	OpCreate Op = iota
	// OpOpen is FS.Open.
	OpOpen
	// OpWrite is File.Write and File.WriteAt.
	OpWrite
	// OpRead is File.ReadAt, Viewer.View, PrefixViewer.ViewPrefix, and
	// Mapper.Map.
	OpRead
	// OpSync is File.Sync.
	OpSync
	// OpTruncate is File.Truncate.
	OpTruncate
	// OpClose is File.Close.
	OpClose
	// OpRemove is FS.Remove and FS.RemoveAll.
	OpRemove
	// OpRename is FS.Rename.
	OpRename
	// OpMkdir is FS.MkdirAll.
	OpMkdir
	// OpList is FS.List.
	OpList
	// OpStat is FS.Stat.
	OpStat
	// OpSyncDir is FS.SyncDir.
	OpSyncDir
	// OpLock is FS.Lock.
	OpLock

	numOps
)

var opNames = [numOps]string{
	OpCreate:   "create",
	OpOpen:     "open",
	OpWrite:    "write",
	OpRead:     "read",
	OpSync:     "sync",
	OpTruncate: "truncate",
	OpClose:    "close",
	OpRemove:   "remove",
	OpRename:   "rename",
	OpMkdir:    "mkdir",
	OpList:     "list",
	OpStat:     "stat",
	OpSyncDir:  "syncdir",
	OpLock:     "lock",
}

// String returns the operation's name, such as "write".
func (o Op) String() string {
	if o >= 0 && o < numOps {
		return opNames[o]
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// ErrInjected is the error a Counter injects. The FS of WithFaults returns
// it wrapped like a real failure (*os.PathError or *os.LinkError), so
// errors.Is(err, ErrInjected) tells injected faults from real ones.
var ErrInjected = errors.New("runnel/vfs: injected fault")

// Injector decides the fate of each operation of a WithFaults FS.
type Injector interface {
	// MaybeError is called before op runs on the named file (the old name,
	// for a rename; the name the file was opened with, for File methods).
	//
	// A nil result lets op go ahead. An error fails op without running it,
	// and is returned wrapped in an *os.PathError (*os.LinkError for a
	// rename).
	//
	// It may be called concurrently. It runs on the goroutine of the
	// operation's caller, under whatever locks that caller holds (a
	// runnel.Broker's partition lock or admin token, a log's writer lock).
	// So it must not wait for a call of that caller's code that needs them
	// (a Produce to the partition whose file it is, the Broker's Close),
	// which waits for the operation in turn. Start such a call on a
	// goroutine of its own to race the operation.
	MaybeError(op Op, name string) error
}

// InjectorFunc adapts a function to an Injector.
type InjectorFunc func(op Op, name string) error

// MaybeError returns f(op, name).
func (f InjectorFunc) MaybeError(op Op, name string) error { return f(op, name) }

// Counter is an Injector that counts the operations of chosen kinds and
// fails some of them with ErrInjected: see FailNth, FailFrom and Count. It
// is safe for concurrent use.
type Counter struct {
	ops    uint64 // a bit per Op matched; 0 matches all
	at     int64  // the 1-based number of the first matching op to fail; 0 for none
	sticky bool   // fail every matching op after the at-th as well
	seen   atomic.Int64
}

func newCounter(at int, sticky bool, ops []Op) *Counter {
	c := &Counter{at: int64(max(at, 0)), sticky: sticky}
	for _, o := range ops {
		if o < 0 || o >= numOps {
			panic("vfs: unknown " + o.String())
		}
		c.ops |= 1 << uint(o)
	}
	return c
}

// FailNth returns a Counter that fails the n-th (1-based) operation among
// ops, or among all operations if ops is empty, and that one only. If n is
// less than 1 it never fails.
func FailNth(n int, ops ...Op) *Counter { return newCounter(n, false, ops) }

// FailFrom returns a Counter that fails the n-th (1-based) operation among
// ops (all operations if none are given) and every one after it, like a
// disk that died. If n is less than 1 it never fails.
//
// A crash test runs its scenario once over WithFaults(mem, Count()) to learn
// how many operations it makes, then for each k from 1 to that count reruns
// it on a fresh MemFS wrapped with FailFrom(k), takes mem.CrashClone, and
// checks what recovery finds there.
func FailFrom(n int, ops ...Op) *Counter { return newCounter(n, true, ops) }

// Count returns a Counter that never fails and counts the operations among
// ops (all operations if none are given). Count, FailNth and FailFrom
// panic on an op that is none of the Op constants.
func Count(ops ...Op) *Counter { return newCounter(0, false, ops) }

// MaybeError counts op if it matches, and returns ErrInjected if it is one
// the Counter fails.
func (c *Counter) MaybeError(op Op, _ string) error {
	if c.ops != 0 && (op < 0 || op >= numOps || c.ops&(1<<uint(op)) == 0) {
		return nil
	}
	k := c.seen.Add(1)
	if c.at > 0 && (k == c.at || c.sticky && k > c.at) {
		return ErrInjected
	}
	return nil
}

// N returns how many matching operations the Counter has seen, failed ones
// included.
func (c *Counter) N() int { return int(c.seen.Load()) }

// WithFaults returns an FS that asks inj before every operation of fs and
// of the files it opens. It fails the operation without running it when
// inj returns an error.
//
//   - File.Close is the exception: it closes the file all the same, as
//     close(2) does.
//   - File.Name and File.Size are passed through unasked, as is the Closer
//     that Lock returns.
//
// A failed File.Sync of a MemFS file that reads bytes its last Sync did
// not make durable (appended since, or overwritten with other bytes)
// leaves that file unable to become durable again. That holds with fs a
// *MemFS, or a WithFaults of one, however deep: whichever of the wrappers
// fails it.
// Every later Sync of the file, through any handle, succeeds but changes
// nothing a CrashClone finds, until the file is truncated:
//
//   - to empty (Create of its name, say);
//   - or to its synced size or below, if its bytes below that size read
//     as its last Sync left them and it was never shorter since (appends
//     only, truncations and overwrites at or past that size, whose loss
//     the truncation cuts off, or overwrites below it with the same bytes,
//     or written back to them since).
//
// A file whose Sync fails while it reads only bytes its last Sync made
// durable (unchanged since, overwritten with the same bytes, or only cut
// shorter, to empty say) had nothing to lose: the failure leaves it as it
// was, and the next Sync that succeeds makes it durable.
//
// Linux may do as much: a failed fsync(2) can leave the pages it could not
// write marked clean, and the next fsync then succeeds without writing
// them. So a store must not go on trusting a file whose sync failed.
//
// The files it returns implement each of Viewer, PrefixViewer and Mapper
// exactly when fs's files do. The FS is a Wrapper of fs: Unwrap sees
// through it, so that a new WithFaults of the same fs is taken for the
// same file system.
//
// A nil inj (a nil InjectorFunc or *Counter too) returns fs itself. A nil
// fs (a nil *MemFS too) panics, at once: there is no file system to
// inject faults into (vfs.OS is the disk's).
func WithFaults(fs FS, inj Injector) FS {
	if isnil.Value(fs) {
		// Not at its first operation, deep in the Open of a store, after
		// inj counted it.
		panic(fmt.Sprintf("runnel/vfs: WithFaults of a nil FS (%T)", fs))
	}
	// A nil InjectorFunc or nil pointer (a *Counter) is a nil inj too:
	// its MaybeError would panic at the first operation.
	if isnil.Value(inj) {
		return fs
	}
	return &faultFS{fs: fs, inj: inj}
}

type faultFS struct {
	fs  FS
	inj Injector
}

func (f *faultFS) file(file File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	ff := &faultFile{f: file, inj: f.inj, name: file.Name()}
	var abilities int
	if _, ok := file.(PrefixViewer); ok { // a Viewer too
		abilities |= canViewPrefix
	} else if _, ok := file.(Viewer); ok {
		abilities |= canView
	}
	if _, ok := file.(Mapper); ok {
		abilities |= canMap
	}
	switch abilities {
	case canView:
		return faultV{ff}, nil
	case canViewPrefix:
		return faultP{ff}, nil
	case canMap:
		return faultM{ff}, nil
	case canView | canMap:
		return faultVM{ff}, nil
	case canViewPrefix | canMap:
		return faultPM{ff}, nil
	}
	return ff, nil
}

// The optional abilities of a file that a faultFile forwards: canView
// for a Viewer, canViewPrefix for a PrefixViewer (also a Viewer), canMap
// for a Mapper.
const (
	canView = 1 << iota
	canViewPrefix
	canMap
)

func (f *faultFS) Create(name string) (File, error) {
	if err := f.inj.MaybeError(OpCreate, name); err != nil {
		return nil, pathErr("open", name, err)
	}
	return f.file(f.fs.Create(name))
}

func (f *faultFS) Open(name string) (File, error) {
	if err := f.inj.MaybeError(OpOpen, name); err != nil {
		return nil, pathErr("open", name, err)
	}
	return f.file(f.fs.Open(name))
}

func (f *faultFS) Remove(name string) error {
	if err := f.inj.MaybeError(OpRemove, name); err != nil {
		return pathErr("remove", name, err)
	}
	return f.fs.Remove(name)
}

func (f *faultFS) RemoveAll(name string) error {
	if err := f.inj.MaybeError(OpRemove, name); err != nil {
		return pathErr("RemoveAll", name, err)
	}
	return f.fs.RemoveAll(name)
}

func (f *faultFS) Rename(oldname, newname string) error {
	if err := f.inj.MaybeError(OpRename, oldname); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return f.fs.Rename(oldname, newname)
}

func (f *faultFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := f.inj.MaybeError(OpMkdir, dir); err != nil {
		return pathErr("mkdir", dir, err)
	}
	return f.fs.MkdirAll(dir, perm)
}

func (f *faultFS) List(dir string) ([]string, error) {
	if err := f.inj.MaybeError(OpList, dir); err != nil {
		return nil, pathErr("open", dir, err)
	}
	return f.fs.List(dir)
}

func (f *faultFS) Stat(name string) (os.FileInfo, error) {
	if err := f.inj.MaybeError(OpStat, name); err != nil {
		return nil, pathErr("stat", name, err)
	}
	return f.fs.Stat(name)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.inj.MaybeError(OpSyncDir, dir); err != nil {
		return pathErr("sync", dir, err)
	}
	return f.fs.SyncDir(dir)
}

func (f *faultFS) Lock(name string) (io.Closer, error) {
	if err := f.inj.MaybeError(OpLock, name); err != nil {
		return nil, pathErr("lock", name, err)
	}
	return f.fs.Lock(name)
}

// faultFile wraps a File that has none of the optional abilities (Viewer,
// PrefixViewer, Mapper); the types below embed it to add exactly the ones
// the inner file has: V a Viewer, P a PrefixViewer (so also a Viewer), M
// a Mapper.
type faultFile struct {
	f    File
	inj  Injector
	name string
}

type (
	faultV  struct{ *faultFile }
	faultP  struct{ *faultFile }
	faultM  struct{ *faultFile }
	faultVM struct{ *faultFile }
	faultPM struct{ *faultFile }
)

func (f faultV) View(off int64, n int) ([]byte, error)        { return f.view(off, n) }
func (f faultP) View(off int64, n int) ([]byte, error)        { return f.view(off, n) }
func (f faultP) ViewPrefix(off int64, n int) ([]byte, error)  { return f.viewPrefix(off, n) }
func (f faultM) Map(n int) (*Mapping, error)                  { return f.mmap(n) }
func (f faultVM) View(off int64, n int) ([]byte, error)       { return f.view(off, n) }
func (f faultVM) Map(n int) (*Mapping, error)                 { return f.mmap(n) }
func (f faultPM) View(off int64, n int) ([]byte, error)       { return f.view(off, n) }
func (f faultPM) ViewPrefix(off int64, n int) ([]byte, error) { return f.viewPrefix(off, n) }
func (f faultPM) Map(n int) (*Mapping, error)                 { return f.mmap(n) }

// Trim forwards to the inner file if it is a Trimmer: no operation for
// the injector (see Trimmer).
func (f *faultFile) Trim() {
	if t, ok := f.f.(Trimmer); ok {
		t.Trim()
	}
}

func (f *faultFile) check(op Op, opName string) error {
	if err := f.inj.MaybeError(op, f.name); err != nil {
		return pathErr(opName, f.name, err)
	}
	return nil
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.check(OpWrite, "write"); err != nil {
		return 0, err
	}
	return f.f.Write(p)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.check(OpWrite, "write"); err != nil {
		return 0, err
	}
	return f.f.WriteAt(p, off)
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check(OpRead, "read"); err != nil {
		return 0, err
	}
	return f.f.ReadAt(p, off)
}

func (f *faultFile) Sync() error {
	if err := f.check(OpSync, "sync"); err != nil {
		f.markSyncFailed()
		return err
	}
	return f.f.Sync()
}

// syncFailedMarker is a file that can record that a Sync of it failed:
// a MemFS file (see memNode.failSync), or a faultFile, which passes it on
// to the file it wraps, so that a Sync failed by any of a stack of
// WithFaults wrappers reaches the MemFS file under them all.
type syncFailedMarker interface{ markSyncFailed() }

func (f *faultFile) markSyncFailed() {
	if m, ok := f.f.(syncFailedMarker); ok {
		m.markSyncFailed()
	}
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.check(OpTruncate, "truncate"); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *faultFile) Close() error {
	if err := f.check(OpClose, "close"); err != nil {
		f.f.Close()
		return err
	}
	return f.f.Close()
}

func (f *faultFile) Size() (int64, error) { return f.f.Size() }
func (f *faultFile) Name() string         { return f.f.Name() }

func (f *faultFile) view(off int64, n int) ([]byte, error) {
	if err := f.check(OpRead, "read"); err != nil {
		return nil, err
	}
	return f.f.(Viewer).View(off, n)
}

func (f *faultFile) viewPrefix(off int64, n int) ([]byte, error) {
	if err := f.check(OpRead, "read"); err != nil {
		return nil, err
	}
	return f.f.(PrefixViewer).ViewPrefix(off, n)
}

func (f *faultFile) mmap(n int) (*Mapping, error) {
	if err := f.check(OpRead, "mmap"); err != nil {
		return nil, err
	}
	return f.f.(Mapper).Map(n)
}

// Unwrap returns the FS that f passes its operations on to (see Wrapper).
func (f *faultFS) Unwrap() FS { return f.fs }
