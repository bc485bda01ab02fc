// Package index implements the two sparse indexes that sit beside each
// segment of a runnel log: the offset index and the time index. They are
// in Kafka's on-disk format, byte for byte, so that a segment directory
// written by runnel can be read by Kafka's tools and the other way round.
//
// It is a leaf of the layer stack, above only vfs: package segment opens
// and owns the two indexes of each segment (package log takes only the
// entry sizes from here, to group segments that compaction merges).
//
// # Offset index
//
// The file <base>.index (base being the segment's base offset) is a
// sequence of 8-byte entries, big-endian:
//
//	relative offset  int32   offset - base
//	position         int32   physical position of the batch in the segment's .log
//
// The index is sparse: the segment adds one entry per index.interval.bytes
// of log (it decides when; the index only appends). Offsets and positions
// are strictly increasing. OffsetIndex.Lookup finds the entry with the
// greatest offset at or below a target, from which the segment scans the log
// forward.
//
// # Time index
//
// The file <base>.timeindex is a sequence of 12-byte entries, big-endian:
//
//	timestamp        int64   milliseconds since the Unix epoch
//	relative offset  int32   offset - base
//
// An entry (T, o) means: the largest timestamp seen up to and including
// offset o is T, and o is the first offset where it was reached. Timestamps
// are strictly increasing and offsets non-decreasing; a timestamp below 0
// (Kafka's -1, "no timestamp") is never indexed. TimeIndex.Lookup finds the
// entry with the greatest timestamp at or below a target.
//
// # Files
//
// While its segment is active, an index is writable and holds at most
// maxBytes of entries (rounded down to a whole number of entries; Kafka's
// segment.index.bytes, DefaultMaxBytes by default). It keeps its entries
// in a heap buffer and writes them to the file with WriteAt, 128 at a time
// and the rest on Sync, Seal and Close.
//
// Kafka preallocates the file and maps it read-write instead. runnel does
// not, because the first store to each page of a writable shared mapping
// stalls while the file system reserves a block and updates the file's
// times. That takes about a millisecond on ext4 here, on the append that
// adds the entry, and again after each writeback of the page, where a
// WriteAt takes microseconds.
//
// When the segment is sealed (rolled) or the index closed, the file is
// trimmed to its entries and, once sealed, mapped read-only.
//
// A file that was preallocated (by Kafka, or by an earlier runnel) and not
// trimmed because the process stopped ends in all-zero entries. Opening an
// index drops trailing all-zero entries. So an entry that is itself all
// zero, (base, 0) or (0, base), is dropped too if it is the last one. That
// loses nothing a lookup needs, as it answers one exactly as no entry
// does. (A time index's (0, base) also says that the segment's largest
// timestamp was 0 at its base: package segment reads that from the first
// batch when the time index is empty.)
//
// What is corrupt, and what is not caught:
//
//   - a file whose size is not a whole number of entries is corrupt (a
//     *CorruptError);
//   - so is one whose entries break the orders above, which Check reports.
//     Opening does not scan the entries, so that opening the sealed
//     indexes of a big log stays cheap;
//   - entries that keep the orders but are wrong (bit rot, a bad copy) are
//     beyond any check of the index alone: package segment checks each
//     entry against its log when a lookup uses it.
//
// Files are read and written only through a vfs.FS. Sealed files that
// implement vfs.Mapper are mapped (OS files on unix). For the others, or
// when mapping fails, the index keeps its entries in a heap buffer read at
// open, as an active index does.
//
// Either way a sealed index then closes its file (a mapping outlives it),
// so that the sealed segments of a big log do not hold two descriptors
// each for indexes that only answer lookups. It opens the file again, by
// its path, for TruncateTo, Reset and Unseal (and for a Sync that has
// something to make durable). Nothing may rename or remove the files of an
// open sealed index, as nothing does: segments are renamed only while
// closed.
//
// Nothing is durable before Sync, Seal or Close.
//
// # Concurrency
//
// One goroutine, the owner of the segment, calls the methods that change an
// index (Append, TruncateTo, Reset, Sync, Seal, Unseal, Close). Lookup,
// Last, Entries, Entry, Full and Check may run concurrently with those, from
// any number of goroutines; Lookup does not allocate.
package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"sync"

	"github.com/runnel/runnel/vfs"
)

