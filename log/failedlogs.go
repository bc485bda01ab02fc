package log

import (
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sync"
	"weak"

	"github.com/runnel/runnel/vfs"
)

// failedLogs is the process's memory of the logs whose sync-failed
// checkpoint (syncFailedFile) could not be written: the disk failed the
// fsync, then the checkpoint's write too. Each entry holds the durable
// offset the checkpoint would have held. Should the disk work again before
// the log is opened in the same boot, Open finds no checkpoint, and would
// trust the bytes past that offset, which a failed fsync may have left in
// the page cache only, marked clean (see vfs.WithFaults), so that no later
// fsync writes them: a power cut then takes them, and every record
// appended after them, acknowledged ones too. An Open in this process
// consults failedLogs as if it had found the checkpoint (see Open).
//
// An Open in another process (the broker restarted, the machine not) has
// no such memory: the gap stays open there (see the package doc).
//
// An entry only ever makes Open do more — write the checkpoint (failing
// if it cannot), and write anew and sync bytes that may be durable
// already — never less, so that a stale one (a directory removed behind
// the log's back and a new log made at its path) costs one needless
// rewrite, and no record. Entries go once an Open's rewrite is
// durable, when the log is discarded (Discard: its directory is about to
// be removed, as DeleteTopic does, so that a topic created again under
// the name is not taken for the old one), and with their in-memory file
// system, once it is garbage (see failedKey). There is one entry per log
// directory, so that their number is bounded by the logs the process has
// opened.
var failedLogs = failedRegistry{m: map[failedKey]int64{}}

// failedRegistry is failedLogs's type.
type failedRegistry struct {
	mu sync.Mutex
	m  map[failedKey]int64
	// ids holds the identity (os.Stat's) of the OS directories of m's
	// keys, taken at each record (that of the directory that failed
	// last), so that a key spelling one of them another way (a symbolic
	// link, another case on a case-insensitive file system) finds its
	// entry (see match).
	ids map[failedKey]os.FileInfo
}

// failedKey names a log directory in failedLogs: its file system, under
// its wrappers (vfs.Unwrap: the broker and the tests may wrap the same
// one anew for each Open, as vfs.WithFaults does), and its path, cleaned.
// A *vfs.MemFS's paths are taken from its root, as it takes them (a
// relative one is under its root: "data/t-0" is "/data/t-0"). The OS
// file system is one, whatever the value that stands for it, and its
// paths are made absolute; another path to the same directory (a
// symbolic link, another case on a case-insensitive file system) finds
// its entry through the directory's identity (see failedRegistry.match). A
// *vfs.MemFS is held by a weak pointer, so that its entries do not keep
// it alive, and go once it is garbage (a crash test's disk after its
// power cut, which a CrashClone replaced). Any other file system is its
// value, which must be comparable (a pointer, say): an entry keeps it
// alive; a file system that is not comparable has no key, and its logs
// no entry.
type failedKey struct {
	fs  any
	dir string
}

// osKey is the fs of the OS file system's keys.
type osKey struct{}

// failedKeyOf returns the key of the log in dir on fsys, and false if
// there is none.
func failedKeyOf(fsys vfs.FS, dir string) (failedKey, bool) {
	root := vfs.Unwrap(fsys)
	switch r := root.(type) {
	case nil:
		return failedKey{}, false
	case *vfs.MemFS:
		// As the MemFS reads a name (from its root, with slashes):
		// "data/t-0" and "/data/t-0" are one directory there.
		return failedKey{fs: weak.Make(r), dir: path.Clean("/" + filepath.ToSlash(dir))}, true
	}
	if root == vfs.OS {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return failedKey{}, false
		}
		return failedKey{fs: osKey{}, dir: abs}, true
	}
	if !reflect.ValueOf(root).Comparable() {
		return failedKey{}, false
	}
	return failedKey{fs: root, dir: filepath.Clean(dir)}, true
}

