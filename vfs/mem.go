package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Errors of the in-memory FS that package os reports as errno values. They
// read like their OS counterparts; match them by errors.Is against the
// sentinels of package fs where one exists (fs.ErrNotExist, fs.ErrExist,
// fs.ErrInvalid, fs.ErrClosed).
var (
	errIsDir  = errors.New("is a directory")
	errNotDir = errors.New("not a directory")
	// errNotEmpty matches fs.ErrExist, as the OS's error for a
	// directory not empty does (ENOTEMPTY; Windows' ERROR_DIR_NOT_EMPTY).
	errNotEmpty  error = existError("directory not empty")
	errNegOffset       = errors.New("negative offset")

	// errNameTooLong is what the OS FS returns on Linux for a name too
	// long, errno and all, and matches ErrNameTooLong.
	errNameTooLong error = &nameTooLongError{syscall.ENAMETOOLONG}
)

// existError is an error that matches fs.ErrExist.
type existError string

func (e existError) Error() string        { return string(e) }
func (e existError) Is(target error) bool { return target == fs.ErrExist }

// TailMode says what CrashClone makes of the bytes a file had appended since
// its last Sync.
type TailMode int

const (
	// TailDrop: the unsynced bytes vanish. The default.
	TailDrop TailMode = iota
	// TailTorn: a random-length prefix of the unsynced bytes survives; its
	// length is drawn uniformly from 0 to all of them, inclusive, so the
	// whole tail may survive as well as none of it.
	TailTorn
	// TailZeros: a run of zero bytes, of random length from 1 to the number
	// of unsynced bytes, stands where the unsynced bytes were (a file whose
	// size reached the disk before its data did).
	TailZeros
	// TailGarbage: a run of random bytes, of random length from 1 to the
	// number of unsynced bytes, stands where the unsynced bytes were.
	TailGarbage
)

// String returns the mode's name.
func (t TailMode) String() string {
	switch t {
	case TailDrop:
		return "drop"
	case TailTorn:
		return "torn"
	case TailZeros:
		return "zeros"
	case TailGarbage:
		return "garbage"
	}
	return "TailMode(" + strconv.Itoa(int(t)) + ")"
}

// CrashOptions configures CrashClone.
type CrashOptions struct {
	// Tail is what becomes of each file's unsynced appended bytes.
	Tail TailMode
	// Rand draws torn lengths and garbage bytes. Nil means a generator with
	// a fixed seed, so that a crash is reproducible.
	Rand *rand.Rand
	// Reorder makes the crash land where a disk that had written back some
	// of what was not synced yet, in an order of its own, may leave it,
	// rather than where nothing unsynced reached it:
	//
	//   - The directory operations not yet made durable by SyncDir persist
	//     up to a random point in the order they were made, as a journaling
	//     file system commits them. They are Create of a new file, Remove,
	//     RemoveAll, Rename, MkdirAll's directories and Lock's file. Each
	//     operation persists whole: a rename lands in both of its
	//     directories or in neither; RemoveAll of a directory is one
	//     operation per entry below it, depth first, as on disk. An
	//     operation that persists carries no data with it: a file renamed,
	//     or created, before its data was synced is found with its synced
	//     content only, as on a file system without ext4's auto_da_alloc.
	//   - A torn tail (TailTorn) may be torn by sectors. Of the unsynced
	//     bytes up to the length that survives, each 512-byte sector holds
	//     its new bytes or zeros, as a disk that wrote the file's new size
	//     and only some of its new sectors leaves it (a file system without
	//     ext4's data=ordered, such as XFS).
	//   - A file overwritten in place (WriteAt below its synced size) since
	//     its last Sync keeps, in each 512-byte sector that changed,
	//     either its synced bytes or its new ones, independently.
	//   - A file truncated below its synced size since its last Sync keeps
	//     either all of its synced size (the truncation lost, and with it
	//     what was appended since) or the truncated size (the truncation
	//     durable). Tail then decides what stands for what was appended
	//     after the truncation.
	//   - A file truncated since its last Sync may have lost that (first)
	//     truncation, and what was appended after it, while the unsynced
	//     bytes it cut off reached the disk. Tail then decides what stands
	//     for those bytes, as they were just before the truncation. That
	//     holds for a truncation at or past the synced size too: the bytes
	//     a file cut off, never synced, may come back until its next Sync.
	//
	// Without Reorder, every unsynced change is lost whole (but for what
	// Tail makes of appended bytes): a strict crash, but only one of the
	// crashes a real disk may have.
	Reorder bool
}