const (
	// OffsetEntrySize is the size in bytes of an offset index entry.
	OffsetEntrySize = 8
	// TimeEntrySize is the size in bytes of a time index entry.
	TimeEntrySize = 12
	// DefaultMaxBytes is the default bound on the size of an active
	// index's entries, which bounds their number (Kafka's
	// segment.index.bytes).
	DefaultMaxBytes = 10 << 20
)

// maxRelative is the largest relative offset or position an entry holds:
// Kafka stores both as signed 32-bit integers.
const maxRelative = math.MaxInt32

// maxFileBytes is the size of the largest index file: a larger one is
// corrupt.
const maxFileBytes = math.MaxInt32

// file is what the two indexes share: the file, its mapping or heap buffer,
// and the number of entries. The index types add the entry encoding.
type file struct {
	// mu guards buf, n, active and max against the readers (Lookup and
	// friends), which hold it shared; the owner changes them holding it
	// exclusively and reads them without it.
	mu     sync.RWMutex
	buf    []byte // the entries: the mapped file or a heap copy of it
	n      int    // number of entries
	active bool   // writable: appends allowed
	max    int    // capacity in entries while active
	// written is how many of the entries the file holds (the rest, of a
	// heap index, are written by flush); the owner's alone.
	written int

	path   string
	fsys   vfs.FS
	f      vfs.File     // nil while released (see release)
	synced bool         // a released file holds its entries durably
	sz     int          // entry size
	base   int64        // the segment's base offset
	m      *vfs.Mapping // the mapping under buf; nil in heap mode
	heap   bool         // buf is a heap copy of the entries
	owned  bool         // the heap copy is ours to write (not a vfs.Viewer's view)
	noMap  bool         // the file cannot be mapped: stay in heap mode
	closed bool
	err    error               // set when a failed remap left the index without its entries
	entry  [TimeEntrySize]byte // the entry being appended, encoded
}

func (x *file) open(fsys vfs.FS, path string, sz int, base int64, maxBytes int, writable bool) error {
	if err := checkBase(base); err != nil {
		return fmt.Errorf("%w (%s)", err, path)
	}
	if writable && maxBytes < 0 {
		return fmt.Errorf("%w: %s: negative maxBytes %d", ErrInvalidArgument, path, maxBytes)
	}
	f, err := fsys.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = fsys.Create(path)
	}
	if err != nil {
		return err
	}
	x.f, x.fsys, x.path, x.sz, x.base = f, fsys, path, sz, base
	size, err := f.Size()
	switch {
	case err != nil:
	case size > maxFileBytes:
		// No index is that large (Kafka's segment.index.bytes is an
		// int32 too), and its entries would not fit in an int's bytes
		// on 32-bit platforms.
		err = &CorruptError{Path: path, Entry: maxFileBytes / sz,
			Reason: fmt.Sprintf("file size %d past the largest index, %d bytes", size, maxFileBytes)}
	case size%int64(sz) != 0:
		err = &CorruptError{Path: path, Entry: int(size / int64(sz)),
			Reason: fmt.Sprintf("file size %d is not a multiple of the entry size %d", size, sz)}
	}
	if err == nil {
		x.n, err = countEntries(f, size, sz)
	}
	if err == nil {
		x.active = writable
		if writable {
			x.max = maxBytes / sz
		}
		err = x.setup()
	}
	if err != nil {
		x.unmap()
		f.Close()
		return err
	}
	x.synced = size == int64(x.n*sz) // setup trimmed nothing
	if err := x.release(); err != nil {
		x.unmap()
		return err
	}
	return nil
}