// dead reports whether k's file system is an in-memory one that is
// garbage: no log can open on it again.
func (k failedKey) dead() bool {
	w, ok := k.fs.(weak.Pointer[vfs.MemFS])
	return ok && w.Value() == nil
}

// record notes that the log of k failed at durable offset off and that
// its sync-failed checkpoint could not be written; an entry there already
// keeps the lower offset. The zero key (of a file system that has none,
// see failedKeyOf) is not recorded, so that lookup and forget find
// nothing for it. The entries of in-memory file systems that are garbage
// go.
func (r *failedRegistry) record(k failedKey, off int64) {
	if k.fs == nil {
		return
	}
	// The directory's identity, taken without mu: the stat goes to the
	// disk that just failed, which may hang it, and must not hold up
	// every other log's Open in the process meanwhile.
	var fi os.FileInfo
	if _, isOS := k.fs.(osKey); isOS {
		fi = statDir(k.dir)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for o := range r.m {
		if o.dead() {
			delete(r.m, o)
			delete(r.ids, o)
		}
	}
	k = r.match(k, fi)
	if old, ok := r.m[k]; !ok || off < old {
		r.m[k] = off
	}
	if fi != nil {
		// Also for an entry there already: its directory may have been
		// replaced since (removed behind its log's back, and made again),
		// and the one that failed now is the one to find by another path.
		if r.ids == nil {
			r.ids = map[failedKey]os.FileInfo{}
		}
		r.ids[k] = fi
	}
}

// idOf returns the identity of the OS directory k names, for match: nil
// for another file system's key, or when match needs none (k has an
// entry of its own, or no entry has an identity). The stat is taken
// without mu, as record's.
func (r *failedRegistry) idOf(k failedKey) os.FileInfo {
	if _, isOS := k.fs.(osKey); !isOS {
		return nil
	}
	r.mu.Lock()
	_, own := r.m[k]
	need := !own && len(r.ids) > 0
	r.mu.Unlock()
	if !need {
		return nil
	}
	return statDir(k.dir)
}

// match returns the key of m's entry for the directory k names, fi being
// that directory's identity (idOf's; nil if unknown): k if m has it, else
// the key of an entry of the OS file system whose directory is k's by
// identity (os.SameFile: another spelling of its path), else k. A
// directory removed and another made since may take its identity: its
// log then writes its tail anew once, needlessly (see failedLogs). It
// runs under mu.
func (r *failedRegistry) match(k failedKey, fi os.FileInfo) failedKey {
	if _, ok := r.m[k]; ok || fi == nil {
		return k
	}
	for o, id := range r.ids {
		if os.SameFile(id, fi) {
			return o
		}
	}
	return k
}

// testHookStatDir, when set (by tests), runs in statDir before its stat.
var testHookStatDir func(dir string)

// statDir returns dir's FileInfo on the OS file system, nil if it has
// none.
func statDir(dir string) os.FileInfo {
	if testHookStatDir != nil {
		testHookStatDir(dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil
	}
	// On Windows a directory's FileInfo reads its identity (volume and
	// file index) lazily, by its path, at its first os.SameFile: read
	// here, while the directory is there and without the registry's
	// lock, not at a later match. Nothing elsewhere.
	_ = os.SameFile(fi, fi)
	return fi
}

// lookup returns the offset recorded for k, if any.
func (r *failedRegistry) lookup(k failedKey) (int64, bool) {
	fi := r.idOf(k)
	r.mu.Lock()
	defer r.mu.Unlock()
	off, ok := r.m[r.match(k, fi)]
	return off, ok
}

// forget removes k's entry if it is at least from: the bytes from
// from on were made durable (a lower offset, recorded since, stays).
// math.MinInt64 removes it whatever it holds.
func (r *failedRegistry) forget(k failedKey, from int64) {
	fi := r.idOf(k)
	r.mu.Lock()
	defer r.mu.Unlock()
	k = r.match(k, fi)
	if off, ok := r.m[k]; ok && off >= from {
		delete(r.m, k)
		delete(r.ids, k)
	}
}