// MemFS is a strict in-memory FS, for tests and fully in-memory brokers. It
// is safe for concurrent use. Create one with NewMem, or declare one: the
// zero MemFS is empty and ready to use, as NewMem's.
//
// Names are resolved as the kernel resolves them, one component at a
// time:
//
//   - absolute ("/a/b") and relative ("a/b") names address the same tree,
//     relative ones being taken from its root;
//   - ".." never leads above the root;
//   - a component that a separator, "." or ".." follows must be an
//     existing directory. So "f/" or "f/.." of a file fails (not a
//     directory) as on disk, and "missing/../x" too (it does not exist),
//     even though cleaning the name would make it good;
//   - a name ending in a separator cannot be created as a file (is a
//     directory).
//
// MkdirAll alone cleans its name first (os.MkdirAll, given
// "a/missing/../b", also makes "a/missing"; MemFS makes "a/b" only).
//
// A name with a component longer than MaxNameLen bytes fails as it would
// on disk, with an error matching ErrNameTooLong (and
// syscall.ENAMETOOLONG). Create, Open, Stat, List, Remove, RemoveAll,
// Rename (either name), MkdirAll, SyncDir and Lock all refuse it.
//
// MemFS keeps, besides what a reader sees, what a machine crash would
// leave (see CrashClone):
//
//   - a file's content is durable as of its last Sync;
//   - a directory's entries as of its last SyncDir;
//   - for a crash with CrashOptions.Reorder, the directory operations not
//     durable yet, in the order they were made (up to a few thousand of
//     them).
//
// So a removed file's memory is freed once its removal is durable (SyncDir
// of its directory). Until then a crash may bring it back, and in a
// directory never synced the files of the last few thousand operations
// stay.
//
// A file's content lives in chunks. A small file is one array that starts
// at 256 B and doubles (copying itself) up to 64 KiB. A larger file is
// held in separately allocated chunks that grow geometrically in size up
// to 4 MiB (or as large as one write needs). So appending never copies
// more than 64 KiB of what a file already holds. A single Write never
// straddles two chunks: the bytes of one Write (a record batch, for the
// segment layer) are contiguous in memory.
//
// Files implement Viewer and PrefixViewer: they hand out the file's own
// bytes without copying. That is all of a range that one chunk holds, and
// a fresh copy for a View that spans chunks. The file never changes bytes
// it has handed out: it copies that chunk instead, should it have to
// overwrite them. Files do not implement Mapper.
//
// Appending is O(len(p)) (amortized over the chunks it allocates, whose
// memory the runtime zeroes) and Sync is O(1), so that a broker that syncs
// every batch runs at memory speed. Overwriting bytes with WriteAt is
// O(len(p)) too, except that overwriting bytes that a View or a CrashClone
// holds copies their chunk once.
type MemFS struct {
	// once makes a zero MemFS's root, locks and sizes, at its first call
	// (see ready); NewMem's are made already.
	once  sync.Once
	mu    sync.RWMutex // guards the entries of every directory, and locks
	root  *memNode
	locks map[string]bool // held Lock names, cleaned

	// The directory operations not yet durable, oldest first, for a
	// crash clone with Reorder; each binding in them that SyncDir of its
	// directory made durable since is stale and skipped. Leading
	// operations whose bindings are all stale are dropped as new ones
	// come, and all stale ones when pending has doubled since they last
	// were; at memPendingMax, the oldest half is dropped, and a crash can
	// no longer persist those. Guarded by mu.
	pending   []memDirOp
	compactAt int // the length of pending at which bind drops all stale operations

	// The chunk sizes of its files, which they share; a crash clone
	// shares them too.
	sizes *memChunkSizes
}

var _ FS = (*MemFS)(nil)

// NewMem returns an empty in-memory FS whose root directory ("/", also
// named ".") exists and is durable.
func NewMem() *MemFS { return newMemSized(&defaultChunkSizes) }

func newMemSized(sizes *memChunkSizes) *MemFS {
	return &MemFS{root: newMemDir(0o755), locks: map[string]bool{}, sizes: sizes}
}

// ready makes a zero MemFS what NewMem returns; every exported method
// calls it first.
func (m *MemFS) ready() {
	m.once.Do(func() {
		if m.root == nil {
			m.root, m.locks, m.sizes = newMemDir(0o755), map[string]bool{}, &defaultChunkSizes
		}
	})
}

// memNode is an inode: a directory or a file.
type memNode struct {
	isDir bool
	perm  fs.FileMode

	// A directory's entries, guarded by MemFS.mu: live ones, and the ones
	// as of its last SyncDir (none if never synced). dirty holds exactly
	// the names that live and durable bind differently (nil when there
	// are none), so that SyncDir costs what changed since the last one,
	// not what the directory holds. Change live only with setEntry (by way of
	// MemFS.bind).
	live    map[string]*memNode
	durable map[string]*memNode
	dirty   map[string]struct{}
	syncGen uint64 // SyncDirs of this directory (that synced a change)

	// A file's content, guarded by mu: size bytes, held by chunks in file
	// order, each starting where its predecessor ends, none empty (see
	// memChunk for which bytes may be written in place). sizes, its
	// FS's, sizes new chunks (see room).
	mu     sync.RWMutex
	chunks []*memChunk
	size   int
	sizes  *memChunkSizes

	// Durability: the content as of the last Sync was the first syncedLen
	// bytes, except where undo says otherwise: undo records, oldest first,
	// the bytes below syncedLen that were overwritten or cut off since;
	// applied newest first they restore the synced content. When undo would
	// grow beyond the file, the synced content is materialized in snap
	// instead (hasSnap). With no undo and no snap, every change since the
	// last Sync was an append, and the bytes from syncedLen on are the
	// unsynced tail.
	syncedLen int
	minSize   int  // the file's smallest size since its last Sync
	noSync    bool // a Sync failed (see WithFaults): no later one makes anything durable
	undo      []memUndo
	undoBytes int
	snap      []byte
	hasSnap   bool

	// A crash with Reorder may find the file's first truncation since its
	// last Sync lost, and the unsynced bytes it cut off written back
	// (see CrashOptions.Reorder): cut holds the file's chunks from its
	// synced size on as they were just before that truncation, shared as
	// a crash clone shares them (capped and pinned, so that the file
	// never writes them again), and cutSize its size then; hasCut says
	// that there was such a truncation (cutSize <= syncedLen if it cut
	// no unsynced bytes, and cut is then nil).
	cut     []*memChunk
	cutSize int
	hasCut  bool
}

// memPendingMax bounds the directory operations a MemFS remembers for a
// crash with Reorder (see MemFS.pending): an FS whose directories are never
// synced must not grow without bound.
const memPendingMax = 4096

// memBinding is one name bound (or unbound, with a nil n) by a directory
// operation, with the generation of the directory's SyncDir it came after.
// The unlinks of a RemoveAll below the name it removes have that removal
// as their top: once it is durable, they are moot.
type memBinding struct {
	dir  *memNode
	name string
	n    *memNode
	gen  uint64
	top  *memBinding
}

// memDirOp is the bindings of one directory operation, which a crash with
// Reorder persists together.
type memDirOp []memBinding

func (b *memBinding) stale() bool {
	return b.dir.syncGen != b.gen || b.top != nil && b.top.stale()
}

// memUndoOverhead is about what a memUndo costs beyond its bytes (the
// record, the allocation of old), counted so that many small overwrites
// materialize the synced content before their records outgrow it.
const memUndoOverhead = 48

type memUndo struct {
	off int
	old []byte // never written: a copy, or a part of an array the file no longer writes
}

func newMemDir(perm fs.FileMode) *memNode {
	return &memNode{isDir: true, perm: perm & fs.ModePerm, live: map[string]*memNode{}}
}

// setEntry binds name to n in directory d, or unbinds it if n is nil, and
// keeps d.dirty. MemFS.mu must be held for writing.
func (d *memNode) setEntry(name string, n *memNode) {
	if n == nil {
		delete(d.live, name)
	} else {
		d.live[name] = n
	}
	if d.durable[name] == n { // both nil if the name is in neither
		delete(d.dirty, name)
		return
	}
	if d.dirty == nil {
		d.dirty = map[string]struct{}{}
	}
	d.dirty[name] = struct{}{}
}

// bind applies the bindings of one directory operation with setEntry and
// remembers them for a crash with Reorder. MemFS.mu must be held for
// writing.
func (m *MemFS) bind(op ...memBinding) {
	for i := range op {
		b := &op[i]
		b.dir.setEntry(b.name, b.n)
		b.gen = b.dir.syncGen
	}
	// Drop the leading operations that SyncDir made durable whole.
	k := 0
	for k < len(m.pending) && !slices.ContainsFunc(m.pending[k], func(b memBinding) bool { return !b.stale() }) {
		k++
	}
	if k > 0 {
		clear(m.pending[:k])
		m.pending = m.pending[k:]
	}
	if len(m.pending) >= m.compactAt {
		// Drop the stale operations behind a live one too (one in a
		// directory not synced since), so that they hold no inode, at
		// a cost amortized over the operations since the last time.
		m.pending = slices.DeleteFunc(m.pending, func(op memDirOp) bool {
			return !slices.ContainsFunc(op, func(b memBinding) bool { return !b.stale() })
		})
		if k := len(m.pending) - memPendingMax/2; k > memPendingMax/2 {
			clear(m.pending[:k]) // the oldest half goes
			m.pending = m.pending[k:]
		}
		m.compactAt = min(max(64, 2*len(m.pending)), memPendingMax)
	}
	m.pending = append(m.pending, op)
}

// syncEntries makes d's live entries durable, in time proportional to the
// number of names changed since its last syncEntries. MemFS.mu must be
// held for writing.
func (d *memNode) syncEntries() {
	if len(d.dirty) == 0 {
		return
	}
	if d.durable == nil {
		d.durable = make(map[string]*memNode, len(d.live))
	}
	for name := range d.dirty {
		if n := d.live[name]; n != nil {
			d.durable[name] = n
		} else {
			delete(d.durable, name)
		}
	}
	// A fresh set next time, rather than clearing this one: a map keeps
	// its capacity, and clearing or ranging over it costs that capacity.
	d.dirty = nil
}

func (m *MemFS) newFile() *memNode {
	return &memNode{perm: 0o644, sizes: m.sizes}
}

// splitPath cleans name and returns its components below the root; nil is
// the root itself.
func splitPath(name string) []string {
	p := path.Clean("/" + filepath.ToSlash(name))
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// resolve checks name as the kernel resolves it, one component at a time,
// before the name is cleaned (splitPath): each component that a separator,
// "." or ".." follows must be an existing directory, even where cleaning
// would drop it ("f/..", "missing/../x"). Its errors are walk's. dirOnly
// reports that the name ends with a separator, "." or ".." after a
// component, so that what it names must be a directory: a file there
// fails (errNotDir), and a missing one cannot be created as a file. After
// resolve succeeds, the cleaned name finds what the kernel would. m.mu
// must be held.
func (m *MemFS) resolve(name string) (dirOnly bool, err error) {
	stack := []*memNode{m.root} // the directories on the way; a nil top is missing
	comps := strings.Split(filepath.ToSlash(name), "/")
	// The last component: only separators follow it. A "." after a
	// component makes it one the kernel looks up on the way, as ".."
	// does: "long/." is ENAMETOOLONG, not ENOENT, where long is too long.
	last := len(comps) - 1
	for last > 0 && comps[last] == "" {
		last--
	}
	for i, c := range comps {
		cur := stack[len(stack)-1]
		if c == "" || c == "." {
			if i == 0 {
				continue // a leading separator, or "." itself
			}
			if cur != nil && !cur.isDir {
				return false, errNotDir
			}
			if cur == nil && c == "." {
				return false, fs.ErrNotExist // "missing/.": "." is looked up in it
			}
			dirOnly = true
			continue
		}
		if cur == nil {
			return false, fs.ErrNotExist
		}
		if !cur.isDir {
			return false, errNotDir
		}
		if c == ".." {
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			dirOnly = i > 0
			continue
		}
		if len(c) > MaxNameLen && i < last {
			return false, errNameTooLong // the last one is the caller's to check, in Linux's order
		}
		stack = append(stack, cur.live[c])
		dirOnly = false
	}
	return dirOnly, nil
}

// walk returns the node at parts, following live entries. Its errors are
// bare (fs.ErrNotExist, errNotDir or errNameTooLong), for the caller to
// wrap; like Linux, it finds a file on the way before a name too long, and
// that before a missing name.
func (m *MemFS) walk(parts []string) (*memNode, error) {
	n := m.root
	for _, p := range parts {
		if !n.isDir {
			return nil, errNotDir
		}
		if len(p) > MaxNameLen {
			return nil, errNameTooLong
		}
		c := n.live[p]
		if c == nil {
			return nil, fs.ErrNotExist
		}
		n = c
	}
	return n, nil
}

// lookup returns the named node: resolve's checks of name, then walk of
// its cleaned components. m.mu must be held.
func (m *MemFS) lookup(name string) (*memNode, error) {
	if _, err := m.resolve(name); err != nil {
		return nil, err
	}
	return m.walk(splitPath(name))
}

// parentDir returns the directory that holds (or would hold) the last of
// parts, which must not be empty.
func (m *MemFS) parentDir(parts []string) (*memNode, error) {
	d, err := m.walk(parts[:len(parts)-1])
	if err != nil {
		return nil, err
	}
	if !d.isDir {
		return nil, errNotDir
	}
	return d, nil
}

func pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: name, Err: err}
}