// release closes the file of a sealed index, whose entries are mapped (or
// copied to the heap, where the file does not map): a sealed segment then
// holds one file descriptor, its .log's, not three. A mapping stays valid
// once its file is closed (POSIX says so; on Windows, where nothing maps
// now, a mapped view would keep its file open itself). acquire opens the
// file again for the changes that need it (TruncateTo, Reset, Unseal, and
// Sync of a file that setup trimmed). An active index keeps its file.
// Only the owner uses the file, so it needs no lock.
func (x *file) release() error {
	if x.f == nil || x.active {
		return nil
	}
	err := x.f.Close()
	x.f = nil
	return err
}

// acquire opens the file of a released index again.
func (x *file) acquire() error {
	if x.f != nil {
		return nil
	}
	f, err := x.fsys.Open(x.path)
	if err != nil {
		return err
	}
	x.f = f
	return nil
}

func checkBase(base int64) error {
	if base < 0 || base > math.MaxInt64-maxRelative {
		return fmt.Errorf("%w: base offset %d out of range", ErrInvalidArgument, base)
	}
	return nil
}

// countEntries returns the number of entries in the file of the given size
// once trailing all-zero entries are dropped. It reads backwards, first the
// last entry alone, so a trimmed file costs one small read.
func countEntries(f vfs.File, size int64, sz int) (int, error) {
	if size == 0 {
		return 0, nil
	}
	buf := make([]byte, min(int64((64<<10)/sz*sz), size))
	step := int64(sz)
	for end := size; end > 0; {
		off := max(0, end-step)
		b := buf[:end-off]
		if m, err := f.ReadAt(b, off); m < len(b) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		for i := len(b) - sz; i >= 0; i -= sz {
			if !allZero(b[i : i+sz]) {
				return int((off+int64(i))/int64(sz)) + 1, nil
			}
		}
		end = off
		step = int64(len(buf))
	}
	return 0, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// trimZeros returns the number of entries in b once trailing all-zero
// entries are dropped; len(b) is a multiple of sz.
func trimZeros(b []byte, sz int) int {
	n := len(b) / sz
	for n > 0 && allZero(b[(n-1)*sz:n*sz]) {
		n--
	}
	return n
}

// setup sets up buf for the current n and active, in a file trimmed to
// the entries: a read-only mapping of them (sealed, where the file maps),
// or else a heap copy. There must be
// no mapping. The caller holds mu exclusively, or the index is not yet
// shared.
func (x *file) setup() error {
	if err := x.setupFile(); err != nil {
		return err
	}
	x.written = x.n // the file holds them all now
	return nil
}

func (x *file) setupFile() error {
	used := x.n * x.sz
	size, err := x.f.Size()
	if err != nil {
		return err
	}
	// Only a sealed index is mapped (read-only); an active one stays on the
	// heap (see the package comment).
	if mp, ok := x.f.(vfs.Mapper); ok && !x.noMap && !x.active {
		want := used
		if size != int64(want) {
			if err := x.f.Truncate(int64(want)); err != nil {
				return err
			}
			size = int64(want)
		}
		m, err := mp.Map(want)
		if err == nil {
			x.m, x.buf, x.heap, x.owned = m, m.Bytes(), false, false
			return nil
		}
		// Fall back to the heap: for good if mapping is not supported,
		// this once if it failed otherwise (out of address space, or of
		// mappings).
		x.noMap = errors.Is(err, vfs.ErrNotSupported)
	}
	if size != int64(used) {
		if err := x.f.Truncate(int64(used)); err != nil {
			return err
		}
	}
	switch {
	case !x.heap && x.active:
		b := make([]byte, used)
		if _, err := x.f.ReadAt(b, 0); err != nil && !(err == io.EOF && used == 0) {
			return err
		}
		x.buf, x.heap, x.owned = b, true, true
	case !x.heap:
		b, err := vfs.ReadView(x.f, 0, used)
		if err != nil {
			return err
		}
		_, isView := x.f.(vfs.Viewer)
		x.buf, x.heap, x.owned = b, true, !isView
	case x.active && !x.owned:
		x.buf, x.owned = append([]byte(nil), x.buf[:used]...), true
	}
	return nil
}

// unmap drops the mapping, if any; buf goes with it.
func (x *file) unmap() error {
	if x.m == nil {
		return nil
	}
	err := x.m.Close()
	x.m, x.buf = nil, nil
	return err
}

// fail leaves the index without entries after a failed setup; every later
// change returns err. The caller holds mu exclusively.
func (x *file) fail(err error) {
	x.unmap()
	x.err, x.buf, x.n, x.heap = err, nil, 0, false
}

// usable returns the error for op on a closed or failed index, or a zero
// one (never opened: no file system), which is closed.
func (x *file) usable(op string) error {
	if x.closed || x.fsys == nil {
		return &fs.PathError{Op: op, Path: x.path, Err: fs.ErrClosed}
	}
	return x.err
}

// writable returns the error for appending to the index, if any.
func (x *file) writable() error {
	if err := x.usable("append"); err != nil {
		return err
	}
	if !x.active {
		return ErrSealed
	}
	return nil
}

// full reports whether the index holds all the entries it can. The owner
// calls it without the lock.
func (x *file) full() bool { return !x.active || x.n >= x.max }

// appendEntry appends the entry encoded in x.entry; the caller has checked
// that the index is writable (so on the heap) and not full.
func (x *file) appendEntry() error {
	if x.n-x.written >= flushEntries {
		if err := x.flush(); err != nil {
			return err
		}
	}
	// Readers look at buf[:off] only, so writing past it in place is safe;
	// a grown buf is published under the lock.
	off := x.n * x.sz
	buf := append(x.buf[:off], x.entry[:x.sz]...)
	x.mu.Lock()
	x.buf = buf
	x.n++
	x.mu.Unlock()
	return nil
}

// flushEntries is how many appended entries a heap index keeps before it
// writes them to its file with one WriteAt (it also writes them on Sync,
// Seal and Close): one write per flushEntries entries, not one per entry,
// on an append path that adds an entry every index.interval.bytes.
const flushEntries = 128

// flush writes the entries the file does not hold yet (an active index's).
// The owner calls it.
func (x *file) flush() error {
	if x.written >= x.n {
		return nil
	}
	if _, err := x.f.WriteAt(x.buf[x.written*x.sz:x.n*x.sz], int64(x.written*x.sz)); err != nil {
		return err
	}
	x.written = x.n
	return nil
}

// truncateEntries keeps the first k entries; the file is cut after them
// (an active index's, if it holds more). Cut rather than zeroed in place:
// entries written anew after a failed fsync of the file (a log's recovery
// rebuilds its indexes with Reset) then go to pages and blocks of their
// own, which the next fsync writes; written in place over pages the
// failed fsync could not write, they might never be (see vfs.WithFaults,
// and segment.Segment.Rewrite for ext4's unwritten extents).
func (x *file) truncateEntries(k int) error {
	if err := x.usable("truncate"); err != nil {
		return err
	}
	if k >= x.n {
		return nil
	}
	if x.active {
		x.mu.Lock()
		x.n = k
		x.mu.Unlock()
		if x.written > k {
			x.written = k
			if err := x.f.Truncate(int64(k * x.sz)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := x.acquire(); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.n = k
	uerr := x.unmap()
	if err := x.setup(); err != nil {
		x.fail(err)
		return err
	}
	x.synced = false // trimmed
	return errors.Join(uerr, x.release())
}

// truncateFrom drops every entry whose offset is at or above offset, for
// both indexes' TruncateTo: relAt is where an entry holds its relative
// offset (see relsUpTo).
func (x *file) truncateFrom(offset int64, relAt int) error {
	if err := x.usable("truncate"); err != nil {
		return err
	}
	k := 0
	if offset > x.base { // not offset-x.base > 0: far below the base, it overflows
		k = x.relsUpTo(x.sz, relAt, offset-x.base-1)
	}
	return x.truncateEntries(k)
}

// relsUpTo returns how many entries hold a relative offset at or below rel:
// those entries come first, as both indexes' relative offsets do not
// decrease. sz is the entry size (x.sz, passed as the caller's constant so
// that the lookups it is inlined into multiply by a constant) and relAt the
// byte at which an entry holds its relative offset, a big-endian int32 (0
// in an offset index, 8 in a time index). The caller holds the lock or is
// the owner.
func (x *file) relsUpTo(sz, relAt int, rel int64) int {
	lo, hi := 0, x.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		at := mid*sz + relAt
		if i32(x.buf[at:at+4]) <= rel {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// sync makes the entries durable.
func (x *file) sync() error {
	if err := x.usable("sync"); err != nil {
		return err
	}
	if x.f == nil {
		if x.synced {
			return nil
		}
		if err := x.acquire(); err != nil {
			return err
		}
		err := x.f.Sync()
		x.synced = err == nil
		return errors.Join(err, x.release())
	}
	if err := x.flush(); err != nil {
		return err
	}
	return x.f.Sync()
}

// seal trims the file to its entries, syncs it and maps it read-only.
func (x *file) seal() error {
	if err := x.usable("seal"); err != nil {
		return err
	}
	if !x.active {
		return nil
	}
	if err := x.flush(); err != nil {
		return err
	}
	x.mu.Lock()
	x.active = false
	uerr := x.unmap()
	err := x.setup()
	if err != nil {
		x.fail(err)
	}
	x.mu.Unlock()
	if err != nil {
		return err
	}
	if err := x.f.Sync(); err != nil {
		return err
	}
	x.synced = true
	return errors.Join(uerr, x.release())
}

// unseal makes a sealed index writable again with room for maxBytes.
func (x *file) unseal(maxBytes int) error {
	if err := x.usable("unseal"); err != nil {
		return err
	}
	if maxBytes < 0 {
		return fmt.Errorf("%w: %s: negative maxBytes %d", ErrInvalidArgument, x.path, maxBytes)
	}
	if x.active {
		return nil
	}
	if err := x.acquire(); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.active, x.max = true, maxBytes/x.sz
	uerr := x.unmap()
	if err := x.setup(); err != nil {
		x.fail(err)
		return err
	}
	return uerr
}

// close trims and syncs an active index, then releases the mapping and the
// file. With discard it writes nothing (see OffsetIndex.Discard).
func (x *file) close(discard bool) error {
	if x.closed || x.fsys == nil {
		return nil // closed, or a zero index
	}
	var err error
	keep := func(e error) {
		if err == nil {
			err = e
		}
	}
	if x.active && !discard {
		keep(x.flush())
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	keep(x.unmap())
	if x.active && x.err == nil && !discard {
		keep(x.f.Truncate(int64(x.n * x.sz)))
		keep(x.f.Sync())
	}
	if x.f != nil {
		keep(x.f.Close())
		x.f = nil
	}
	x.closed, x.active = true, false
	x.buf, x.n, x.heap = nil, 0, false
	return err
}

// entries and isFull are for the readers: they take the lock.

func (x *file) entries() int {
	x.mu.RLock()
	n := x.n
	x.mu.RUnlock()
	return n
}

func (x *file) isFull() bool { return x.isFullReserving(0) }

// isFullReserving is isFull with the last reserve slots counted as taken.
func (x *file) isFullReserving(reserve int) bool {
	x.mu.RLock()
	full := !x.active || x.n >= x.max-reserve
	x.mu.RUnlock()
	return full
}

// i32 and i64 read big-endian fields as Kafka's signed integers.
func i32(b []byte) int64 { return int64(int32(binary.BigEndian.Uint32(b))) }
func i64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }
