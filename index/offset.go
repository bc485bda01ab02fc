package index

import (
	"encoding/binary"
	"fmt"

	"github.com/runnel/runnel/vfs"
)

// OffsetIndex is a segment's offset index: a sparse map from offsets to
// positions in the segment's log. See the package documentation for the
// format and for which methods may run concurrently.
//
// An OffsetIndex is made by OpenOffset. A zero OffsetIndex (one not made by
// it) is closed: it has no entries, its writes and syncs answer an error
// matching fs.ErrClosed, as a closed index's do, and Close nil.
type OffsetIndex struct {
	f file
}

// OffsetEntry is a decoded offset index entry: the batch at byte Position
// of the segment's log holds Offset.
type OffsetEntry struct{ Offset, Position int64 }

// OpenOffset opens the offset index at path for the segment with the given
// base offset, creating the file if it is missing.
//
// With writable true the index is active: it takes entries up to maxBytes
// of them (rounded down to a multiple of OffsetEntrySize; but never below
// its entries), kept in a heap buffer and written to the file with
// WriteAt in blocks and on Sync, Seal and Close. With writable false the index is
// sealed and read-only (maxBytes is ignored): mapped read-only if possible,
// else read into memory at open.
//
// Trailing all-zero entries (preallocated space of a Kafka index that was
// not trimmed) are dropped; a sealed index's file is trimmed to its entries. A
// file whose size is not a multiple of OffsetEntrySize, or is above
// math.MaxInt32 (no index is larger), is reported as a *CorruptError. The
// entries are not checked: see Check.
//
// Errors: a *CorruptError (matching ErrCorrupt); file system errors;
// ErrInvalidArgument (a misuse) for a base offset that is negative or
// leaves no room for relative offsets, or a writable index with a
// negative maxBytes.
func OpenOffset(fsys vfs.FS, path string, base int64, maxBytes int, writable bool) (*OffsetIndex, error) {
	x := new(OffsetIndex)
	if err := x.f.open(fsys, path, OffsetEntrySize, base, maxBytes, writable); err != nil {
		return nil, err
	}
	return x, nil
}

// raw returns entry i's relative offset and position. The caller holds the
// lock or is the owner.
func (x *OffsetIndex) raw(i int) (rel, pos int64) {
	b := x.f.buf[i*OffsetEntrySize : (i+1)*OffsetEntrySize]
	return i32(b), i32(b[4:])
}

// Append adds an entry: the batch holding offset starts at byte position of
// the log.
//
// Errors:
//
//   - ErrSealed on a sealed index;
//   - ErrIndexFull when the index holds all the entries maxBytes allows;
//   - an error matching ErrInvalidEntry if offset is below the base or
//     beyond it by more than math.MaxInt32, if position is negative or
//     above math.MaxInt32, or if either is not greater than the last
//     entry's;
//   - an error matching fs.ErrClosed on a closed index;
//   - a file system error when writing the entries it holds to the file
//     fails (see the package doc, Files).
func (x *OffsetIndex) Append(offset, position int64) error {
	if err := x.f.writable(); err != nil {
		return err
	}
	if x.f.full() {
		return ErrIndexFull
	}
	rel := offset - x.f.base
	if rel < 0 || rel > maxRelative || position < 0 || position > maxRelative {
		return fmt.Errorf("%w: offset %d, position %d out of range for base %d",
			ErrInvalidEntry, offset, position, x.f.base)
	}
	if x.f.n > 0 {
		lrel, lpos := x.raw(x.f.n - 1)
		if rel <= lrel || position <= lpos {
			return fmt.Errorf("%w: offset %d, position %d not after the last entry's %d, %d",
				ErrInvalidEntry, offset, position, x.f.base+lrel, lpos)
		}
	}
	e := x.f.entry[:OffsetEntrySize]
	binary.BigEndian.PutUint32(e, uint32(rel))
	binary.BigEndian.PutUint32(e[4:], uint32(position))
	return x.f.appendEntry()
}

// Lookup returns the entry with the greatest offset at or below offset, or
// (Base(), 0) if there is none: the segment scans its log from position for
// the batch holding offset.
func (x *OffsetIndex) Lookup(offset int64) (entryOffset, position int64) {
	x.f.mu.RLock()
	defer x.f.mu.RUnlock()
	base := x.f.base
	if offset < base {
		return base, 0
	}
	n := x.f.relsUpTo(OffsetEntrySize, 0, offset-base)
	if n == 0 {
		return base, 0
	}
	rel, pos := x.raw(n - 1)
	return base + rel, pos
}

// Entries returns the number of entries.
func (x *OffsetIndex) Entries() int { return x.f.entries() }

// Entry returns entry i, counting from 0. It panics if i is out of range.
func (x *OffsetIndex) Entry(i int) (offset, position int64) {
	x.f.mu.RLock()
	defer x.f.mu.RUnlock()
	if i < 0 || i >= x.f.n {
		panic(fmt.Sprintf("runnel/index: entry %d out of range [0, %d)", i, x.f.n))
	}
	rel, pos := x.raw(i)
	return x.f.base + rel, pos
}

// Last returns the last entry; ok is false if the index is empty.
func (x *OffsetIndex) Last() (offset, position int64, ok bool) {
	x.f.mu.RLock()
	defer x.f.mu.RUnlock()
	if x.f.n == 0 {
		return 0, 0, false
	}
	rel, pos := x.raw(x.f.n - 1)
	return x.f.base + rel, pos, true
}

// Full reports whether Append would return ErrIndexFull; a sealed index is
// full.
func (x *OffsetIndex) Full() bool { return x.f.isFull() }