// Create creates the named file, or truncates it if it exists. Its directory
// must exist. The new entry is durable only after SyncDir of the directory.
func (m *MemFS) Create(name string) (File, error) {
	m.ready()
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.createLocked(name, true)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	return newMemFile(n, name), nil
}

// createLocked returns the named file, creating it if missing and else
// truncating it if trunc.
func (m *MemFS) createLocked(name string, trunc bool) (*memNode, error) {
	dirOnly, err := m.resolve(name)
	if err != nil {
		return nil, err
	}
	parts := splitPath(name)
	if dirOnly || len(parts) == 0 {
		return nil, errIsDir // as open(2) with O_CREAT says of "name/"
	}
	d, err := m.parentDir(parts)
	if err != nil {
		return nil, err
	}
	base := parts[len(parts)-1]
	if len(base) > MaxNameLen {
		return nil, errNameTooLong
	}
	n := d.live[base]
	switch {
	case n == nil:
		n = m.newFile()
		m.bind(memBinding{dir: d, name: base, n: n})
	case n.isDir:
		return nil, errIsDir
	case trunc:
		n.mu.Lock()
		n.resize(0)
		n.mu.Unlock()
	}
	return n, nil
}

// Open opens an existing file for reading and writing.
func (m *MemFS) Open(name string) (File, error) {
	m.ready()
	m.mu.RLock()
	n, err := m.lookup(name)
	m.mu.RUnlock()
	if err == nil && n.isDir {
		err = errIsDir
	}
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	return newMemFile(n, name), nil
}

// Remove removes a file or an empty directory. Open handles of a removed
// file keep working. The removal is durable only after SyncDir of the
// directory that held it.
func (m *MemFS) Remove(name string) error {
	m.ready()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.resolve(name); err != nil {
		return pathErr("remove", name, err)
	}
	parts := splitPath(name)
	if len(parts) == 0 {
		return pathErr("remove", name, fs.ErrInvalid)
	}
	if dotName(name) {
		// rmdir(2) removes no "." (EINVAL) nor ".." (ENOTEMPTY).
		if path.Base(strings.TrimRight(filepath.ToSlash(name), "/")) == "." {
			return pathErr("remove", name, fs.ErrInvalid)
		}
		return pathErr("remove", name, errNotEmpty)
	}
	d, err := m.parentDir(parts)
	if err != nil {
		return pathErr("remove", name, err)
	}
	base := parts[len(parts)-1]
	if len(base) > MaxNameLen {
		return pathErr("remove", name, errNameTooLong)
	}
	n := d.live[base]
	switch {
	case n == nil:
		return pathErr("remove", name, fs.ErrNotExist)
	case n.isDir && len(n.live) > 0:
		return pathErr("remove", name, errNotEmpty)
	}
	m.bind(memBinding{dir: d, name: base})
	return nil
}

// RemoveAll removes name and everything below it. A missing name is not an
// error; a name ending in "." or ".." fails with an error matching
// fs.ErrInvalid (os.RemoveAll refuses the first, and takes the second as
// the parent directory, which it removes). The removal is durable only after SyncDir of name's directory
// (and a crash with Reorder may find part of what was below name gone, as
// os.RemoveAll unlinks it one entry at a time).
func (m *MemFS) RemoveAll(name string) error {
	m.ready()
	parts := splitPath(name)
	// Like os.RemoveAll: trailing separators are dropped, and a name
	// ending in "." is refused; one ending in ".." too, which
	// os.RemoveAll takes as the parent (it removes its whole tree).
	if len(parts) == 0 || dotName(name) {
		return pathErr("RemoveAll", name, fs.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Trailing separators are dropped (os.RemoveAll("f/") removes a file f).
	_, err := m.resolve(strings.TrimRight(filepath.ToSlash(name), "/"))
	var d *memNode
	if err == nil {
		d, err = m.parentDir(parts)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return pathErr("RemoveAll", name, err)
	}
	base := parts[len(parts)-1]
	if len(base) > MaxNameLen {
		return pathErr("RemoveAll", name, errNameTooLong)
	}
	n := d.live[base]
	if n == nil {
		return nil
	}
	// On disk RemoveAll unlinks what is below name first, one entry at a
	// time: a crash with Reorder may keep some of those unlinks and not
	// the rest.
	top := []memBinding{{dir: d, name: base, gen: d.syncGen}}
	if n.isDir {
		m.unlinkTree(n, &top[0])
	}
	m.bind(top...)
	return nil
}

// unlinkTree unbinds every entry below directory d, depth first and in
// name order, one operation each, as the unlinks of the RemoveAll whose
// removal is top. MemFS.mu must be held for writing.
func (m *MemFS) unlinkTree(d *memNode, top *memBinding) {
	for _, name := range slices.Sorted(maps.Keys(d.live)) {
		if c := d.live[name]; c.isDir {
			m.unlinkTree(c, top)
		}
		m.bind(memBinding{dir: d, name: name, top: top})
	}
}

// Rename renames oldname to newname, replacing newname if it is a file
// (and oldname one too). A newname that is a directory, even an empty one,
// fails it with an error matching fs.ErrExist, as package os does on unix
// systems (os.Rename never replaces a directory; Windows refuses too, with
// an error of its own). Open handles keep working.
// The rename is durable only after SyncDir of both directories involved;
// until then a crash undoes it (in each directory on its own).
func (m *MemFS) Rename(oldname, newname string) error {
	m.ready()
	fail := func(err error) error {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	oDirOnly, err := m.resolve(oldname)
	if err != nil {
		return fail(err)
	}
	nDirOnly, err := m.resolve(newname)
	if err != nil {
		return fail(err)
	}
	op, np := splitPath(oldname), splitPath(newname)
	if len(op) == 0 || len(np) == 0 {
		return fail(fs.ErrInvalid)
	}
	// Linux's order: both directories, then the old name, then the new.
	od, err := m.parentDir(op)
	if err != nil {
		return fail(err)
	}
	nd, err := m.parentDir(np)
	if err != nil {
		return fail(err)
	}
	obase, nbase := op[len(op)-1], np[len(np)-1]
	if len(obase) > MaxNameLen {
		return fail(errNameTooLong)
	}
	n := od.live[obase]
	if n == nil {
		return fail(fs.ErrNotExist)
	}
	if len(nbase) > MaxNameLen {
		return fail(errNameTooLong)
	}
	if oDirOnly && !n.isDir {
		return fail(errNotDir) // "f/"
	}
	t := nd.live[nbase]
	if t != nil && t.isDir && (t != n || oldname == newname) {
		// os.Rename refuses to replace a directory, even with itself
		// (the same name) or with a directory where rename(2) would;
		// however the directory is named ("d/", "d/.", "d/sub/..").
		// Another name of the same directory goes to rename(2).
		return fail(fs.ErrExist)
	}
	if nDirOnly && !n.isDir {
		return fail(errNotDir) // a file renamed to "g/"
	}
	if dotName(oldname) || dotName(newname) {
		return fail(syscall.EBUSY) // rename(2) renames no "." or "..", nor onto one
	}
	if t == n { // two names of one inode: nothing to do
		return nil
	}
	if n.isDir && len(np) > len(op) && slices.Equal(np[:len(op)], op) {
		return fail(fs.ErrInvalid) // into its own subtree
	}
	if t != nil && n.isDir {
		return fail(errNotDir)
	}
	m.bind(memBinding{dir: od, name: obase}, memBinding{dir: nd, name: nbase, n: n})
	return nil
}

// dotName reports whether name's last component (trailing separators
// dropped) is "." or "..".
func dotName(name string) bool {
	last := path.Base(strings.TrimRight(filepath.ToSlash(name), "/"))
	return last == "." || last == ".."
}

// MkdirAll creates dir and any missing parents, with permission bits perm.
// A new directory is durable only after SyncDir of its parent. A component
// longer than MaxNameLen fails it with an error matching ErrNameTooLong,
// the directories before that component having been created, as on disk.
func (m *MemFS) MkdirAll(dir string, perm os.FileMode) error {
	m.ready()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.root
	for _, p := range splitPath(dir) {
		c := n.live[p]
		if c == nil {
			if len(p) > MaxNameLen { // the directories before it stay, as on disk
				return pathErr("mkdir", dir, errNameTooLong)
			}
			c = newMemDir(perm)
			m.bind(memBinding{dir: n, name: p, n: c})
		} else if !c.isDir {
			return pathErr("mkdir", dir, errNotDir)
		}
		n = c
	}
	return nil
}

// List returns the sorted names of dir's entries.
func (m *MemFS) List(dir string) ([]string, error) {
	m.ready()
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.lookup(dir)
	if err != nil {
		return nil, pathErr("open", dir, err)
	}
	if !n.isDir {
		return nil, pathErr("readdirent", dir, errNotDir)
	}
	names := slices.Collect(maps.Keys(n.live))
	slices.Sort(names)
	return names, nil
}

// Stat describes the named file or directory. Its ModTime is the zero time.
func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	m.ready()
	parts := splitPath(name)
	m.mu.RLock()
	n, err := m.lookup(name)
	m.mu.RUnlock()
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	fi := &memFileInfo{name: "/", mode: n.perm}
	if len(parts) > 0 {
		fi.name = parts[len(parts)-1]
	}
	if n.isDir {
		fi.mode |= fs.ModeDir
	} else {
		n.mu.RLock()
		fi.size = int64(n.size)
		n.mu.RUnlock()
	}
	return fi, nil
}

// SyncDir makes dir's current entries durable: a crash clone finds exactly
// these names, bound to these inodes. It costs the number of entries
// created, removed or renamed in dir since its last SyncDir, not the
// number it holds.
func (m *MemFS) SyncDir(dir string) error {
	m.ready()
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(dir)
	if err != nil {
		return pathErr("open", dir, err)
	}
	if !n.isDir {
		return pathErr("sync", dir, errNotDir)
	}
	n.syncEntries()
	n.syncGen++ // the operations pending on n are durable now, or undone
	return nil
}

// Lock takes an in-process lock on name, creating the file if it is missing
// (its directory must exist). While the lock is held, another Lock of the
// same cleaned name fails with an error matching ErrLocked. Closing the
// returned Closer releases the lock; closing it again does nothing. As
// the OS FS, it opens the file first: a name that cannot be opened (its
// directory removed, say) fails with that error even while locked. The
// lock is on the name, where flock(2)'s is on the file: a file removed
// and created again under a locked name is still locked here.
func (m *MemFS) Lock(name string) (io.Closer, error) {
	m.ready()
	parts := splitPath(name)
	if len(parts) == 0 {
		return nil, pathErr("open", name, errIsDir)
	}
	key := strings.Join(parts, "/")
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.createLocked(name, false); err != nil {
		return nil, pathErr("open", name, err)
	}
	if m.locks[key] {
		return nil, pathErr("lock", name, ErrLocked)
	}
	m.locks[key] = true
	return &memLock{m: m, key: key}, nil
}

type memLock struct {
	m      *MemFS
	key    string
	closed atomic.Bool
}

func (l *memLock) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.m.mu.Lock()
	delete(l.m.locks, l.key)
	l.m.mu.Unlock()
	return nil
}

// Usage returns the number of bytes held by the files that have a name
// (each inode counted once): their sizes, not the capacity reserved for
// appends, and not removed files that are still open.
func (m *MemFS) Usage() int64 {
	m.ready()
	return m.sumFiles(func(n *memNode) int64 { return int64(n.size) })
}

// Allocated returns the bytes of memory that the chunks of the files that
// have a name hold (each inode counted once): their sizes plus the room
// reserved for appends and the room left unused at the end of chunks that
// a write did not fit. An array shared with a crash clone is counted by
// both file systems. Not counted: memory that only views, removed files
// still open, or the bytes kept for a crash (synced ones overwritten or
// cut off since the last Sync, unsynced ones a truncation cut off) still
// hold. It is for tests and benchmarks that
// check what the memory FS costs.
func (m *MemFS) Allocated() int64 {
	m.ready()
	return m.sumFiles((*memNode).allocated)
}

// sumFiles sums f over the files that have a name, each inode once.
func (m *MemFS) sumFiles(f func(*memNode) int64) int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	seen := map[*memNode]bool{}
	var total int64
	var walk func(d *memNode)
	walk = func(d *memNode) {
		for _, n := range d.live {
			if seen[n] {
				continue
			}
			seen[n] = true
			if n.isDir {
				walk(n)
				continue
			}
			n.mu.RLock()
			total += f(n)
			n.mu.RUnlock()
		}
	}
	walk(m.root)
	return total
}

// CrashClone returns a new, independent MemFS holding what a machine crash
// at this moment would leave of m:
//
//   - The directory tree as of each directory's last SyncDir, from the root
//     down: an entry whose directory was never synced since it was added is
//     missing (and with it a directory's whole subtree), a removal or rename
//     not followed by SyncDir is undone, and every durable name is bound to
//     the inode it named at that SyncDir.
//   - Each file's content as of its last Sync, and what opts.Tail makes of
//     the bytes appended since, beyond its synced size — unless the file
//     was truncated below its synced size since: that truncation is lost,
//     and with it what was appended after it, so the file simply reverts
//     to its synced content. Overwrites in place of synced bytes are lost.
//   - With opts.Reorder, some of what was not synced reached the disk
//     first: directory operations up to a random point, overwritten
//     sectors, a truncation (see CrashOptions.Reorder).
//
// In the clone everything is durable and no lock is held. m is unchanged
// and goes on working; the two share no bytes that either could change.
// Should an inode be durable under two names (a rename across directories
// with only the target synced), the clone has it under both, as hard links;
// a directory reached twice is kept at its first name only, in sorted order.
//
// CrashClone is safe to call while m is in use, but then it sees each file
// at a slightly different moment; crash tests call it on a quiet FS. With a
// nil opts.Rand, equal histories give equal clones.
//
// A crash test typically counts the operations a scenario makes (Count),
// then for each k reruns it on a fresh MemFS wrapped with FailFrom(k) (see
// WithFaults), takes a CrashClone, reopens the store on the clone and checks
// that nothing acknowledged was lost.
func (m *MemFS) CrashClone(opts CrashOptions) *MemFS {
	m.ready()
	r := opts.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(0x72756e6e656c, 0x6d656d6673))
	}
	switch opts.Tail {
	case TailDrop, TailTorn, TailZeros, TailGarbage:
	default:
		panic("vfs: CrashClone with unknown " + opts.Tail.String())
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	nm := newMemSized(m.sizes)
	c := &crashCloner{tail: opts.Tail, reorder: opts.Reorder, r: r, seen: map[*memNode]*memNode{}, fs: nm}
	if opts.Reorder {
		c.entries = m.reorderedEntries(r)
	}
	nm.root = c.dir(m.root)
	return nm
}

// reorderedEntries returns the entries that a crash with Reorder leaves
// in the directories that it changes: their durable entries, with the
// operations pending on them persisted up to a random point. The caller
// holds m.mu.
func (m *MemFS) reorderedEntries(r *rand.Rand) map[*memNode]map[string]*memNode {
	p := 0
	if len(m.pending) > 0 {
		p = r.IntN(len(m.pending) + 1)
	}
	out := map[*memNode]map[string]*memNode{}
	for _, op := range m.pending[:p] {
		for _, b := range op {
			if b.stale() {
				continue // SyncDir made it durable, or undid it
			}
			e := out[b.dir]
			if e == nil {
				e = maps.Clone(b.dir.durable)
				if e == nil {
					e = map[string]*memNode{}
				}
				out[b.dir] = e
			}
			if b.n == nil {
				delete(e, b.name)
			} else {
				e[b.name] = b.n
			}
		}
	}
	return out
}

type crashCloner struct {
	tail    TailMode
	reorder bool
	r       *rand.Rand
	seen    map[*memNode]*memNode
	fs      *MemFS // the clone
	// The entries of the directories whose unsynced operations a crash
	// with Reorder persisted; the others have their durable entries.
	entries map[*memNode]map[string]*memNode
}

func (c *crashCloner) dir(d *memNode) *memNode {
	nd := newMemDir(d.perm)
	c.seen[d] = nd
	entries, ok := c.entries[d]
	if !ok {
		entries = d.durable
	}
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		n := entries[name]
		cn, ok := c.seen[n]
		switch {
		case ok && n.isDir:
			continue // a directory reached twice; a tree has no place for it
		case ok:
		case n.isDir:
			cn = c.dir(n)
		default:
			cn = c.file(n)
		}
		nd.live[name] = cn
	}
	nd.durable = maps.Clone(nd.live) // and nothing dirty
	return nd
}