// Base returns the segment's base offset.
func (x *OffsetIndex) Base() int64 { return x.f.base }

// Path returns the index file's path.
func (x *OffsetIndex) Path() string { return x.f.path }

// TruncateTo drops every entry whose offset is at or above offset. An active
// index cuts its file before the dropped entries it has written, so that
// none survives a crash once synced; a sealed index trims its file.
//
// Errors: an error matching fs.ErrClosed on a closed index; file system
// errors.
func (x *OffsetIndex) TruncateTo(offset int64) error { return x.f.truncateFrom(offset, 0) }

// Reset drops every entry, as before a rebuild from the log.
//
// Errors: an error matching fs.ErrClosed on a closed index; file system
// errors.
func (x *OffsetIndex) Reset() error { return x.f.truncateEntries(0) }

// Check checks the entries against the log of logSize bytes, as Kafka's
// sanity check does on recovery: offsets strictly increasing and not below
// the base, positions strictly increasing and below logSize. It returns a
// *CorruptError naming the first bad entry.
func (x *OffsetIndex) Check(logSize int64) error {
	x.f.mu.RLock()
	defer x.f.mu.RUnlock()
	if e := checkOffsetEntries(x.f.buf[:x.f.n*OffsetEntrySize], logSize, true); e != nil {
		e.Path = x.f.path
		return e
	}
	return nil
}

// Sync makes the entries durable: it writes those the file does not hold
// yet and syncs it.
//
// Errors: an error matching fs.ErrClosed on a closed index; file system
// errors.
func (x *OffsetIndex) Sync() error { return x.f.sync() }

// Seal makes an active index sealed: it trims the file to its entries, syncs
// it and maps it read-only. Append then returns ErrSealed. Sealing a sealed
// index does nothing.
//
// Errors: an error matching fs.ErrClosed on a closed index; file system
// errors.
func (x *OffsetIndex) Seal() error { return x.f.seal() }

// Unseal makes a sealed index active again, as when the log is truncated
// back into its segment: it takes entries up to maxBytes of them, kept in
// a heap buffer and written to the file with WriteAt, as an index opened
// writable does. Unsealing an active index does nothing.
//
// Errors: an error matching fs.ErrClosed on a closed index; file system
// errors; ErrInvalidArgument (a misuse) for a negative maxBytes.
func (x *OffsetIndex) Unseal(maxBytes int) error { return x.f.unseal(maxBytes) }

// Close releases the index. An active index is first trimmed to its entries
// and synced, so that a clean close leaves a trimmed, durable file. Closing
// a closed index does nothing; other methods that change the index then
// return an error matching fs.ErrClosed, and readers see no entries.
//
// Errors: file system errors of the trim, the sync and the file's close
// (the index is closed all the same).
func (x *OffsetIndex) Close() error { return x.f.close(false) }

// Discard releases the index as Close does, but writes nothing: the
// entries not yet in the file are dropped, and the file is neither trimmed
// nor synced. It is for an index whose file is about to be removed (a
// deleted segment), which a full disk must not keep from going.
//
// Errors: file system errors of the file's close (the index is closed all
// the same).
func (x *OffsetIndex) Discard() error { return x.f.close(true) }

// checkOffsetEntries checks encoded offset entries (relative offsets, so
// independent of the base): offsets not negative and strictly increasing,
// positions not negative, strictly increasing and, if limit, below logSize.
func checkOffsetEntries(b []byte, logSize int64, limit bool) *CorruptError {
	var prel, ppos int64
	for i := 0; (i+1)*OffsetEntrySize <= len(b); i++ {
		e := b[i*OffsetEntrySize:]
		rel, pos := i32(e), i32(e[4:])
		var reason string
		switch {
		case rel < 0:
			reason = fmt.Sprintf("relative offset %d is negative", rel)
		case pos < 0:
			reason = fmt.Sprintf("position %d is negative", pos)
		case i > 0 && rel <= prel:
			reason = fmt.Sprintf("relative offset %d is not above the previous entry's %d", rel, prel)
		case i > 0 && pos <= ppos:
			reason = fmt.Sprintf("position %d is not above the previous entry's %d", pos, ppos)
		case limit && pos >= logSize:
			reason = fmt.Sprintf("position %d is not below the log size %d", pos, logSize)
		default:
			prel, ppos = rel, pos
			continue
		}
		return &CorruptError{Entry: i, Reason: reason}
	}
	return nil
}

// DecodeOffsetEntries decodes the contents of an offset index file of the
// segment with the given base offset, as OpenOffset and Check would see
// them. Trailing all-zero entries are dropped. The rest must be whole
// entries, with:
//
//   - offsets strictly increasing and not below base;
//   - positions not negative and strictly increasing.
//
// It returns a *CorruptError (with an empty Path) otherwise, and
// ErrInvalidArgument if base is negative or too large to add a relative
// offset to.
func DecodeOffsetEntries(b []byte, base int64) ([]OffsetEntry, error) {
	if err := checkBase(base); err != nil {
		return nil, err
	}
	if len(b)%OffsetEntrySize != 0 {
		return nil, &CorruptError{Entry: len(b) / OffsetEntrySize,
			Reason: fmt.Sprintf("size %d is not a multiple of the entry size %d", len(b), OffsetEntrySize)}
	}
	n := trimZeros(b, OffsetEntrySize)
	b = b[:n*OffsetEntrySize]
	if e := checkOffsetEntries(b, 0, false); e != nil {
		return nil, e
	}
	out := make([]OffsetEntry, n)
	for i := range out {
		e := b[i*OffsetEntrySize:]
		out[i] = OffsetEntry{Offset: base + i32(e), Position: i32(e[4:])}
	}
	return out, nil
}