func (c *crashCloner) file(n *memNode) *memNode {
	nf := c.fs.newFile()
	c.seen[n] = nf
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case c.reorder && (n.hasSnap || len(n.undo) > 0):
		c.reordered(nf, n)
	case n.hasSnap || len(n.undo) > 0:
		if n.hasSnap {
			// snap is never written: share it.
			if len(n.snap) > 0 {
				ch := &memChunk{buf: n.snap[:len(n.snap):len(n.snap)], alloc: cap(n.snap)}
				ch.pin.Store(int64(len(n.snap)))
				nf.chunks = []*memChunk{ch}
			}
			nf.size = len(n.snap)
		} else {
			b := n.syncedContent() // a fresh copy
			if len(b) > 0 {
				nf.chunks = []*memChunk{{buf: b, alloc: cap(b)}}
			}
			nf.size = len(b)
		}
		// Overwritten in place, and not cut below its synced size: the
		// overwrite is lost, and what was appended since is a tail as
		// for any file. (A truncation lost takes along what was
		// appended after it.)
		if n.minSize >= n.syncedLen {
			c.appendTail(nf, n, n.syncedLen)
		}
	default:
		// The synced bytes, and what the tail mode leaves of the rest, in
		// the file's own arrays; zeros or garbage in a chunk of their own.
		s := n.syncedLen
		tail := n.size - s
		k := s
		if tail > 0 && c.tail == TailTorn {
			k = s + c.r.IntN(tail+1)
		}
		if old := n.cutTail(); c.reorder && old != nil && c.r.IntN(2) == 1 {
			// The file's truncation since its Sync is lost, and with
			// it what was appended after it; what it cut off is the
			// tail instead.
			nf.chunks = n.shareChunks(s)
			nf.size = s
			c.reorderedTail(nf, old, s)
			break
		}
		if k > s && c.reorder && c.r.IntN(2) == 1 {
			nf.chunks = n.shareChunks(s)
			nf.size = s
			c.holes(nf, n, s, k)
			break
		}
		nf.chunks = n.shareChunks(k)
		nf.size = k
		if tail > 0 && (c.tail == TailZeros || c.tail == TailGarbage) {
			c.fill(nf.extend(1 + c.r.IntN(tail)))
		}
	}
	nf.syncedLen = nf.size
	nf.minSize = nf.size
	return nf
}

// appendTail appends to nf, which holds what the crash leaves of n's first
// from bytes, what the tail mode makes of n's bytes from there on, which
// were appended since n's last Sync: a prefix of them (TailTorn), or zeros
// or garbage (TailZeros, TailGarbage). The caller holds n.mu for writing.
func (c *crashCloner) appendTail(nf, n *memNode, from int) {
	tail := n.size - from
	if tail <= 0 {
		return
	}
	switch c.tail {
	case TailTorn:
		if k := c.r.IntN(tail + 1); k > 0 {
			n.copyOut(nf.extend(k), from)
		}
	case TailZeros, TailGarbage:
		c.fill(nf.extend(1 + c.r.IntN(tail)))
	}
}

// fill fills b with zeros or garbage, as the tail mode says.
func (c *crashCloner) fill(b []byte) {
	if c.tail == TailZeros {
		clear(b)
	} else {
		fillRandom(c.r, b)
	}
}

// holes appends to nf, which holds from bytes, n's bytes [from, to), which
// were appended since n's last Sync, each sector of them (of the file's
// 512-byte sectors) kept or left zero independently: the file's size
// reached the disk, and of its new sectors only some did, in an order of
// the disk's own (a file system without ext4's data=ordered). The caller
// holds n.mu for writing.
func (c *crashCloner) holes(nf, n *memNode, from, to int) {
	b := nf.extend(to - from)
	n.copyOut(b, from)
	for lo := from; lo < to; lo = (lo/crashSector + 1) * crashSector {
		hi := min((lo/crashSector+1)*crashSector, to)
		if c.r.IntN(2) == 1 {
			clear(b[lo-from : hi-from])
		}
	}
}

// crashSector is the unit a disk writes whole, or not at all, in a crash
// with Reorder: what a power loss may tear an overwrite into.
const crashSector = 512

// reordered fills nf with what a crash with Reorder leaves of n, which was
// overwritten or truncated below its synced size since its last Sync (see
// CrashOptions.Reorder). The caller holds n.mu for writing.
func (c *crashCloner) reordered(nf, n *memNode) {
	old := n.syncedContent()
	keep := len(old) // the synced bytes the crash leaves
	trunc := n.minSize < len(old)
	if trunc && c.r.IntN(2) == 1 {
		keep = n.minSize // the truncation reached the disk
	}
	if keep > 0 {
		b := nf.extend(keep)
		copy(b, old)
		// The sectors that were overwritten since (and not cut off): each
		// old or new.
		cur := make([]byte, min(keep, n.minSize))
		n.copyOut(cur, 0)
		for lo := 0; lo < len(cur); lo += crashSector {
			hi := min(lo+crashSector, len(cur))
			if !bytes.Equal(b[lo:hi], cur[lo:hi]) && c.r.IntN(2) == 1 {
				copy(b[lo:hi], cur[lo:hi])
			}
		}
	}
	cut := n.cutTail()
	if trunc && keep == len(old) || !trunc && cut != nil && c.r.IntN(2) == 1 {
		// The (first) truncation was lost, and what was appended after
		// it; what it cut off from the unsynced bytes, if anything, is
		// the tail instead.
		if cut != nil {
			c.reorderedTail(nf, cut, keep)
		}
		return
	}
	// What was appended since (after the truncation, if it reached the
	// disk) is a tail, as the tail mode says.
	c.reorderedTail(nf, n, keep)
}

// reorderedTail appends to nf, which holds from bytes, what a crash with
// Reorder leaves of src's bytes from there on, appended since the last
// Sync: as the tail mode says, a torn tail torn by sectors too (see
// holes). The caller holds the file's mu for writing.
func (c *crashCloner) reorderedTail(nf, src *memNode, from int) {
	tail := src.size - from
	if tail <= 0 {
		return
	}
	switch c.tail {
	case TailTorn:
		if k := c.r.IntN(tail + 1); k > 0 {
			c.holes(nf, src, from, from+k)
		}
	case TailZeros, TailGarbage:
		c.fill(nf.extend(1 + c.r.IntN(tail)))
	}
}

func fillRandom(r *rand.Rand, b []byte) {
	for len(b) > 0 {
		v := r.Uint64()
		for i := 0; i < 8 && len(b) > 0; i++ {
			b[0] = byte(v)
			v >>= 8
			b = b[1:]
		}
	}
}

type memFileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (fi *memFileInfo) Name() string       { return fi.name }
func (fi *memFileInfo) Size() int64        { return fi.size }
func (fi *memFileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *memFileInfo) ModTime() time.Time { return time.Time{} }
func (fi *memFileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *memFileInfo) Sys() any           { return nil }

// memFile is an open handle of a MemFS file.
//
// Like the OS FS's File, it keeps the file's size as it knows it — learnt
// at Open, moved by its own Write, WriteAt and Truncate only — and Write
// appends there, and Size answers it: a file changed through two Files at
// once (which the File contract forbids) goes as wrong in memory as on
// disk, rather than passing in memory only.
type memFile struct {
	n      *memNode
	name   string
	closed atomic.Bool
	size   atomic.Int64 // the append position; changed under n.mu
}

func newMemFile(n *memNode, name string) *memFile {
	f := &memFile{n: n, name: name}
	n.mu.RLock()
	f.size.Store(int64(n.size))
	n.mu.RUnlock()
	return f
}

var (
	_ Viewer       = (*memFile)(nil)
	_ PrefixViewer = (*memFile)(nil)
)

func (f *memFile) closedErr(op string) error {
	return pathErr(op, f.name, os.ErrClosed)
}

func (f *memFile) Name() string { return f.name }

func (f *memFile) Write(p []byte) (int, error) {
	if f.closed.Load() {
		return 0, f.closedErr("write")
	}
	n := f.n
	n.mu.Lock()
	if off := int(f.size.Load()); off == n.size {
		n.appendBytes(p)
	} else if len(p) > 0 {
		n.writeAt(p, off) // at the end this File knows, as the OS FS's Write
	}
	f.size.Add(int64(len(p)))
	n.mu.Unlock()
	return len(p), nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if f.closed.Load() {
		return 0, f.closedErr("write")
	}
	if off < 0 {
		return 0, pathErr("writeat", f.name, errNegOffset)
	}
	if int64(int(off)) != off || int(off) > maxInt-len(p) {
		return 0, pathErr("writeat", f.name, fs.ErrInvalid)
	}
	if len(p) == 0 {
		return 0, nil // like pwrite(2): nothing written, nothing extended
	}
	n := f.n
	n.mu.Lock()
	n.writeAt(p, int(off))
	if end := off + int64(len(p)); end > f.size.Load() {
		f.size.Store(end)
	}
	n.mu.Unlock()
	return len(p), nil
}

const maxInt = int(^uint(0) >> 1)

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if f.closed.Load() {
		return 0, f.closedErr("read")
	}
	if off < 0 {
		return 0, pathErr("readat", f.name, errNegOffset)
	}
	n := f.n
	n.mu.RLock()
	var k int
	if off < int64(n.size) {
		k = n.copyOut(p, int(off))
	}
	n.mu.RUnlock()
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

// View returns the file's bytes [off, off+size): the file's own bytes, not
// a copy, when one chunk holds them all (as it holds all that one Write
// wrote), else a fresh copy; either way they never change afterwards. It
// returns io.ErrUnexpectedEOF if the file ends before off+size, and an
// error matching fs.ErrInvalid for a negative off or size.
func (f *memFile) View(off int64, size int) ([]byte, error) {
	return f.view("view", off, size, false)
}

// ViewPrefix returns the longest prefix of the file's bytes [off,
// off+size) that one chunk holds — at least one byte when size > 0 — as
// the file's own bytes, never a copy; they never change afterwards. Its
// errors are View's.
func (f *memFile) ViewPrefix(off int64, size int) ([]byte, error) {
	return f.view("viewprefix", off, size, true)
}

func (f *memFile) view(op string, off int64, size int, prefix bool) ([]byte, error) {
	if f.closed.Load() {
		return nil, f.closedErr("read")
	}
	if off < 0 || size < 0 {
		return nil, pathErr(op, f.name, fs.ErrInvalid)
	}
	n := f.n
	n.mu.RLock()
	defer n.mu.RUnlock()
	if off > int64(n.size) || size > n.size-int(off) {
		return nil, io.ErrUnexpectedEOF
	}
	if size == 0 {
		return []byte{}, nil
	}
	o := int(off)
	if v := n.viewPrefix(o, size, !prefix); v != nil {
		return v, nil
	}
	b := make([]byte, size) // spans chunks: a copy
	n.copyOut(b, o)
	return b, nil
}

func (f *memFile) Truncate(size int64) error {
	if f.closed.Load() {
		return f.closedErr("truncate")
	}
	if size < 0 || int64(int(size)) != size {
		return pathErr("truncate", f.name, fs.ErrInvalid)
	}
	n := f.n
	n.mu.Lock()
	n.resize(int(size))
	f.size.Store(size)
	n.mu.Unlock()
	return nil
}

// Trim gives back the room the file's last chunk has spare (see
// Trimmer). It does nothing on a closed file.
func (f *memFile) Trim() {
	if f.closed.Load() {
		return
	}
	n := f.n
	n.mu.Lock()
	n.trim()
	n.mu.Unlock()
}

func (f *memFile) Size() (int64, error) {
	if f.closed.Load() {
		return 0, f.closedErr("stat")
	}
	return f.size.Load(), nil
}

func (f *memFile) Sync() error {
	if f.closed.Load() {
		return f.closedErr("sync")
	}
	n := f.n
	n.mu.Lock()
	n.sync()
	n.mu.Unlock()
	return nil
}

// markSyncFailed records that a Sync of the file failed (see failSync),
// for WithFaults, which fails Syncs without running them.
func (f *memFile) markSyncFailed() {
	n := f.n
	n.mu.Lock()
	n.failSync()
	n.mu.Unlock()
}

func (f *memFile) Close() error {
	if f.closed.Swap(true) {
		return f.closedErr("close")
	}
	return nil
}
